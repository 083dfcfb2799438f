"""PDFs: per-page text with pypdf, printed page labels, passwords and limits per page."""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType

from longformer_core.documents.decoding import _megabytes, clean_text
from longformer_core.documents.errors import (
    CorruptPdfError,
    DocumentError,
    DocumentTooLargeError,
    EmptyDocumentError,
    EncryptedPdfError,
    ExtractionTimeoutError,
    NoTextError,
)
from longformer_core.documents.limits import (
    _MIN_PDF_CHARS,
    _MIN_PDF_CHARS_PER_PAGE,
    DEFAULT_MAX_CHARS,
    MAX_PAGE_CONTENT_BYTES,
)
from longformer_core.documents.tables import Table, TableReader, might_hold_table

logger = logging.getLogger(__name__)

# --------------------------------------------------------------------------------------------------
# PDFs

_PAGE_SEPARATOR = "\n\n"
_SPACE_RUN = re.compile(r"[ \t]{2,}")
_LINE_EDGE_SPACES = re.compile(r"[ \t]*\n[ \t]*")
_MANY_NEWLINES = re.compile(r"\n{3,}")
_LINE_END_HYPHEN = re.compile(r"(?<=\w)-\n(?=\w)")


# Prefixes that keep their hyphen ("self-interest"); a typesetter never breaks a word right after them.
_HYPHEN_PREFIXES = frozenset({"self", "non", "cross", "well", "ill", "half", "all", "ex", "quasi"})


def _dehyphenate(match: re.Match[str]) -> str:
    # Join "inci-\ndent" but keep "COVID-\n19" and "self-\nService": only lowercase on both sides,
    # and not in compounds that already hold a hyphen ("team-to-\ncoordinating") or after a prefix.
    text = match.string
    before, after = text[match.start() - 1], text[match.end()]
    if not (before.islower() and after.islower()):
        return match.group()
    word_start = match.start()
    while word_start > 0 and (text[word_start - 1].isalnum() or text[word_start - 1] == "-"):
        word_start -= 1
    word = text[word_start : match.start()]
    if "-" in word or word.lower() in _HYPHEN_PREFIXES:
        return "-"
    return ""


def clean_pdf_page_text(text: str) -> str:
    """Light cleanup of one page of `extract_text()` output.

    Args:
        text: the page's raw extracted text.

    Returns:
        Text with control characters removed (`clean_text`), spaces at line starts/ends stripped, runs
        of spaces collapsed, words hyphenated across a line break joined when both halves are lowercase,
        runs of blank lines reduced to one, and the whole page stripped.
    """
    text = clean_text(text)
    text = _SPACE_RUN.sub(" ", text)
    # pypdf indents lines with stray spaces; layout is lost anyway, and blank lines must look blank.
    text = _LINE_EDGE_SPACES.sub("\n", text)
    text = _LINE_END_HYPHEN.sub(_dehyphenate, text)
    text = _MANY_NEWLINES.sub("\n\n", text)
    return text.strip()


def _corrupt_pdf_error(name: str, detail: str = "") -> CorruptPdfError:
    detail = f" ({detail})" if detail else ""
    return CorruptPdfError(
        f"This PDF could not be read (it may be damaged or incomplete): '{name}'{detail}. "
        "Try re-saving it or exporting it again as PDF, then upload the new file."
    )


@dataclass(frozen=True)
class PdfText:
    """A PDF's extracted text: the pages joined by a blank line, each page's place and label, its tables."""

    text: str
    pages: tuple[tuple[int, int, str], ...]  # (start, end exclusive, printed label) per page, in order
    tables: tuple[Table, ...] = ()  # every table found, spans in `text` (documents.tables)


