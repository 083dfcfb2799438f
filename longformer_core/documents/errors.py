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
