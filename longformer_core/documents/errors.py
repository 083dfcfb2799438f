"""Errors of loading a document: `str(error)` is written for the user and shown as is."""

from __future__ import annotations

import logging

logger = logging.getLogger(__name__)

# --------------------------------------------------------------------------------------------------
# Errors: str(error) is shown to the user as is.


class DocumentError(ValueError):
    """Base class; str(e) is a message for a non-programmer saying what happened and what to do."""


class EmptyDocumentError(DocumentError):
    """The file (or pasted text) has no content."""


class CorruptPdfError(DocumentError):
    """The PDF is damaged, truncated or not a PDF at all."""


class EncryptedPdfError(DocumentError):
    """The PDF is password-protected and could not be opened."""

    def __init__(self, message: str, *, wrong_password: bool = False) -> None:
        super().__init__(message)
        self.wrong_password = wrong_password  # True when the user gave a password and it was refused


class NoTextError(DocumentError):
    """The PDF has no text layer (a scan)."""


class DocumentTooLargeError(DocumentError):
    """The file, its text, or one of its pages is over a size limit."""


class BinaryTextError(DocumentError):
    """A file meant to be text holds binary data or an unknown encoding."""


class UnsupportedFileTypeError(DocumentError):
    """Neither a PDF nor readable text (e.g. a Word file or an image)."""


class ExtractionTimeoutError(DocumentError):
    """Extracting the text took longer than the time budget."""


class ExtractionWorkerError(DocumentError):
    """The process reading a PDF ended before it finished (killed from outside, or out of memory in C)."""


def needs_memory_error(name: str) -> DocumentTooLargeError:
    """The message when reading a file ran out of memory (in the server or in the PDF worker)."""
    return DocumentTooLargeError(
        f"'{name}' needs more memory to read than this machine has. Upload a smaller file."
    )


def unexpected_error(name: str, error: BaseException) -> DocumentError:
    """The message for a failure nobody foresaw (the original exception goes to the log, not to the user)."""
    return DocumentError(
        f"Something unexpected went wrong while reading '{name}' ({type(error).__name__}). "
        "Try saving the file again (as PDF or plain text) and uploading it once more."
    )


def worker_died_error(name: str) -> ExtractionWorkerError:
    """The message when the PDF worker process ended before it finished reading."""
    return ExtractionWorkerError(
        f"Reading '{name}' stopped unexpectedly: the process that reads PDFs ended before it finished "
        "(it may have run out of memory, or the server stopped it). Upload the file again; if this "
        "file keeps failing, re-save it with a PDF printer or upload a smaller part of it."
    )


def document_too_slow_error(
    name: str, elapsed: float, budget_s: float, page: int | None, n_pages: int | None
) -> ExtractionTimeoutError:
    """The message when a whole PDF took longer than its budget, saying how far it got."""
    where = (
        f"it had only reached page {page + 1} of {n_pages}"
        if page is not None and n_pages is not None
        else "it had not yet found its list of pages"
    )
    return ExtractionTimeoutError(
        f"Reading '{name}' took too long: after {elapsed:.0f} s (limit {budget_s:.0f} s) {where}. "
        "Try a smaller file (split the PDF), or re-save it with a PDF printer, which often makes text "
        "extraction much faster."
    )
