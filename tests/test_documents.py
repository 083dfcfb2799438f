"""Tests for longformer_core.documents: loading PDFs and text, clear errors, page mapping, sentence splits.

Every input is generated here (PDFs with pypdf's writer or by hand); only the NIST test reads shared data.
Hostile files (empty, broken, locked, scanned, bombs, crafted structures, binary, odd encodings) are the
corpus in test_hostile.py; this file keeps the ordinary behaviour and the unit checks of each guard.
"""

from __future__ import annotations

import codecs
import hashlib
import re
import time

import pytest

from longformer_core import documents
from longformer_core.documents import (
    DEFAULT_MAX_BYTES,
    CorruptPdfError,
    Document,
    DocumentError,
    DocumentTooLargeError,
    EmptyDocumentError,
    EncryptedPdfError,
    ExtractionTimeoutError,
    Page,
    UnsupportedFileTypeError,
    load_document,
    load_path,
    paragraph_spans,
    sentence_spans,
    text_document,
)
from longformer_core.documents.pdf import extract_pdf_pages

LOREM = (
    "The incident response team met on Monday. They reviewed the logs from the firewall and the "
    "mail server, then wrote a short report for management."
)


# --------------------------------------------------------------------------------------------------
# Document and page mapping


def _three_pages() -> Document:
    # "alpha" [0,5) sep [5,7) "" [7,7) sep [7,9) "gamma" [9,14)
    text = "alpha\n\n\n\ngamma"
    pages = (Page(0, 5, "i"), Page(7, 7, "ii"), Page(9, 14, "1"))
    return Document(text=text, pages=pages, name="t.pdf", kind="pdf", sha256="x")


def test_page_of_maps_offsets_to_page_numbers_at_boundaries() -> None:
    doc = _three_pages()
    assert [doc.page_of(i) for i in range(5)] == [1] * 5
    assert doc.page_of(5) == 1 and doc.page_of(6) == 1  # separator belongs to the page before
    assert doc.page_of(7) == 2 and doc.page_of(8) == 2  # empty page, then its separator
    assert doc.page_of(9) == 3 and doc.page_of(13) == 3
    assert doc.page_of(14) == 3 and doc.page_of(10**9) == 3  # at/after the end -> last page
    assert doc.page_of(-1) == 1 and doc.page_of(-(10**9)) == 1


def test_page_label_of_and_page_text() -> None:
    doc = _three_pages()
    assert doc.page_label_of(0) == "i"
    assert doc.page_label_of(7) == "ii"
    assert doc.page_label_of(12) == "1"
    assert doc.page_label_of(999) == "1"
    assert doc.page_text(1) == "alpha" and doc.page_text(2) == "" and doc.page_text(3) == "gamma"
    assert doc.n_pages == 3 and doc.n_chars == 14
    with pytest.raises(IndexError):
        doc.page_text(4)


def test_document_needs_a_page() -> None:
    with pytest.raises(ValueError):
        Document(text="x", pages=(), name="x", kind="text", sha256="")


def test_text_document_is_one_page_and_cleaned() -> None:
    doc = text_document("Hello\r\nworld\u202e!\x00")
    assert doc.text == "Hello\nworld! "
    assert doc.pages == (Page(0, len(doc.text), "1"),)
    assert doc.kind == "text" and doc.name == "pasted text"
    assert doc.sha256 == hashlib.sha256(doc.text.encode()).hexdigest()
    assert doc.page_of(3) == 1 and doc.page_label_of(3) == "1"
    with pytest.raises(EmptyDocumentError, match="empty"):
        text_document(" \n\t ")


# --------------------------------------------------------------------------------------------------
# Text files


def test_utf8_text_file() -> None:
    data = "Résumé of the café — naïve.\r\nSecond line.\rThird.".encode()
    doc = load_document(data, "notes.txt")
    assert doc.text == "Résumé of the café — naïve.\nSecond line.\nThird."
    assert doc.kind == "text" and doc.name == "notes.txt" and doc.n_pages == 1
    assert doc.sha256 == hashlib.sha256(data).hexdigest()


def test_name_drops_directories_and_controls() -> None:
    doc = load_document(b"Some text here.", "C:\\Users\\me\\report\u202egnp.md")
    assert doc.name == "reportgnp.md"
    assert load_document(b"Some text.", "").name == "untitled"


