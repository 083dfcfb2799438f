"""Bytes -> Document: the text of an uploaded PDF or text file, with page boundaries as char offsets.

Everything downstream (tokenisation, answers, page numbers shown to the user) works on `Document.text`
and maps character offsets back to pages with `Document.page_of`. Loading never lets a raw library
exception escape: every failure is a `DocumentError` whose message tells a non-programmer what happened
and what to do next, so the app can show `str(error)` as is.

Also here: regex-based `sentence_spans` and `paragraph_spans` (no nltk), used by the global-attention
strategies and by the sentence-level baselines.
"""

from __future__ import annotations

import bisect
import codecs
import functools
import hashlib
import io
import logging
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

DEFAULT_MAX_BYTES = 50 * 1024 * 1024  # refuse uploads bigger than this (override: LONGDOC_MAX_UPLOAD_MB)
DEFAULT_MAX_CHARS = 2_000_000  # ~400k words: far beyond any model's context, and still fast to split
MAX_PAGE_CONTENT_BYTES = 50 * 1024 * 1024  # decoded drawing data of one PDF page; more is a zip bomb
MAX_UPLOAD_ENV = "LONGDOC_MAX_UPLOAD_MB"

TEXT_EXTENSIONS = frozenset({".txt", ".md", ".markdown", ".text"})
PDF_EXTENSIONS = frozenset({".pdf"})

# Below these a PDF is treated as scanned (images of pages, no text layer).
_MIN_PDF_CHARS = 20
_MIN_PDF_CHARS_PER_PAGE = 5.0

# Text files whose decoded characters are more than this share of control characters are binary.
_MAX_CONTROL_RATIO = 0.02
# cp1252 decodes almost any byte string; real legacy text is still mostly ASCII.
_MAX_CP1252_NON_ASCII_RATIO = 0.3


# --------------------------------------------------------------------------------------------------
# Data types


@dataclass(frozen=True)
class Page:
    """One page of a document as a half-open range of `Document.text`."""

    start: int  # char offset in Document.text (inclusive)
    end: int  # exclusive; separators between pages belong to no page
    label: str  # printed page label from the PDF (/PageLabels), else "1", "2", ...


@dataclass(frozen=True)
class Document:
    """Extracted text of one uploaded file, with page boundaries.

    Build one with `load_document`, `load_path` or `text_document` rather than by hand.
    """

    text: str
    pages: tuple[Page, ...]  # in order, non-overlapping; at least one
    name: str  # file name shown to users
    kind: str  # "pdf" | "text"
    sha256: str  # of the original bytes (text_document: of the UTF-8 text); a cache key

    def __post_init__(self) -> None:
        if not self.pages:
            raise ValueError("Document needs at least one Page (use Page(0, len(text), '1') for plain text).")

    @functools.cached_property
    def _page_starts(self) -> list[int]:
        # cached_property writes straight into __dict__, so it works on a frozen dataclass.
        return [page.start for page in self.pages]

    @property
    def n_pages(self) -> int:
        """Number of pages (1 for text files)."""
        return len(self.pages)

    @property
    def n_chars(self) -> int:
        """Number of characters in `text`."""
        return len(self.text)

    def page_index_of(self, char_offset: int) -> int:
        """0-based index of the page holding `char_offset` (see `page_of`)."""
        index = bisect.bisect_right(self._page_starts, char_offset) - 1
        return min(max(index, 0), len(self.pages) - 1)

    def page_of(self, char_offset: int) -> int:
        """1-based page number holding a character offset.

        Args:
            char_offset: offset into `text`. Negative offsets count as the first page, offsets at or
                past the end as the last page; an offset in the blank separator between two pages
                belongs to the page before it.

        Returns:
            The page number, 1 .. n_pages (a position in the file, not the printed label).
        """
        return self.page_index_of(char_offset) + 1

    def page_label_of(self, char_offset: int) -> str:
        """Printed label (e.g. "iv", "12", "A-3") of the page holding `char_offset`.

        Args:
            char_offset: offset into `text`, clamped as in `page_of`.

        Returns:
            The page's label; PDFs without /PageLabels give "1", "2", ...
        """
        return self.pages[self.page_index_of(char_offset)].label

    def page_text(self, page_number: int) -> str:
        """Text of one page.

        Args:
            page_number: 1-based page number.

        Returns:
            The page's text (may be "" for a blank page).
        """
        if not 1 <= page_number <= len(self.pages):
            raise IndexError(f"page_number must be in 1..{len(self.pages)}, got {page_number}")
        page = self.pages[page_number - 1]
        return self.text[page.start : page.end]


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