def extract_pdf_pages(
    data: bytes,
    name: str,
    password: str | None = None,
    max_chars: int = DEFAULT_MAX_CHARS,
    on_progress: Callable[[str, int], None] | None = None,
    tables: bool = True,
) -> PdfText:
    """Read every page's text of a PDF, in this process and without time limits: this is what the PDF
    worker runs (its parent enforces the time budgets by killing it, see `longformer_core.documents.pdf_worker`).

    Args:
        data: the PDF's bytes.
        name: the file name shown in messages.
        password: password for an encrypted PDF ("" is always tried too).
        max_chars: refuse documents with more extracted characters (counted page by page).
        on_progress: called with ("opened", n_pages) once the page list is read, then ("page", index)
            before each page is read (0-based), so the parent knows which page is running.
        tables: also rebuild the tables of pages that show one (`documents.tables`; inside each page's
            time budget). False reads text only (bench/tables.py compares the two).

    Returns:
        The text (pages joined by a blank line), each page's offsets and label, and its tables.

    Raises:
        DocumentError: a subclass saying what is wrong (corrupt, encrypted, empty, scanned, too large).
        MemoryError: the worker's address-space limit was reached.
    """
    import pypdf  # imported here so text-only users never pay for it

    report = on_progress or (lambda kind, value: None)
    # Cap every decoder at the per-page content limit: pypdf's own extract_text() swallows its
    # limit errors and returns "", which would make a zip bomb look like a scanned page.
    limits = {
        "zlib_maximum_output_length": MAX_PAGE_CONTENT_BYTES,
        "lzw_maximum_output_length": MAX_PAGE_CONTENT_BYTES,
        "run_length_maximum_output_length": MAX_PAGE_CONTENT_BYTES,
        "brotli_maximum_output_length": MAX_PAGE_CONTENT_BYTES,
        "array_based_stream_maximum_output_length": MAX_PAGE_CONTENT_BYTES,
    }
    with pypdf.apply_configuration(**limits):
        reader, n_pages = _open_pdf(pypdf, data, name, password)
        labels = _page_labels(reader, n_pages)
        report("opened", n_pages)
        table_reader = TableReader(data, password, clean_pdf_page_text) if tables else None
        page_texts, page_tables = _read_pages(reader, n_pages, name, max_chars, report, table_reader)
    _require_text_layer(page_texts, name)
    pages = []
    found: list[Table] = []
    offset = 0
    for text, label, on_page in zip(page_texts, labels, page_tables):
        pages.append((offset, offset + len(text), label))
        found += [table.shifted(offset) for table in on_page]
        offset += len(text) + len(_PAGE_SEPARATOR)
    return PdfText(_PAGE_SEPARATOR.join(page_texts), tuple(pages), tuple(found))


def _open_pdf(pypdf: ModuleType, data: bytes, name: str, password: str | None) -> tuple[object, int]:
    """(reader, number of pages) of a PDF, decrypted when it is encrypted.

    Raises:
        DocumentError: corrupt (or a broken page list), wrong password, or no pages at all.
    """
    try:
        reader = pypdf.PdfReader(io.BytesIO(data), strict=False)
        encrypted = reader.is_encrypted
    except MemoryError:
        raise
    except Exception as error:  # includes RecursionError (cyclic objects)
        raise _corrupt_pdf_error(name) from error
    if encrypted:
        _decrypt(reader, name, password)
    try:
        n_pages = len(reader.pages)
    except MemoryError:
        raise
    except Exception as error:  # includes RecursionError (cyclic objects)
        raise _corrupt_pdf_error(name, "its list of pages is broken") from error
    if n_pages == 0:
        raise EmptyDocumentError(f"This file is empty: the PDF '{name}' has no pages.")
    return reader, n_pages


def _read_pages(
    reader: object,
    n_pages: int,
    name: str,
    max_chars: int,
    report: Callable[[str, int], None],
    table_reader: TableReader | None = None,
) -> tuple[list[str], list[list[Table]]]:
    """Each page's cleaned text and tables (page-relative spans; none without `table_reader`), reporting
    ("page", index) before each page; stops past `max_chars` characters.

    Raises:
        DocumentTooLargeError: the text so far is longer than `max_chars` (with the page where it happened).
    """
    page_texts: list[str] = []
    page_tables: list[list[Table]] = []
    n_chars = 0
    for index in range(n_pages):
        report("page", index)
        text = clean_pdf_page_text(_read_page(reader, index, name))
        page_texts.append(text)
        page_tables.append(_page_tables(table_reader, reader, index, text))
        n_chars += len(text) + len(_PAGE_SEPARATOR)
        if n_chars > max_chars + len(_PAGE_SEPARATOR):
            raise DocumentTooLargeError(
                f"'{name}' has more than {max_chars:,} characters of text (the limit) by page "
                f"{index + 1} of {n_pages}. Split it into smaller parts, or upload only the "
                "chapters you need."
            )
    return page_texts, page_tables


def _page_tables(table_reader: TableReader | None, reader: object, index: int, text: str) -> list[Table]:
    """The tables of one page (`documents.tables`), [] when tables are off or the page shows none."""
    if table_reader is None or not might_hold_table(text):
        return []
    size = _page_content_size(reader.pages[index])  # type: ignore[attr-defined]  # decoded once already
    return table_reader.page_tables(index, text, size)


