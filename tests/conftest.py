"""Shared fixtures. Real data comes from LONGDOC_DATA_DIR (default ../shared/data); tests skip without it."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent


def data_dir() -> Path:
    return Path(os.environ.get("LONGDOC_DATA_DIR", REPO_ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The shared public data folder; skips the test when it is absent."""
    path = data_dir()
    if not path.is_dir():
        pytest.skip(f"shared data not found at {path} (set LONGDOC_DATA_DIR)")
    return path


@pytest.fixture(scope="session")
def nist_pdf(shared_data: Path) -> Path:
    path = shared_data / "pdfs" / "nist_sp800-61r2.pdf"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    return path


# --------------------------------------------------------------------------------------------------
# PDF factories: every test PDF is generated in the test run, nothing is downloaded.


def _pdf_string(text: str) -> bytes:
    """A PDF literal string body in WinAnsi (cp1252), with ( ) \\ escaped."""
    data = text.encode("cp1252")
    return data.replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)")


def build_pdf(
    pages: list[str],
    password: str | None = None,
    *,
    algorithm: str | None = None,
    page_labels: list[tuple[int, int, str | None, str | None, int]] | None = None,
) -> bytes:
    """A real PDF whose page i shows `pages[i]` (one text line per "\\n") in Helvetica.

    Args:
        pages: text of each page; "" gives a blank page (no text layer, like a scan).
        password: encrypt with this user password ("" = opens without one).
        algorithm: pypdf encryption algorithm ("RC4-128", "AES-128", "AES-256"); None = pypdf default.
        page_labels: (first_index, last_index, style, prefix, start) ranges for /PageLabels,
            style one of "/D", "/r", "/R", "/a", "/A".

    Returns:
        The PDF bytes; pypdf's extract_text() gives each page's lines back.
    """
    from pypdf import PdfWriter
    from pypdf.generic import DecodedStreamObject, DictionaryObject, NameObject

    writer = PdfWriter()
    font = writer._add_object(
        DictionaryObject(
            {
                NameObject("/Type"): NameObject("/Font"),
                NameObject("/Subtype"): NameObject("/Type1"),
                NameObject("/BaseFont"): NameObject("/Helvetica"),
                NameObject("/Encoding"): NameObject("/WinAnsiEncoding"),
            }
        )
    )
    for text in pages:
        page = writer.add_blank_page(612, 792)
        page[NameObject("/Resources")] = DictionaryObject(
            {NameObject("/Font"): DictionaryObject({NameObject("/F1"): font})}
        )
        if text:
            ops = [b"BT /F1 11 Tf 14 TL 72 740 Td"]
            ops += [b"(" + _pdf_string(line) + b") Tj T*" for line in text.split("\n")]
            ops.append(b"ET")
            stream = DecodedStreamObject()
            stream.set_data(b"\n".join(ops))
            page[NameObject("/Contents")] = writer._add_object(stream)
    for first, last, style, prefix, start in page_labels or []:
        writer.set_page_label(first, last, style=style, prefix=prefix, start=start)
    if password is not None:
        writer.encrypt(password, algorithm=algorithm)
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


def raw_pdf(objects: list[bytes]) -> bytes:
    """A hand-written PDF: object i+1 has body objects[i]; object 1 must be the catalog.

    For structures pypdf's writer refuses to make (cycles, absurd nesting). The xref offsets are right.
    """
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


@pytest.fixture(scope="session")
def make_pdf():
    """`build_pdf` as a fixture: make_pdf(["page one text", "page two"], password=None) -> bytes."""
    return build_pdf


@pytest.fixture(scope="session")
def make_raw_pdf():
    """`raw_pdf` as a fixture: make_raw_pdf([catalog, pages, page, ...]) -> bytes."""
    return raw_pdf