# --------------------------------------------------------------------------------------------------
# Loading


def default_max_bytes() -> int:
    """Upload size limit in bytes: env LONGDOC_MAX_UPLOAD_MB if set to a positive number, else 50 MB.

    Returns:
        The limit in bytes.
    """
    raw = os.environ.get(MAX_UPLOAD_ENV, "").strip()
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
    time_budget_s: float = 60.0,
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
        time_budget_s: give up PDF text extraction after this many seconds (checked between pages).

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
            return _load_pdf(data, name, sha256, password, limit_chars, time_budget_s)
        text = _decode_text_file(data, name)
        return _make_text_document(text, name, sha256, limit_chars)
    except DocumentError:
        raise
    except MemoryError as error:
        raise DocumentTooLargeError(
            f"'{name}' needs more memory to read than this machine has. Upload a smaller file."
        ) from error
    except Exception as error:
        logger.warning("Unexpected failure loading %r", name, exc_info=True)
        raise DocumentError(
            f"Something unexpected went wrong while reading '{name}' ({type(error).__name__}). "
            "Try saving the file again (as PDF or plain text) and uploading it once more."
        ) from error


def load_path(path: str | Path, **kw: object) -> Document:
    """Read a file from disk and load it with `load_document`.

    Args:
        path: the file to read.
        **kw: keyword arguments for `load_document` (password, max_bytes, max_chars, time_budget_s).

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
        raise EmptyDocumentError(f"This text is empty: '{name}' has nothing to read. Paste or upload some text.")
    sha256 = hashlib.sha256(cleaned.encode("utf-8", "surrogatepass")).hexdigest()
    return Document(text=cleaned, pages=(Page(0, len(cleaned), "1"),), name=name, kind="text", sha256=sha256)


# --------------------------------------------------------------------------------------------------
# Text cleanup shared by text files and PDF pages

_BIDI_CONTROLS = "\u200e\u200f" + "".join(map(chr, range(0x202A, 0x202F))) + "".join(map(chr, range(0x2066, 0x206A)))
# Control characters become spaces (keeps word boundaries); bidi controls, BOMs and soft hyphens vanish
# (they are invisible, and bidi controls can disguise what text says).
_CLEAN_TABLE: dict[int, str | None] = {
    **{code: " " for code in range(0x20) if chr(code) not in "\n\t"},
    **{code: " " for code in range(0x7F, 0xA0)},  # DEL and C1 controls
    **{ord(char): None for char in _BIDI_CONTROLS},
    0xFEFF: None,  # byte order mark / zero-width no-break space
    0x00AD: None,  # soft hyphen
    0x2028: "\n",  # line separator: str.splitlines would break there, so make it a real newline
    0x2029: "\n",  # paragraph separator
    # Lone surrogates (only possible in pasted str) break UTF-8 encoding in tokenizers.
    **{code: "\ufffd" for code in range(0xD800, 0xE000)},
}


def clean_text(text: str) -> str:
    """Normalise newlines to \\n and remove characters that are unsafe or invisible downstream.

    Args:
        text: raw decoded text.

    Returns:
        The text with CRLF/CR turned into \\n, C0/C1 control characters (except \\n and \\t) replaced by
        spaces, and bidi controls, BOMs and soft hyphens removed. Everything else is kept.
    """
    return text.replace("\r\n", "\n").replace("\r", "\n").translate(_CLEAN_TABLE)


# --------------------------------------------------------------------------------------------------
# Text files


def _display_name(filename: str) -> str:
    # Browsers send bare names, but a name could carry a path or control characters: show neither.
    base = re.split(r"[\\/]", str(filename or ""))[-1]
    base = clean_text(base).replace("\n", " ").strip()
    return base[:200] or "untitled"


def _megabytes(n_bytes: int) -> str:
    return f"{n_bytes / (1024 * 1024):.1f}"


def _extension(name: str) -> str:
    return os.path.splitext(name)[1].lower()


# Magic numbers of formats people upload by mistake -> what to call them in a message.
_BINARY_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"PK\x03\x04", "a Word/OpenDocument/EPUB file or a ZIP archive"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an old-style Word or Excel file"),
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF87a", "a GIF image"),
    (b"GIF89a", "a GIF image"),
    (b"II*\x00", "a TIFF image"),
    (b"MM\x00*", "a TIFF image"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"{\\rtf", "a Rich Text (RTF) file"),
)


def _known_binary_kind(data: bytes) -> str | None:
    for signature, description in _BINARY_SIGNATURES:
        if data.startswith(signature):
            return description
    return None


def _looks_like_pdf(data: bytes, name: str) -> bool:
    if _extension(name) in TEXT_EXTENSIONS:
        # A text file may mention "%PDF-" near its start; only a real header at byte 0 counts.
        return data.lstrip()[:5] == b"%PDF-"
    if b"%PDF-" in data[:1024]:  # the PDF spec tolerates junk before the header
        return True
    if _extension(name) in PDF_EXTENSIONS:
        raise CorruptPdfError(
            f"This PDF could not be read (it may be damaged or incomplete): '{name}' is named .pdf but "
            "its content is not a PDF. Try re-saving it or exporting it again as PDF."
        )
    return False


def _too_many_controls(text: str) -> bool:
    # The +2 lets a short note with a stray control character or two through (they become spaces).
    n_control = sum(text.count(chr(code)) for code in range(0x20) if chr(code) not in "\t\n\r\f\v")
    return n_control > _MAX_CONTROL_RATIO * len(text) + 2


def _decode_text_file(data: bytes, name: str) -> str:
    """Bytes of a text file -> str, or BinaryTextError / UnsupportedFileTypeError."""
    is_text_name = _extension(name) in TEXT_EXTENSIONS
    binary_kind = _known_binary_kind(data)
    # RTF is text underneath: read it if the user insists it is text (.txt), refuse it otherwise.
    if binary_kind is not None and not (is_text_name and data.startswith(b"{\\rtf")):
        raise _not_text_error(name, is_text_name, binary_kind)

    text: str | None = None
    # UTF-32 BOMs first: the UTF-32-LE BOM starts with the UTF-16-LE one.
    for bom, encoding in (
        (codecs.BOM_UTF32_LE, "utf-32"),
        (codecs.BOM_UTF32_BE, "utf-32"),
        (codecs.BOM_UTF8, "utf-8-sig"),
        (codecs.BOM_UTF16_LE, "utf-16"),
        (codecs.BOM_UTF16_BE, "utf-16"),
    ):
        if data.startswith(bom):
            try:
                text = data.decode(encoding)
            except UnicodeDecodeError:
                text = None
            break
    else:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            try:
                legacy = data.decode("cp1252")
            except UnicodeDecodeError:
                legacy = None
            # cp1252 maps nearly every byte to a character, so only accept output that reads as text.
            if legacy is not None:
                non_ascii = sum(1 for char in legacy if ord(char) > 0x7F)
                if non_ascii <= _MAX_CP1252_NON_ASCII_RATIO * len(legacy):
                    text = legacy
    if text is None or _too_many_controls(text):
        raise _not_text_error(name, is_text_name, None)
    if "\ufffd" in text and text.count("\ufffd") > _MAX_CONTROL_RATIO * len(text):
        raise _not_text_error(name, is_text_name, None)  # mostly undecodable already
    return text


def _not_text_error(name: str, is_text_name: bool, binary_kind: str | None) -> DocumentError:
    looks = f" It looks like {binary_kind}." if binary_kind else ""
    if is_text_name:
        return BinaryTextError(
            f"'{name}' is named as a text file but contains binary data or an unknown text encoding.{looks} "
            "Save it as plain text (UTF-8) or export it as PDF, then upload it again."
        )
    return UnsupportedFileTypeError(
        f"'{name}' is not a file type this app can read.{looks} "
        "Upload a PDF or a plain-text file (.txt, .md): for example, save or export it as PDF first."
    )


def _make_text_document(text: str, name: str, sha256: str, max_chars: int) -> Document:
    cleaned = clean_text(text)
    if not cleaned.strip():
        raise EmptyDocumentError(
            f"This file is empty: '{name}' has no readable text in it. Check that you picked the right file."
        )
    if len(cleaned) > max_chars:
        raise DocumentTooLargeError(
            f"'{name}' has {len(cleaned):,} characters of text, over the limit of {max_chars:,}. "
            "Split it into smaller parts, or upload only the chapters you need."
        )
    return Document(text=cleaned, pages=(Page(0, len(cleaned), "1"),), name=name, kind="text", sha256=sha256)


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


def _load_pdf(
    data: bytes, name: str, sha256: str, password: str | None, max_chars: int, time_budget_s: float
) -> Document:
    import pypdf  # imported here so text-only users never pay for it

    started = time.monotonic()
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
        try:
            reader = pypdf.PdfReader(io.BytesIO(data), strict=False)
            encrypted = reader.is_encrypted
        except Exception as error:  # includes RecursionError (cyclic objects)
            raise _corrupt_pdf_error(name) from error
        if encrypted:
            _decrypt(reader, name, password)
        try:
            n_pages = len(reader.pages)
        except Exception as error:  # includes RecursionError (cyclic objects)
            raise _corrupt_pdf_error(name, "its list of pages is broken") from error
        if n_pages == 0:
            raise EmptyDocumentError(f"This file is empty: the PDF '{name}' has no pages.")
        labels = _page_labels(reader, n_pages)

        page_texts: list[str] = []
        n_chars = 0
        for index in range(n_pages):
            elapsed = time.monotonic() - started
            if elapsed > time_budget_s:
                raise ExtractionTimeoutError(
                    f"Reading '{name}' took too long: after {elapsed:.0f} s (limit {time_budget_s:.0f} s) it "
                    f"had only reached page {index + 1} of {n_pages}. Try a smaller file (split the PDF), "
                    "or re-save it with a PDF printer, which often makes text extraction much faster."
                )
            raw = _extract_page_text(reader, index, name)
            text = clean_pdf_page_text(raw)
            page_texts.append(text)
            n_chars += len(text) + len(_PAGE_SEPARATOR)
            if n_chars > max_chars + len(_PAGE_SEPARATOR):
                raise DocumentTooLargeError(
                    f"'{name}' has more than {max_chars:,} characters of text (the limit) by page "
                    f"{index + 1} of {n_pages}. Split it into smaller parts, or upload only the "
                    "chapters you need."
                )

    total = sum(len(text.strip()) for text in page_texts)
    if total < _MIN_PDF_CHARS or total < _MIN_PDF_CHARS_PER_PAGE * n_pages:
        raise NoTextError(
            f"This PDF has no text layer — it looks scanned: '{name}' has {n_pages} page(s) but only "
            f"{total} character(s) of text could be extracted. Run OCR first (e.g. ocrmypdf, or "
            "'Recognize text' in your PDF tool) and upload the result."
        )

    pages: list[Page] = []
    offset = 0
    for text, label in zip(page_texts, labels):
        pages.append(Page(offset, offset + len(text), label))
        offset += len(text) + len(_PAGE_SEPARATOR)
    return Document(
        text=_PAGE_SEPARATOR.join(page_texts), pages=tuple(pages), name=name, kind="pdf", sha256=sha256
    )


def _extract_page_text(reader: object, index: int, name: str) -> str:
    """extract_text() of one page, after checking its content streams are not a decompression bomb."""
    from pypdf.errors import DependencyError, LimitReachedError

    try:
        page = reader.pages[index]  # type: ignore[attr-defined]
        # Decoding here (pypdf caches the result for extract_text) is where a bomb hits the limit.
        content_size = _page_content_size(page)
    except LimitReachedError as error:
        raise _page_too_large_error(name, index) from error
    except DependencyError as error:
        raise _missing_crypto_error(name) from error
    except Exception as error:  # includes RecursionError (cyclic objects)
        raise _corrupt_pdf_error(name, f"page {index + 1} could not be read") from error
    if content_size > MAX_PAGE_CONTENT_BYTES:
        raise _page_too_large_error(name, index)
    try:
        return page.extract_text() or ""
    except DependencyError as error:
        raise _missing_crypto_error(name) from error
    except Exception as error:  # includes RecursionError and pypdf's LimitReachedError for odd structures
        raise _corrupt_pdf_error(name, f"page {index + 1} could not be read") from error


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


# --------------------------------------------------------------------------------------------------
# Sentences and paragraphs

# Abbreviations that (almost) never end a sentence; lowercase, without the final period.
# Left out on purpose because they often do end one: etc, inc, ltd, co, jr, sr.
_ABBREVIATIONS = frozenset(
    ["mr", "mrs", "ms", "mx", "dr", "prof", "st", "mt", "rev", "hon", "gen", "col", "capt", "lt", "sgt", "gov", "sen", "rep", "pres", "e.g", "i.e", "cf", "vs", "viz", "al", "approx", "ca", "resp", "fig", "figs", "eq", "eqs", "no", "nos", "vol", "vols", "pp", "sec", "ch", "ref", "refs", "art", "para", "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec"]
)
# A terminator, closing quotes/brackets, whitespace, then what may open the next sentence.
_SENTENCE_END = re.compile(r"[.!?…]+[\"'”’»)\]]*(\s+)(?=[\"'“‘«(\[]?\w)")
_CJK_SENTENCE_END = re.compile(r"[。！？]+[」』”’）]*")
_BLANK_LINES = re.compile(r"\n[^\S\n]*\n\s*")
# Bullets, including the private-use symbol-font glyphs PDFs extract (NIST's checkmark is U+F03C).
_BULLET_START = re.compile(r"[^\S\n]*(?:[-*•◦▪‣●■□➢\ue000-\uf8ff]|\d{1,3}[.)]|\(?[a-z][.)])\s")
_OPENERS = "\"'“‘«(["
_DOTTED_ACRONYM = re.compile(r"(?:[^\W\d_]\.)+[^\W\d_]")  # letters only: "3.2." may end one
_SHORT_LINE_RATIO = 0.6  # sentence_spans: a line this much shorter than typical ends a unit
_PARAGRAPH_LINE_RATIO = 0.8  # paragraph_spans: "clearly shorter" than typical


def _is_sentence_boundary(text: str, match: re.Match[str], region_start: int) -> bool:
    """Decide whether a `_SENTENCE_END` match really ends a sentence."""
    after = match.end()
    while after < len(text) and text[after] in _OPENERS:
        after += 1
    if after >= len(text):
        return False
    if text[after].islower():
        return False  # "e.g. the", "3 p.m. yesterday"; caseless scripts (CJK, Arabic) may split
    if text[match.start()] != ".":
        return True  # ! ? … always end one
    if match.group().startswith("..."):
        return True
    # The word in front of the period, e.g. "(e.g", "J", "U.S", "Fig".
    word_start = match.start()
    while word_start > region_start and not text[word_start - 1].isspace():
        word_start -= 1
    word = text[word_start : match.start()].lstrip(_OPENERS).lower()
    if not word:
        return True
    if word in _ABBREVIATIONS:
        return False
    if len(word) == 1 and word.isalpha():
        return False  # an initial: "J. Smith"
    if word[0].isdigit() and (word_start == region_start or text[word_start - 1] == "\n"):
        return False  # a list number or section number opening a line: "4. If the team ..."
    if _DOTTED_ACRONYM.fullmatch(word):  # noqa: SIM103 - one rule per line reads better
        return False  # "U.S.", "e.g.", "Ph.D." followed by a capitalised name
    return True


def _typical_line_length(lengths: list[int]) -> float:
    """75th percentile of non-empty line lengths: the width of a full line in wrapped text."""
    nonzero = sorted(length for length in lengths if length > 0)
    if not nonzero:
        return 0.0
    return float(nonzero[(3 * (len(nonzero) - 1)) // 4])


def _lines(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """(start, end) of each line in text[start:end], ends excluding the newline."""
    lines = []
    position = start
    while position <= end:
        newline = text.find("\n", position, end)
        if newline < 0:
            lines.append((position, end))
            break
        lines.append((position, newline))
        position = newline + 1
    return lines


def _stripped_spans(text: str, cuts: list[int], start: int, end: int) -> list[tuple[int, int]]:
    """Cut [start, end) at the sorted positions `cuts`; strip each piece, drop empty ones."""
    spans = []
    previous = start
    for cut in [*cuts, end]:
        if cut <= previous:
            continue
        span_start, span_end = previous, cut
        while span_start < span_end and text[span_start].isspace():
            span_start += 1
        while span_end > span_start and text[span_end - 1].isspace():
            span_end -= 1
        if span_start < span_end:
            spans.append((span_start, span_end))
        previous = cut
    return spans


def sentence_spans(text: str, start: int = 0, end: int | None = None) -> list[tuple[int, int]]:
    """Character spans of the sentences in text[start:end], by regex (no nltk).

    A sentence ends after . ! ? … (plus closing quotes/brackets) when whitespace and an uppercase
    letter, digit or opening quote follow, unless the period belongs to an abbreviation ("e.g.",
    "Dr.", "Fig.", "U.S."), an initial ("J. Smith") or a number ("3.5" has no space). Blank lines,
    lines much shorter than the typical line (headings, list items, paragraph ends) and lines
    followed by a bulleted/numbered item also end one.

    Args:
        text: the whole text; offsets are into it.
        start: where to start looking (inclusive).
        end: where to stop (exclusive); None means len(text).

    Returns:
        Ordered, non-overlapping (start, end) offsets into `text`, each stripped of surrounding
        whitespace and never empty.
    """
    end = len(text) if end is None else min(end, len(text))
    start = max(start, 0)
    if start >= end:
        return []
    cuts: list[int] = []
    for match in _SENTENCE_END.finditer(text, start, end):
        if _is_sentence_boundary(text, match, start):
            cuts.append(match.start(1))
    for match in _CJK_SENTENCE_END.finditer(text, start, end):
        cuts.append(match.end())
    cuts.extend(_line_break_cuts(text, start, end, _SHORT_LINE_RATIO, need_terminator=False))
    cuts.sort()
    return _stripped_spans(text, cuts, start, end)


def paragraph_spans(text: str) -> list[tuple[int, int]]:
    """Character spans of the paragraphs of `text`.

    Paragraphs are separated by blank lines. PDF text often has none, so a line break also separates
    two paragraphs when the line before it is clearly shorter than the typical line (the last line of
    a paragraph, or a heading), does not end with a comma, semicolon, dash or opening bracket, and the
    next line starts with an uppercase letter or digit; and before every bulleted/numbered item.

    Args:
        text: the text.

    Returns:
        Ordered, non-overlapping (start, end) offsets, stripped of surrounding whitespace, non-empty.
    """
    cuts = _line_break_cuts(text, 0, len(text), _PARAGRAPH_LINE_RATIO, need_terminator=True)
    cuts.sort()
    return _stripped_spans(text, cuts, 0, len(text))


# A short line ending like this runs on into the next one, so it is no paragraph end.
_CONTINUES_LINE = (",", ";", "-", "–", "—", "(", "/", "&")


def _line_break_cuts(text: str, start: int, end: int, short_ratio: float, need_terminator: bool) -> list[int]:
    """Cut positions at blank lines and at line breaks that end a heading, list item or paragraph."""
    cuts = [match.start() for match in _BLANK_LINES.finditer(text, start, end)]
    lines = _lines(text, start, end)
    if len(lines) < 2:
        return cuts
    lengths = [len(text[a:b].strip()) for a, b in lines]
    threshold = short_ratio * _typical_line_length(lengths)
    for i in range(len(lines) - 1):
        line_start, line_end = lines[i]
        if lengths[i] == 0 or lengths[i + 1] == 0:
            continue  # blank lines are handled above
        next_start = lines[i + 1][0]
        next_is_item = _BULLET_START.match(text, next_start, lines[i + 1][1]) is not None
        if need_terminator:
            if next_is_item:
                cuts.append(line_end)
                continue
            line = text[line_start:line_end].rstrip()
            if lengths[i] >= threshold or line.endswith(_CONTINUES_LINE):
                continue
            first = text[next_start : lines[i + 1][1]].lstrip()[:1]
            if first and (first.isupper() or first.isdigit()):
                cuts.append(line_end)
        elif next_is_item or lengths[i] < threshold:
            cuts.append(line_end)
    return cuts
