"""Text files: cleaning control characters, decoding bytes, and telling text from binary."""

from __future__ import annotations

import codecs
import logging
import os
import re

from longformer_core.documents.errors import (
    BinaryTextError,
    CorruptPdfError,
    DocumentError,
    DocumentTooLargeError,
    EmptyDocumentError,
    UnsupportedFileTypeError,
)
from longformer_core.documents.limits import (
    _MAX_CONTROL_RATIO,
    _MAX_CP1252_NON_ASCII_RATIO,
    PDF_EXTENSIONS,
    TEXT_EXTENSIONS,
)
from longformer_core.documents.model import Document, Page

logger = logging.getLogger(__name__)

# --------------------------------------------------------------------------------------------------
# Text cleanup shared by text files and PDF pages

_BIDI_CONTROLS = (
    "\u200e\u200f" + "".join(map(chr, range(0x202A, 0x202F))) + "".join(map(chr, range(0x2066, 0x206A)))
)
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
