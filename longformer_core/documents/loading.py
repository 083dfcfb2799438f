"""Bytes -> Document: `load_document`, `load_path`, `text_document` and the upload limit."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from longformer_core import settings
from longformer_core.documents.decoding import (
    _decode_text_file,
    _display_name,
    _looks_like_pdf,
    _make_text_document,
    _megabytes,
    clean_text,
)
from longformer_core.documents.errors import (
    DocumentError,
    DocumentTooLargeError,
    EmptyDocumentError,
    ExtractionWorkerError,
    needs_memory_error,
    unexpected_error,
)
from longformer_core.documents.limits import (
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_CHARS,
    DEFAULT_PAGE_TIME_BUDGET_S,
    MAX_UPLOAD_ENV,
)
from longformer_core.documents.model import Document, Page

if TYPE_CHECKING:
    from longformer_core.documents.pdf import PdfText

logger = logging.getLogger(__name__)

# --------------------------------------------------------------------------------------------------
# Loading


def default_max_bytes() -> int:
    """Upload size limit in bytes: env LONGDOC_MAX_UPLOAD_MB if set to a positive number, else 200 MB.

    Returns:
        The limit in bytes.
    """
    raw = settings.value(MAX_UPLOAD_ENV)
    if raw:
        try:
            megabytes = float(raw)
        except ValueError:
            megabytes = 0.0
        if megabytes > 0:
            return int(megabytes * 1024 * 1024)
        # A typo in the environment must not make every upload fail: fall back to the default.
        logger.warning("Ignoring %s=%r: expected a positive number of megabytes.", MAX_UPLOAD_ENV, raw)
    return DEFAULT_MAX_BYTES


def load_document(
    data: bytes,
    filename: str,
    *,
    password: str | None = None,
    max_bytes: int | None = None,
    max_chars: int | None = None,
    time_budget_s: float | None = None,
    page_time_budget_s: float = DEFAULT_PAGE_TIME_BUDGET_S,
    on_page: Callable[[int, int], None] | None = None,
) -> Document:
    """Turn an uploaded file into a Document.

    PDF or text is decided by the file's content first (a `%PDF-` header means PDF whatever the name),
    then by its extension (.pdf, .txt, .md, .markdown, .text); other names are read as text if they
    decode cleanly.

    Args:
        data: the file's bytes.
        filename: the name the user gave the file (only its last path component is kept).
        password: password for an encrypted PDF; PDFs with an empty user password open without one.
        max_bytes: refuse larger files; default `default_max_bytes()` (env LONGDOC_MAX_UPLOAD_MB).
        max_chars: refuse documents with more extracted characters; default DEFAULT_MAX_CHARS.
        time_budget_s: give up PDF text extraction after this many seconds (checked between pages); default
            a minute plus 0.2 s a page (`limits.document_time_budget_s`), so a 1,500-page book gets its time.
        page_time_budget_s: give up when one PDF page takes longer than this (enforced while the page
            is being read, so a crafted page stops within about this time plus a fraction of a second).
        on_page: for a PDF, called with (pages read, pages in the PDF) as its pages are read (progress).

    Returns:
        The Document; for PDFs one Page per PDF page, for text a single page labelled "1".

    Raises:
        DocumentError: a subclass saying what is wrong (empty, too large, corrupt, encrypted, scanned,
            binary, unsupported, timed out); any unexpected failure is wrapped in a plain DocumentError
            with the original exception as `__cause__`.
        TypeError: `data` is not bytes-like (a programming error, not a user one).
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"load_document needs the file's bytes, got {type(data).__name__}")
    data = bytes(data)
    name = _display_name(filename)
    limit_bytes = default_max_bytes() if max_bytes is None else max_bytes
    limit_chars = DEFAULT_MAX_CHARS if max_chars is None else max_chars
    try:
        if len(data) > limit_bytes:
            raise DocumentTooLargeError(
                f"'{name}' is {_megabytes(len(data))} MB, over the {_megabytes(limit_bytes)} MB limit. "
                "Upload a smaller file: split the document, or save only the chapters you need."
            )
        if not data.strip():
            raise EmptyDocumentError(
                f"This file is empty: '{name}' has no text in it. Check that you picked the right file."
            )
        sha256 = hashlib.sha256(data).hexdigest()
        if _looks_like_pdf(data, name):
            return _load_pdf_in_worker(
                data, name, sha256, password, limit_chars, time_budget_s, page_time_budget_s, on_page
            )
        text = _decode_text_file(data, name)
        return _make_text_document(text, name, sha256, limit_chars)
    except DocumentError:
        raise
    except MemoryError as error:
        raise needs_memory_error(name) from error
    except Exception as error:
        logger.warning("Unexpected failure loading %r", name, exc_info=True)
        raise unexpected_error(name, error) from error