def test_utf8_bom_is_stripped() -> None:
    doc = load_document(codecs.BOM_UTF8 + "Grüße aus Köln.".encode(), "bom.txt")
    assert doc.text == "Grüße aus Köln."


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be"])
def test_utf16_with_bom(encoding: str) -> None:
    text = "Unicode text: Ελληνικά, 日本語, emoji 🙂.\nLine two."
    raw = text.encode(encoding)
    if encoding == "utf-16-le":
        raw = codecs.BOM_UTF16_LE + raw
    elif encoding == "utf-16-be":
        raw = codecs.BOM_UTF16_BE + raw
    assert load_document(raw, "u16.txt").text == text


def test_a_few_nul_bytes_are_cleaned_not_refused() -> None:
    data = (LOREM * 5).encode() + b"\x00" + b" tail."
    doc = load_document(data, "almost.txt")
    assert "\x00" not in doc.text and doc.text.endswith("  tail.")


@pytest.mark.parametrize(
    "data, name, hint",
    [
        (b"PK\x03\x04\x14\x00\x06\x00" + b"\x00" * 64, "report.docx", "Word"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 64, "scan.png", "image"),
        (b"\xff\xd8\xff\xe0" + b"\x00" * 64, "photo.jpg", "image"),
        (b"{\\rtf1\\ansi Hello}", "letter.rtf", "RTF"),
        (bytes(range(256)) * 4, "blob.bin", "PDF"),
    ],
)
def test_unsupported_file_types(data: bytes, name: str, hint: str) -> None:
    with pytest.raises(UnsupportedFileTypeError) as info:
        load_document(data, name)
    message = str(info.value)
    assert hint in message and "PDF" in message and ".txt" in message


@pytest.mark.parametrize("name", ["data.csv", "README", "page.html", "notes.markdown", "x.text"])
def test_other_names_that_decode_are_text(name: str) -> None:
    doc = load_document(b"col1,col2\nA sentence here.", name)
    assert doc.kind == "text" and doc.text == "col1,col2\nA sentence here."


def test_oversize_file_mentions_size_and_limit() -> None:
    data = b"word " * 300_000  # 1.4 MB
    with pytest.raises(DocumentTooLargeError) as info:
        load_document(data, "big.txt", max_bytes=1024 * 1024)
    message = str(info.value)
    assert "1.4 MB" in message and "1.0 MB" in message and "smaller" in message


def test_upload_limit_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LONGDOC_MAX_UPLOAD_MB", "0.5")
    assert documents.default_max_bytes() == 512 * 1024
    with pytest.raises(DocumentTooLargeError, match="0.5 MB"):
        load_document(b"a " * 300_000, "big.txt")
    assert load_document(b"a " * 300_000, "big.txt", max_bytes=10**7).n_chars == 600_000  # explicit wins
    monkeypatch.setenv("LONGDOC_MAX_UPLOAD_MB", "lots")  # a typo must not break uploads
    assert documents.default_max_bytes() == DEFAULT_MAX_BYTES


def test_too_many_characters_in_text() -> None:
    with pytest.raises(DocumentTooLargeError) as info:
        load_document(b"x" * 1001, "long.txt", max_chars=1000)
    assert "1,000" in str(info.value) and "characters" in str(info.value)
    assert load_document(b"x" * 1000, "long.txt", max_chars=1000).n_chars == 1000


def test_pdf_header_wins_over_txt_name(make_pdf) -> None:
    doc = load_document(make_pdf([LOREM]), "actually_a_pdf.txt")
    assert doc.kind == "pdf" and doc.text == LOREM


def test_text_that_mentions_pdf_header_stays_text() -> None:
    doc = load_document(b"A PDF file starts with %PDF-1.7 and ends with %%EOF.", "about.txt")
    assert doc.kind == "text"


def test_non_bytes_is_a_programming_error() -> None:
    with pytest.raises(TypeError):
        load_document("not bytes", "x.txt")  # type: ignore[arg-type]


def test_unexpected_failure_is_wrapped(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*args: object, **kwargs: object) -> Document:
        raise KeyError("internal bug")

    monkeypatch.setattr(documents.loading, "_make_text_document", boom)
    with pytest.raises(DocumentError) as info:
        load_document(b"Some text.", "x.txt")
    assert type(info.value) is DocumentError
    assert isinstance(info.value.__cause__, KeyError)
    assert "went wrong" in str(info.value) and "again" in str(info.value)


def test_load_path(tmp_path, make_pdf) -> None:
    (tmp_path / "a.md").write_bytes(b"# Title\n\nBody text.")
    doc = load_path(tmp_path / "a.md")
    assert doc.name == "a.md" and doc.text == "# Title\n\nBody text."
    (tmp_path / "b.pdf").write_bytes(make_pdf([LOREM]))
    assert load_path(str(tmp_path / "b.pdf")).kind == "pdf"
    with pytest.raises(DocumentTooLargeError):
        load_path(tmp_path / "a.md", max_bytes=5)
    with pytest.raises(DocumentError, match="Could not open"):
        load_path(tmp_path / "missing.txt")