def _require_text_layer(page_texts: list[str], name: str) -> None:
    """Raise NoTextError when the pages hold (almost) no text: a scanned PDF needs OCR first."""
    n_pages = len(page_texts)
    total = sum(len(text.strip()) for text in page_texts)
    if total < _MIN_PDF_CHARS or total < _MIN_PDF_CHARS_PER_PAGE * n_pages:
        raise NoTextError(
            f"This PDF has no text layer — it looks scanned: '{name}' has {n_pages} page(s) but only "
            f"{total} character(s) of text could be extracted. Run OCR first (e.g. ocrmypdf, or "
            "'Recognize text' in your PDF tool) and upload the result."
        )


def _read_page(reader: object, index: int, name: str) -> str:
    """extract_text() of one page, after checking its content streams are not a decompression bomb."""
    from pypdf.errors import DependencyError, LimitReachedError

    try:
        page = reader.pages[index]  # type: ignore[attr-defined]
        # Decoding here (pypdf caches the result for extract_text) is where a bomb hits the limit.
        if _page_content_size(page) > MAX_PAGE_CONTENT_BYTES:
            raise _page_too_large_error(name, index)
        return page.extract_text() or ""
    except (DocumentError, MemoryError):
        raise
    except LimitReachedError as error:
        raise _page_too_large_error(name, index) from error
    except DependencyError as error:
        raise _missing_crypto_error(name) from error
    except Exception as error:  # RecursionError (cyclic objects), odd structures
        raise _corrupt_pdf_error(name, f"page {index + 1} could not be read") from error


def _page_too_slow_error(name: str, index: int, budget_s: float) -> ExtractionTimeoutError:
    return ExtractionTimeoutError(
        f"Reading page {index + 1} of '{name}' took too long (over {budget_s:g} s; a page of text takes "
        "a fraction of a second). The page holds an enormous amount of drawing commands: a damaged or "
        "malicious file looks like this. If the file is genuine, re-save it with a PDF printer or remove "
        "that page, then upload it again."
    )


def _page_too_large_error(name: str, index: int) -> DocumentTooLargeError:
    return DocumentTooLargeError(
        f"Page {index + 1} of '{name}' holds more than {_megabytes(MAX_PAGE_CONTENT_BYTES)} MB of drawing "
        "data once unpacked: too much to read safely (a damaged or malicious file looks like this). If the "
        "file is genuine, remove or re-save that page (e.g. print the PDF to a new PDF) and upload it again."
    )


def _decrypt(reader: object, name: str, password: str | None) -> None:
    from pypdf import PasswordType
    from pypdf.errors import DependencyError

    # Try the user's password, then the empty one: a PDF "protected" only against printing opens
    # with "" even when the user typed something.
    attempts = [password, ""] if password else [""]
    try:
        for attempt in attempts:
            if reader.decrypt(attempt) != PasswordType.NOT_DECRYPTED:  # type: ignore[attr-defined]
                return
    except DependencyError as error:  # AES without the 'cryptography' package
        raise _missing_crypto_error(name) from error
    except Exception as error:  # includes RecursionError (cyclic objects)
        raise _corrupt_pdf_error(name, "its encryption data is broken") from error
    if password:
        raise EncryptedPdfError(
            f"The password for '{name}' was wrong: this PDF is password-protected. Check the password "
            "and enter it again, or upload an unlocked copy.",
            wrong_password=True,
        )
    raise EncryptedPdfError(
        f"This PDF is password-protected: enter its password, or upload an unlocked copy of '{name}'."
    )


def _missing_crypto_error(name: str) -> EncryptedPdfError:
    return EncryptedPdfError(
        f"'{name}' uses AES encryption, which needs the Python package 'cryptography' that is not "
        "installed here. Ask whoever runs the app to install it, or upload an unlocked copy."
    )


def _page_labels(reader: object, n_pages: int) -> list[str]:
    fallback = [str(i + 1) for i in range(n_pages)]
    try:
        labels = list(reader.page_labels)  # type: ignore[attr-defined]
    except Exception:
        logger.info("Ignoring unreadable /PageLabels", exc_info=True)
        return fallback
    if len(labels) != n_pages:
        return fallback
    # An empty or odd label is useless to show; number the page instead.
    return [clean_text(str(label)).strip()[:40] or fallback[i] for i, label in enumerate(labels)]


def _page_content_size(page: object) -> int:
    """Decoded length of a page's content streams, stopping early once over the limit."""
    contents = page.get("/Contents")  # type: ignore[attr-defined]
    if contents is None:
        return 0
    contents = contents.get_object()
    streams = contents if isinstance(contents, list) else [contents]
    total = 0
    for stream in streams:
        stream = stream.get_object()
        if hasattr(stream, "get_data"):
            total += len(stream.get_data())
        if total > MAX_PAGE_CONTENT_BYTES:
            break
    return total