def load_path(path: str | Path, **kw: object) -> Document:
    """Read a file from disk and load it with `load_document`.

    Args:
        path: the file to read.
        **kw: keyword arguments for `load_document` (password, max_bytes, max_chars, time_budget_s,
            page_time_budget_s, on_page).

    Returns:
        The Document, named after the file.

    Raises:
        DocumentError: as `load_document`, or when the file cannot be read.
    """
    path = Path(path)
    max_bytes = kw.get("max_bytes")
    limit_bytes = default_max_bytes() if max_bytes is None else int(max_bytes)  # type: ignore[arg-type]
    try:
        size = path.stat().st_size
        # Check before reading so a huge file is never pulled into memory.
        if size > limit_bytes:
            raise DocumentTooLargeError(
                f"'{path.name}' is {_megabytes(size)} MB, over the {_megabytes(limit_bytes)} MB limit. "
                "Use a smaller file: split the document, or save only the chapters you need."
            )
        data = path.read_bytes()
    except OSError as error:
        raise DocumentError(f"Could not open '{path}': {error.strerror or error}. Check the path.") from error
    return load_document(data, path.name, **kw)  # type: ignore[arg-type]


def text_document(text: str, name: str = "pasted text") -> Document:
    """Build a Document from text already in memory (pasted text, tests).

    The text gets the same cleanup as an uploaded text file (newlines, control characters).

    Args:
        text: the text.
        name: the name shown to users.

    Returns:
        A one-page Document of kind "text"; `sha256` is that of the cleaned text in UTF-8.

    Raises:
        EmptyDocumentError: the text is empty or only whitespace.
    """
    cleaned = clean_text(text)
    if not cleaned.strip():
        raise EmptyDocumentError(
            f"This text is empty: '{name}' has nothing to read. Paste or upload some text."
        )
    sha256 = hashlib.sha256(cleaned.encode("utf-8", "surrogatepass")).hexdigest()
    return Document(text=cleaned, pages=(Page(0, len(cleaned), "1"),), name=name, kind="text", sha256=sha256)


def _load_pdf_in_worker(
    data: bytes,
    name: str,
    sha256: str,
    password: str | None,
    max_chars: int,
    time_budget_s: float | None,
    page_time_budget_s: float = DEFAULT_PAGE_TIME_BUDGET_S,
    on_page: Callable[[int, int], None] | None = None,
) -> Document:
    """A PDF's Document, read by `extract_pdf_pages` in a worker process that is killed when a page or
    the whole document is over its time budget."""
    from longformer_core.documents.pdf_worker import default_pool  # multiprocessing: only when a PDF comes

    def extract(tables: bool) -> PdfText:
        return default_pool().extract(
            data,
            name,
            password=password,
            max_chars=max_chars,
            time_budget_s=time_budget_s,
            page_time_budget_s=page_time_budget_s,
            on_page=on_page,
            tables=tables,
        )

    try:
        result = extract(tables=True)
    except ExtractionWorkerError:
        # The worker died in C code; PDFium (tables) is the likelier culprit than pypdf, and the text alone is
        # worth having: read once more without tables, and if that dies too, the user gets the same message.
        logger.warning("The PDF worker died reading %r with tables; reading it again without them", name)
        result = extract(tables=False)
    pages = tuple(Page(start, end, label) for start, end, label in result.pages)
    return Document(text=result.text, pages=pages, name=name, kind="pdf", sha256=sha256, tables=result.tables)