# --------------------------------------------------------------------------------------------------
# PDFs


def test_pdf_pages_and_offsets(make_pdf) -> None:
    pages = [
        "Chapter one.\nThe first page has two lines.",
        "Page two talks about the inci-\ndent and its  many   spaces.   ",
        "",
        "Last page (with parentheses) and a backslash \\ here.",
    ]
    data = make_pdf(pages)
    doc = load_document(data, "book.pdf")
    assert doc.kind == "pdf" and doc.n_pages == 4 and doc.name == "book.pdf"
    assert doc.sha256 == hashlib.sha256(data).hexdigest()
    expected = [
        "Chapter one.\nThe first page has two lines.",
        "Page two talks about the incident and its many spaces.",
        "",
        "Last page (with parentheses) and a backslash \\ here.",
    ]
    assert [doc.page_text(i + 1) for i in range(4)] == expected
    assert doc.text == "\n\n".join(expected)
    assert [p.label for p in doc.pages] == ["1", "2", "3", "4"]
    for number, page in enumerate(doc.pages, start=1):
        assert doc.page_of(page.start) == number
        if page.end > page.start:
            assert doc.page_of(page.end - 1) == number
    at = doc.text.index("incident")
    assert doc.page_of(at) == 2 and doc.page_label_of(at) == "2"


def test_pdf_dehyphenation_keeps_real_hyphens(make_pdf) -> None:
    doc = load_document(
        make_pdf(["A self-\ninterest, a team-to-\nteam link, COVID-\n19 and a wheel-\nBarrow. " + LOREM]),
        "h.pdf",
    )
    assert "self-interest" in doc.text and "team-to-team" in doc.text
    assert "COVID-\n19" in doc.text and "wheel-\nBarrow" in doc.text


def test_pdf_page_labels(make_pdf) -> None:
    data = make_pdf(
        [f"Front matter page {i}. " + LOREM for i in range(3)]
        + [f"Body page {i}. " + LOREM for i in range(3)],
        page_labels=[(0, 2, "/r", None, 1), (3, 5, "/D", "A-", 1)],
    )
    doc = load_document(data, "labels.pdf")
    assert [p.label for p in doc.pages] == ["i", "ii", "iii", "A-1", "A-2", "A-3"]
    offset = doc.text.index("Body page 1.")
    assert doc.page_of(offset) == 5 and doc.page_label_of(offset) == "A-2"


def test_missing_crypto_package_is_explained(make_pdf, monkeypatch: pytest.MonkeyPatch) -> None:
    from pypdf import PdfReader
    from pypdf.errors import DependencyError

    def needs_crypto(self: PdfReader, password: str) -> None:
        raise DependencyError("cryptography>=3.1 is required for AES algorithm")

    monkeypatch.setattr(PdfReader, "decrypt", needs_crypto)
    # In this process: the PDF worker runs the same extract_pdf_pages, without this test's patch.
    with pytest.raises(EncryptedPdfError, match="cryptography"):
        extract_pdf_pages(make_pdf([LOREM], password="pw", algorithm="RC4-128"), "aes.pdf")


def test_page_content_limit_applies_to_streams_summed(make_raw_pdf, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(documents.pdf, "MAX_PAGE_CONTENT_BYTES", 1000)
    part = b"<< /Length 600 >>\nstream\n" + b" " * 600 + b"\nendstream"
    data = make_raw_pdf(
        [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents [4 0 R 5 0 R] >>",
            part,
            part,
        ]
    )
    with pytest.raises(DocumentTooLargeError, match="Page 1"):
        extract_pdf_pages(data, "two_streams.pdf")


class _FakeClock:
    """Every call is one second later than the last."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        self.now += 1.0
        return self.now


def test_time_budget_names_the_page(make_pdf) -> None:
    from longformer_core.documents.pdf_worker import PdfWorkerPool, replaced_default_pool

    data = make_pdf([f"Page {i}. " + LOREM for i in range(5)])
    with (
        replaced_default_pool(PdfWorkerPool(max_workers=1, clock=_FakeClock())),
        pytest.raises(ExtractionTimeoutError) as info,
    ):
        load_document(data, "slow.pdf", time_budget_s=2.5)
    message = str(info.value)
    assert re.search(
        r"Reading 'slow.pdf' took too long: after \d+ s \(limit 2 s\) it had only reached page \d of 5\.",
        message,
    )
    assert "smaller file" in message


def test_pdf_character_limit(make_pdf) -> None:
    data = make_pdf([LOREM] * 4)
    with pytest.raises(DocumentTooLargeError) as info:
        load_document(data, "long.pdf", max_chars=2 * len(LOREM) + 2)
    assert "characters" in str(info.value) and "page 3 of 4" in str(info.value)
    assert load_document(data, "long.pdf", max_chars=4 * len(LOREM) + 6).n_pages == 4


def test_unexpected_pypdf_failure_is_corrupt(make_pdf, monkeypatch: pytest.MonkeyPatch) -> None:
    from pypdf import PageObject

    def fail(self: PageObject, *args: object, **kwargs: object) -> str:
        raise RecursionError("cyclic")

    monkeypatch.setattr(PageObject, "extract_text", fail)
    with pytest.raises(CorruptPdfError) as info:
        extract_pdf_pages(make_pdf([LOREM]), "cyclic.pdf")  # what the worker runs, here
    assert isinstance(info.value.__cause__, RecursionError)
    assert "page 1" in str(info.value)


_FONT = b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"
_TEXT = b"BT /F1 12 Tf 72 700 Td (Hello there, this is a page of text.) Tj ET"


def _stream(data: bytes) -> bytes:
    return b"<< /Length %d >>\nstream\n" % len(data) + data + b"\nendstream"


def _page(extra: bytes = b"") -> bytes:
    return (
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
        b"/Resources << /Font << /F1 5 0 R >> >> /Contents 4 0 R " + extra + b">>"
    )


def test_hand_written_pdf_loads(make_raw_pdf) -> None:
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        _page(),
        _stream(_TEXT),
        _FONT,
    ]
    assert load_document(make_raw_pdf(objects), "ok.pdf").text == "Hello there, this is a page of text."


# --------------------------------------------------------------------------------------------------
# Sentences and paragraphs


def _sentences(text: str) -> list[str]:
    return [text[a:b] for a, b in sentence_spans(text)]


def _assert_well_formed(
    text: str, spans: list[tuple[int, int]], start: int = 0, end: int | None = None
) -> None:
    end = len(text) if end is None else end
    previous = start
    for a, b in spans:
        assert previous <= a < b <= end
        assert text[a:b] == text[a:b].strip() and text[a:b]
        previous = b


@pytest.mark.parametrize(
    "text, expected",
    [
        ("Dr. Smith met Mr. Jones. They talked.", ["Dr. Smith met Mr. Jones.", "They talked."]),
        (
            "Use a sniffer, e.g. Wireshark. Or not, i.e. Nothing.",
            ["Use a sniffer, e.g. Wireshark.", "Or not, i.e. Nothing."],
        ),
        (
            "The U.S. Army and J. R. R. Tolkien agreed. Fine.",
            ["The U.S. Army and J. R. R. Tolkien agreed.", "Fine."],
        ),
        (
            "Growth was 3.5 percent in 2020. Next year 4.1. Then 5.",
            ["Growth was 3.5 percent in 2020.", "Next year 4.1.", "Then 5."],
        ),
        ("See Fig. 3 and No. 7 in Vol. 2. Done.", ["See Fig. 3 and No. 7 in Vol. 2.", "Done."]),
        (
            'He said "Stop." Then he left. (It was late.) Next.',
            ['He said "Stop."', "Then he left.", "(It was late.)", "Next."],
        ),
        ("Really? Yes! Good… Wait... What.", ["Really?", "Yes!", "Good…", "Wait...", "What."]),
        (
            "Lowercase after period. and continues. Upper Next.",
            ["Lowercase after period. and continues.", "Upper Next."],
        ),
        ("Ends with 'quote.' “Curly opener.” Done.", ["Ends with 'quote.'", "“Curly opener.”", "Done."]),
        ("它很好。我们走吧！好", ["它很好。", "我们走吧！", "好"]),
    ],
)
def test_sentence_spans_tricky_text(text: str, expected: list[str]) -> None:
    assert _sentences(text) == expected
    _assert_well_formed(text, sentence_spans(text))


def test_sentence_spans_headings_lists_and_blank_lines() -> None:
    wrapped = (
        "1. Introduction\n"
        "Incident response is an important component of information technology programs and it\n"
        "is described in detail in this long wrapped paragraph of text which continues on the\n"
        "next line without a break.\n"
        "\n"
        "Key points\n"
        "- first item\n"
        "- second item\n"
        "\uf0b7 a symbol-font bullet\n"
        "4. If the team cannot decide, who decides?\n"
    )
    assert _sentences(wrapped) == [
        "1. Introduction",
        (
            "Incident response is an important component of information technology programs and it\n"
            "is described in detail in this long wrapped paragraph of text which continues on the\n"
            "next line without a break."
        ),
        "Key points",
        "- first item",
        "- second item",
        "\uf0b7 a symbol-font bullet",
        "4. If the team cannot decide, who decides?",
    ]


def test_sentence_spans_window_and_empty() -> None:
    text = "First one. Second one. Third one."
    start = text.index("Second")
    assert sentence_spans(text, start, len(text) - 3) == [
        (start, start + len("Second one.")),
        (start + 12, len(text) - 3),
    ]
    assert sentence_spans(text, 5, 5) == [] and sentence_spans(text, 10, 2) == []
    assert sentence_spans("") == [] and sentence_spans(" \n\n\t ") == []
    assert sentence_spans("no terminator at all") == [(0, 20)]
    assert sentence_spans(text, -5, 10**6) == sentence_spans(text)


def test_sentence_spans_is_fast_on_two_million_chars() -> None:
    paragraph = (
        "Dr. Smith reviewed the logs, e.g. the firewall logs. The U.S. team found 3.5 GB of data!\n"
        "Was it exfiltrated? Nobody knew.\n\nHeading\n- item one\n- item two\n"
    )
    text = paragraph * (2_000_000 // len(paragraph) + 1)
    started = time.perf_counter()
    spans = sentence_spans(text)
    elapsed = time.perf_counter() - started
    assert elapsed < 4.0, f"sentence_spans took {elapsed:.2f} s on {len(text):,} chars"
    assert len(spans) == 7 * (len(text) // len(paragraph))
    _assert_well_formed(text, spans[:1000])


def test_paragraph_spans_blank_lines() -> None:
    text = "\n\nFirst para line one.\nline two.\n \n\t\nSecond para.\n\n\n"
    spans = paragraph_spans(text)
    assert [text[a:b] for a, b in spans] == ["First para line one.\nline two.", "Second para."]


def test_paragraph_spans_pdf_style_without_blank_lines() -> None:
    full = "x" * 70
    text = (
        "2.1 Events and Incidents\n"  # short heading, next line uppercase: new paragraph
        f"An event is any observable occurrence in a system or network {full[:10]}\n"
        f"and this line is also full width so nothing splits here at all {full[:8]}\n"
        "It ends here.\n"  # short, terminated, next uppercase: paragraph end
        f"A new paragraph starts with a full line of text that keeps going on {full[:2]}\n"
        "and ends, with a comma,\n"  # short but runs on: no split
        f"Because the comma says the sentence continues onto this line here {full[:5]}\n"
        "ok.\n"
        "\uf03c A bulleted item\n"
        "\uf03c Another item"
    )
    paragraphs = [text[a:b] for a, b in paragraph_spans(text)]
    assert paragraphs[0] == "2.1 Events and Incidents"
    assert paragraphs[1].startswith("An event") and paragraphs[1].endswith("It ends here.")
    assert paragraphs[2].startswith("A new paragraph") and paragraphs[2].endswith("ok.")
    assert paragraphs[3:] == ["\uf03c A bulleted item", "\uf03c Another item"]
    _assert_well_formed(text, paragraph_spans(text))


def test_paragraph_spans_empty() -> None:
    assert paragraph_spans("") == [] and paragraph_spans("\n \n") == []


# --------------------------------------------------------------------------------------------------
# The real NIST guide (shared data)


@pytest.mark.slow
def test_nist_pdf_pages_and_deep_phrase(nist_pdf) -> None:
    doc = load_path(nist_pdf)
    assert doc.kind == "pdf" and doc.n_pages == 79 and doc.n_chars > 200_000
    # Appendix F (FAQ), printed page 67 of the guide, is page 76 of the file (no /PageLabels).
    phrase = "refer the caller to the organization’s public affairs office"
    offset = doc.text.index(phrase)
    assert doc.text.count(phrase) == 1
    assert doc.page_of(offset) == 76 and doc.page_label_of(offset) == "76"
    # Appendix A opens on file page 61.
    assert doc.page_of(doc.text.index("Incident handling scenarios provide an inexpensive")) == 61
    for page in doc.pages:  # offsets are exact: no page text leaks into the separators
        assert doc.text[page.start : page.end] == doc.text[page.start : page.end].strip()
    assert doc.text.count("\x00") == 0
    spans = sentence_spans(doc.text)
    assert len(spans) > 1500
    _assert_well_formed(doc.text, spans)
