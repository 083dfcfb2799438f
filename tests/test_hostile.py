"""Hostile inputs (issue 7): every one gets a specific message for the user, in bounded time and memory.

The corpus is generated here (nothing downloaded): broken, locked, scanned, bomb, crafted and binary
files, odd text, absurd questions and models that are not there. `FILES` drives three tests:
- the core (`load_document`) gives each one its own message (error class and words) within its time
  budget, or loads it correctly when it is only unusual;
- the app shows exactly that message for each upload in one session, never a traceback, and keeps
  serving (the next good file works).
Pathological PDFs are also checked for peak memory. The CSV corpus loader has its own hostile cases
(missing columns) with its own tests.
"""

from __future__ import annotations

import codecs
import functools
import socket
import tempfile
import time
import tracemalloc
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from conftest import build_pdf, raw_pdf

from longformer_core.documents import (
    DEFAULT_PAGE_TIME_BUDGET_S,
    BinaryTextError,
    CorruptPdfError,
    Document,
    DocumentError,
    DocumentTooLargeError,
    EmptyDocumentError,
    EncryptedPdfError,
    ExtractionTimeoutError,
    NoTextError,
    load_document,
)

LOREM = (
    "The incident response team met on Monday. They reviewed the logs from the firewall and the "
    "mail server, then wrote a short report for management."
)
HTML_TEXT = (
    "Harbour notes.\n\nThe secret tag is <script>window.__xss = 1</script> and "
    '<img src="x" onerror="window.__xss = 2"> and <b>bold</b> & more.'
)
CORRUPT = ("could not be read", "damaged or incomplete", "re-saving")


# --------------------------------------------------------------------------------------------------
# Generators of hostile files


def _page(extra: bytes = b"", resources: bytes = b"/Font << /F1 5 0 R >>") -> bytes:
    return (
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << " + resources + b" >> "
        b"/Contents 4 0 R " + extra + b">>"
    )


_CATALOG = b"<< /Type /Catalog /Pages 2 0 R >>"
_ONE_PAGE = b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>"
_FONT = b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"
_TEXT = b"BT /F1 12 Tf 72 700 Td (Hello there, this is a page of text.) Tj ET"
_FORM = b"/Type /XObject /Subtype /Form /BBox [0 0 612 792] "


def _stream(data: bytes, extra: bytes = b"") -> bytes:
    return b"<< /Length %d " % len(data) + extra + b">>\nstream\n" + data + b"\nendstream"


def _flate_stream(data: bytes) -> bytes:
    body = zlib.compress(data, 9)
    return b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(body) + body + b"\nendstream"


def _truncated(data: bytes, keep: float) -> bytes:
    return data[: int(len(data) * keep)]


@functools.cache
def decompression_bomb() -> bytes:
    """One page whose content stream is 0.3 MB in the file and unpacks to 300 MB."""
    compressor = zlib.compressobj(1)
    body = compressor.compress(b"BT /F1 12 Tf 72 700 Td (Bomb) Tj ET\n")
    body += b"".join(compressor.compress(b" " * (1 << 20)) for _ in range(300)) + compressor.flush()
    stream = b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(body) + body + b"\nendstream"
    return raw_pdf([_CATALOG, _ONE_PAGE, _page(), stream, _FONT])


@functools.cache
def drawing_command_flood() -> bytes:
    """0.1 MB that unpacks to 40 MB of text-drawing commands: under the 50 MB size limit, but parsing
    and running them would take pypdf minutes. Only the per-page time budget stops it."""
    line = b"BT /F1 12 Tf 72 700 Td (Hello there, some text) Tj ET\n"
    return raw_pdf([_CATALOG, _ONE_PAGE, _page(), _flate_stream(line * ((40 << 20) // len(line))), _FONT])


def nested_forms(levels: int = 6, fan: int = 10) -> bytes:
    """'Billion laughs' in PDF: each form XObject draws the one below it ten times (10**6 draws of a form
    with 2,000 lines of text). pypdf gives up after 5,000 form draws, which still takes minutes here."""
    top = 6 + levels
    objects = [
        _CATALOG,
        _ONE_PAGE,
        _page(resources=b"/Font << /F1 5 0 R >> /XObject << /X %d 0 R >>" % top),
        _stream(b"/X Do"),
        _FONT,
        _stream(
            b"BT /F1 12 Tf 72 700 Td " + b"(lol lol lol) Tj T* " * 2000 + b"ET",
            _FORM + b"/Resources << /Font << /F1 5 0 R >> >> ",
        ),
    ]
    for level in range(1, levels + 1):
        inner = b"/Resources << /Font << /F1 5 0 R >> /XObject << /Y %d 0 R >> >> " % (5 + level)
        objects.append(_stream(b" ".join([b"/Y Do"] * fan), _FORM + inner))
    return raw_pdf(objects)


def self_drawing_form() -> bytes:
    """A form XObject that draws itself (a cycle through the page's resources)."""
    resources = b"/Font << /F1 5 0 R >> /XObject << /X 6 0 R >>"
    return raw_pdf(
        [
            _CATALOG,
            _ONE_PAGE,
            _page(resources=resources),
            _stream(_TEXT + b" /X Do"),
            _FONT,
            _stream(b"BT /F1 12 Tf (again) Tj ET /X Do", _FORM + b"/Resources << " + resources + b" >> "),
        ]
    )


# --------------------------------------------------------------------------------------------------
# The corpus


@dataclass(frozen=True)
class Hostile:
    """One hostile file and what the user must be told about it."""

    id: str
    make: Callable[[], bytes]
    name: str
    error: type[DocumentError] | None  # None: the file is only unusual and must load
    says: tuple[str, ...]  # words the message must contain (for a file that loads: its text)
    password: str | None = None
    kwargs: dict = field(default_factory=dict)
    seconds: float = 10.0  # must finish within this (generous: CI machines are shared)
    check: Callable[[object], None] | None = None  # extra check on the error or the Document


def _wrong_password(error: object) -> None:
    assert isinstance(error, EncryptedPdfError) and error.wrong_password


def _not_wrong_password(error: object) -> None:
    assert isinstance(error, EncryptedPdfError) and not error.wrong_password


def _invisible_controls_gone(document: object) -> None:
    assert isinstance(document, Document)
    assert document.text == "Pay redro now .\tTabbed line end iso  ok"
    assert not any(
        0x202A <= ord(c) <= 0x202E or 0x2066 <= ord(c) <= 0x2069 or c in "\u200e\u200f" for c in document.text
    )


def _markup_kept_as_text(document: object) -> None:
    assert isinstance(document, Document) and document.text == HTML_TEXT  # shown escaped, never dropped


def _form_cycle_read_once(document: object) -> None:
    assert isinstance(document, Document) and document.text.count("Hello there") == 1


CONTROL_TEXT = "Pay \u202eredro\u202c now\x07.\tTabbed\x0bline\x00end \u2066iso\u2069 \u200f\u200e ok\ufeff"
LOCKED = ("password-protected", "unlocked copy")

FILES = [
    # Empty files, however they are empty.
    Hostile("empty", lambda: b"", "empty.txt", EmptyDocumentError, ("This file is empty", "empty.txt")),
    Hostile("whitespace-only", lambda: b"   \n\t\r\n ", "blank.txt", EmptyDocumentError, ("empty",)),
    Hostile("utf8-bom-only", lambda: codecs.BOM_UTF8, "bom.txt", EmptyDocumentError, ("empty",)),
    Hostile("utf16-bom-only", lambda: codecs.BOM_UTF16_LE, "bom16.txt", EmptyDocumentError, ("empty",)),
    Hostile("bidi-marks-only", lambda: "\u200e\u200f".encode(), "marks.txt", EmptyDocumentError, ("empty",)),
    Hostile("pdf-without-pages", lambda: build_pdf([]), "nothing.pdf", EmptyDocumentError, ("no pages",)),
    # Broken PDFs.
    *[
        Hostile(
            f"truncated-pdf-{int(keep * 100)}",
            lambda keep=keep: _truncated(build_pdf([LOREM, LOREM]), keep),
            "cut.pdf",
            CorruptPdfError,
            CORRUPT,
        )
        for keep in (0.1, 0.5, 0.9)
    ],
    Hostile(
        "text-named-pdf",
        lambda: b"this is not a pdf at all",
        "fake.pdf",
        CorruptPdfError,
        (*CORRUPT, "not a PDF"),
    ),
    Hostile("binary-named-pdf", lambda: bytes(range(256)) * 4, "fake.pdf", CorruptPdfError, CORRUPT),
    Hostile(
        "garbage-after-header",
        lambda: b"%PDF-1.7\n" + b"\x00garbage" * 100,
        "fake.pdf",
        CorruptPdfError,
        CORRUPT,
    ),
    # Locked PDFs: no password, a wrong one, the right one (RC4 and AES).
    Hostile(
        "encrypted-no-password",
        lambda: build_pdf([LOREM], password="s3cret", algorithm="RC4-128"),
        "locked.pdf",
        EncryptedPdfError,
        (*LOCKED, "enter its password"),
        check=_not_wrong_password,
    ),
    Hostile(
        "encrypted-wrong-password",
        lambda: build_pdf([LOREM], password="s3cret", algorithm="AES-256"),
        "locked.pdf",
        EncryptedPdfError,
        ("password", "was wrong", "unlocked copy"),
        password="guess",
        check=_wrong_password,
    ),
    Hostile(
        "encrypted-right-password-rc4",
        lambda: build_pdf([LOREM], password="s3cret", algorithm="RC4-128"),
        "locked.pdf",
        None,
        (LOREM,),
        password="s3cret",
    ),
    Hostile(
        "encrypted-right-password-aes",
        lambda: build_pdf([LOREM], password="s3cret", algorithm="AES-256"),
        "locked.pdf",
        None,
        (LOREM,),
        password="s3cret",
    ),
    Hostile(
        "encrypted-empty-user-password",
        lambda: build_pdf([LOREM], password="", algorithm="RC4-128"),
        "restricted.pdf",
        None,
        (LOREM,),
        password="typed anyway",
    ),
    # Scans: pages without a text layer.
    Hostile(
        "scanned-no-text",
        lambda: build_pdf(["", "", ""]),
        "scan.pdf",
        NoTextError,
        ("no text layer", "scanned", "OCR", "ocrmypdf", "3 page"),
    ),
    Hostile(
        "scanned-page-numbers-only",
        lambda: build_pdf([str(i) for i in range(10, 40)]),
        "numbers.pdf",
        NoTextError,
        ("scanned", "30 page"),
    ),
    # Bombs and crafted structures: each stops within seconds.
    Hostile(
        "decompression-bomb-300mb",
        decompression_bomb,
        "bomb.pdf",
        DocumentTooLargeError,
        ("Page 1", "50.0 MB", "too much to read safely"),
    ),
    Hostile(
        "drawing-command-flood-40mb",
        drawing_command_flood,
        "flood.pdf",
        ExtractionTimeoutError,
        ("page 1", "took too long", "over 2 s", "re-save"),
        kwargs={"page_time_budget_s": 2.0},
        seconds=9.0,
    ),
    Hostile(
        "cyclic-page-tree",
        lambda: raw_pdf(
            [_CATALOG, b"<< /Type /Pages /Kids [2 0 R 3 0 R] /Count 2 >>", _page(), _stream(_TEXT), _FONT]
        ),
        "cyclic.pdf",
        CorruptPdfError,
        CORRUPT,
    ),
    Hostile(
        "self-referencing-object",
        lambda: raw_pdf([_CATALOG, _ONE_PAGE, _page(), b"4 0 R", _FONT]),
        "selfref.pdf",
        CorruptPdfError,
        (*CORRUPT, "page 1"),
    ),
    Hostile(
        "nested-arrays-5000-in-page",
        lambda: raw_pdf(
            [_CATALOG, _ONE_PAGE, _page(b"/Annots " + b"[" * 5000 + b"]" * 5000), _stream(_TEXT), _FONT]
        ),
        "deep.pdf",
        CorruptPdfError,
        CORRUPT,
    ),
    Hostile(
        "nested-arrays-5000-in-content",
        lambda: raw_pdf(
            [_CATALOG, _ONE_PAGE, _page(), _stream(_TEXT + b" " + b"[" * 5000 + b"]" * 5000 + b" pop"), _FONT]
        ),
        "deep.pdf",
        CorruptPdfError,
        CORRUPT,
    ),
    Hostile(
        "self-drawing-form",
        self_drawing_form,
        "cycle.pdf",
        None,
        ("Hello there",),
        check=_form_cycle_read_once,
    ),
    Hostile(
        "nested-forms-10**6-draws",
        nested_forms,
        "laughs.pdf",
        ExtractionTimeoutError,
        ("page 1", "took too long", "over 1 s"),
        kwargs={"page_time_budget_s": 1.0},
        seconds=8.0,
    ),
    # Not text, or text in an encoding we cannot know.
    Hostile(
        "binary-named-txt",
        lambda: bytes(range(256)) * 8,
        "data.txt",
        BinaryTextError,
        ("data.txt", "binary data", "plain text (UTF-8)"),
    ),
    Hostile(
        "zip-named-txt",
        lambda: b"PK\x03\x04" + b"\x14\x00" * 40,
        "report.txt",
        BinaryTextError,
        ("looks like a Word", "plain text"),
    ),
    Hostile(
        "utf16-without-bom",
        lambda: "Plain words without a byte order mark.".encode("utf-16-le"),
        "nobom.txt",
        BinaryTextError,
        ("unknown text encoding", "UTF-8"),
    ),
    Hostile(
        "shift-jis",
        lambda: ("日本語のテキストです。" * 20).encode("shift_jis"),
        "sjis.txt",
        BinaryTextError,
        ("unknown text encoding",),
    ),
    Hostile(
        "cp1252-text",
        lambda: "Smart “quotes” and an en dash – in a café résumé, 50 €.".encode("cp1252"),
        "legacy.txt",
        None,
        ("Smart “quotes” and an en dash – in a café résumé, 50 €.",),
    ),
    # Too long: two million tokens of ordinary words is over the character limit.
    Hostile(
        "two-million-token-text",
        lambda: b"word " * 2_000_000,
        "million.txt",
        DocumentTooLargeError,
        ("10,000,000 characters", "limit of 8,000,000", "Split it"),
    ),
    # Text that tries to hide or run things: loads, cleaned or kept as text.
    Hostile(
        "control-and-rtl-characters",
        lambda: CONTROL_TEXT.encode(),
        "ctl.txt",
        None,
        ("Pay redro now",),
        check=_invisible_controls_gone,
    ),
    Hostile(
        "html-and-javascript",
        lambda: HTML_TEXT.encode(),
        "tags.txt",
        None,
        ("<script>",),
        check=_markup_kept_as_text,
    ),
]


@pytest.fixture(scope="module", autouse=True)
def warm_pdf_worker() -> None:
    """A PDF worker is started before the timings, as the app starts one when its Document page first
    shows: the budgets are about reading a file, not about starting an interpreter (CPUs are shared)."""
    from longformer_core.documents.pdf_worker import default_pool

    assert default_pool().warm()


def _outcome(case: Hostile) -> tuple[Document | DocumentError, float]:
    started = time.monotonic()
    try:
        result: Document | DocumentError = load_document(
            case.make(), case.name, password=case.password, **case.kwargs
        )
    except DocumentError as error:
        result = error
    return result, time.monotonic() - started


@pytest.mark.parametrize("case", FILES, ids=[c.id for c in FILES])
def test_hostile_file_gets_its_own_message_in_bounded_time(case: Hostile) -> None:
    result, seconds = _outcome(case)
    assert seconds < case.seconds, f"{case.id} took {seconds:.1f} s"
    if case.error is None:
        assert isinstance(result, Document), f"{case.id} should load, got: {result}"
        for words in case.says:
            assert words in result.text
    else:
        assert type(result) is case.error, f"{case.id}: {type(result).__name__}: {result}"
        message = str(result)
        for words in case.says:
            assert words in message, f"{case.id}: {words!r} not in {message!r}"
        # Written for a person: no traceback, no library internals.
        for internal in ("Traceback", "pypdf", "PdfReadError", "Errno", "0x"):
            assert internal not in message
    if case.check is not None:
        case.check(result)


def test_the_corpus_covers_the_issue_list() -> None:
    """At least 15 distinct hostile kinds, ids unique (the list in issue 7, CSV cases aside)."""
    ids = [case.id for case in FILES]
    assert len(ids) == len(set(ids))
    kinds = {case.id.split("-")[0] for case in FILES}
    assert len(FILES) >= 15 and len(kinds) >= 15, sorted(kinds)


@pytest.mark.parametrize("make", [decompression_bomb, drawing_command_flood], ids=["bomb", "flood"])
def test_pathological_pdfs_stay_within_memory(make: Callable[[], bytes]) -> None:
    """Python-level peak allocation while refusing them: the 50 MB decode cap, not the 300 MB bomb."""
    data = make()
    tracemalloc.start()
    try:
        with pytest.raises((DocumentTooLargeError, ExtractionTimeoutError)):
            load_document(data, "evil.pdf", page_time_budget_s=2.0)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 250 * 1024 * 1024, f"peak {peak / 2**20:.0f} MB"


def test_page_budget_default_is_seconds_not_minutes() -> None:
    assert 1.0 <= DEFAULT_PAGE_TIME_BUDGET_S <= 10.0


def test_page_budget_leaves_normal_pages_alone() -> None:
    """A crafted page is stopped (its worker killed); ordinary pages right after, at the same tight
    budget, all load (a fresh worker takes over)."""
    with pytest.raises(ExtractionTimeoutError):
        load_document(drawing_command_flood(), "flood.pdf", page_time_budget_s=0.5)
    doc = load_document(
        build_pdf([f"Page {i}. " + LOREM for i in range(30)]), "ok.pdf", page_time_budget_s=0.5
    )
    assert doc.n_pages == 30


# --------------------------------------------------------------------------------------------------
# Questions


def test_question_of_ten_thousand_characters_is_refused() -> None:
    from longformer_core.qa.answering import check_question

    question = "Why" + " really" * 1428 + "?"
    assert len(question) == 10_000
    with pytest.raises(ValueError) as info:
        check_question(question)
    assert str(info.value) == (
        "The question is 10,000 characters long; keep it under 1,000 (one or two sentences work best)."
    )


@pytest.mark.parametrize("question", ["", "   \n\t  "])
def test_empty_question_is_refused(question: str) -> None:
    from longformer_core.qa.answering import check_question

    with pytest.raises(ValueError, match="^Type a question first.$"):
        check_question(question)


# --------------------------------------------------------------------------------------------------
# Models that are not there


@pytest.mark.parametrize("offline_env", [True, False], ids=["HF_HUB_OFFLINE", "no-network"])
def test_unknown_model_id_fails_fast_with_a_message(
    monkeypatch: pytest.MonkeyPatch, offline_env: bool
) -> None:
    """No network here: without HF_HUB_OFFLINE transformers would retry the hub for ~25 s per file."""
    from longformer_core.model.registry import ModelLoadError, load_models

    if offline_env:
        monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    else:
        monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    started = time.monotonic()
    with pytest.raises(ModelLoadError) as info:
        load_models("longdoc-tests/no-such-longformer")
    assert time.monotonic() - started < 8.0
    message = str(info.value)
    assert "Could not load model 'longdoc-tests/no-such-longformer'" in message
    assert "huggingface-cli download longdoc-tests/no-such-longformer" in message


def test_local_path_that_is_not_a_model(tmp_path: Path) -> None:
    from longformer_core.model.registry import ModelLoadError, load_models

    (tmp_path / "notes.txt").write_text("not a model")
    for path in (tmp_path, tmp_path / "notes.txt", tmp_path / "missing"):
        with pytest.raises(ModelLoadError) as info:
            load_models(str(path))
        assert str(info.value).startswith(f"'{path}' is not a model folder (no config.json inside).")


def test_folder_with_a_broken_config(tmp_path: Path) -> None:
    from longformer_core.model.registry import ModelLoadError, load_models

    (tmp_path / "config.json").write_text("{ this is not json")
    with pytest.raises(ModelLoadError, match="Could not load model"):
        load_models(str(tmp_path))


# --------------------------------------------------------------------------------------------------
# Length limits that protect memory


def test_dense_text_is_refused_before_reading(embedded_pair) -> None:
    """8,000,000 characters (the character limit) but 4,000,000 tokens: refused by the token limit when first
    tokenized, after tokenizing only the first ~1.5M tokens, long before any model runs."""
    from longformer_core.reading.document_reading import DEFAULT_MAX_TOKENS, DocumentReader

    document = load_document(b"a " * 4_000_000, "dense.txt")
    assert document.n_chars == 8_000_000
    started = time.monotonic()
    with pytest.raises(DocumentTooLargeError) as info:
        DocumentReader(embedded_pair, document, strategy="question")
    # Tokenizing 1.5M tokens takes seconds (20 s niced on a loaded 2-core machine); reading them, minutes.
    assert time.monotonic() - started < 60.0
    assert str(info.value) == (
        f"'dense.txt' is too long for this app: more than {DEFAULT_MAX_TOKENS:,} tokens (small pieces of words), "
        "more than it can read within its memory budget. Split it into smaller parts, or upload only the "
        "chapters you need."
    )


def test_token_limit_is_configurable(embedded_pair, monkeypatch: pytest.MonkeyPatch) -> None:
    from longformer_core.documents import text_document
    from longformer_core.reading.document_reading import DocumentReader, max_document_tokens

    document = text_document(LOREM * 3, "three.txt")
    monkeypatch.setenv("LONGDOC_MAX_TOKENS", "20")
    assert max_document_tokens() == 20
    with pytest.raises(DocumentTooLargeError, match="more than 20 tokens"):
        DocumentReader(embedded_pair, document)
    monkeypatch.setenv("LONGDOC_MAX_TOKENS", "plenty")  # a typo must not refuse every document
    assert max_document_tokens() == 1_500_000
    assert len(DocumentReader(embedded_pair, document).long_tokens) > 20


def test_default_token_limit_shrinks_for_wider_models(embedded_pair, monkeypatch: pytest.MonkeyPatch) -> None:
    """Token states and the long window's peak grow with the models' width: a base-size pair (hidden 768)
    gets half the embedded pair's limit, so a long upload cannot take twice the memory."""
    from types import SimpleNamespace

    from longformer_core.reading.document_reading import max_document_tokens

    def width(hidden: int) -> SimpleNamespace:  # only the config's width is read
        return SimpleNamespace(encoder=SimpleNamespace(config=SimpleNamespace(hidden_size=hidden)))

    monkeypatch.delenv("LONGDOC_MAX_TOKENS", raising=False)
    assert max_document_tokens(embedded_pair) == 1_500_000  # hidden 384: a 1,500-page book
    base_size = SimpleNamespace(longformer=width(768), baseline=width(768))  # longformer-base + roberta-base
    assert max_document_tokens(base_size) == 750_000
    assert max_document_tokens(SimpleNamespace(longformer=width(64), baseline=width(384))) == 1_500_000
    monkeypatch.setenv("LONGDOC_MAX_TOKENS", "70000")  # the setting still wins
    assert max_document_tokens(base_size) == 70_000


# --------------------------------------------------------------------------------------------------
# Rendering: document text reaches the page only escaped


def test_every_html_helper_escapes_document_text() -> None:
    from longformer_core.documents import text_document
    from ui import render

    document = text_document(HTML_TEXT, 'x"><img src=y onerror=alert(1)>.txt')
    start = HTML_TEXT.index("<script>")
    shown = [
        render.highlight(document, (start, start + 40), (0, len(HTML_TEXT))),
        render.text_box(document.text),
        render.seen_bar("longformer", 100, (0, 50), 10, "<img src=x onerror=alert(1)>"),
        render.rows_html([{"<b>answer</b>": HTML_TEXT, "page": "<img src=x onerror=alert(1)>"}]),
    ]
    for html in shown:
        assert "<script" not in html and "<img" not in html and "<b>" not in html
    assert "&lt;script&gt;" in shown[0] and "&lt;img src=&quot;x&quot; onerror=" in shown[1]
    # Names and questions inside Markdown: no link, image or HTML survives.
    inert = render.md("[click](http://evil.example) ![x](http://evil.example/x.png) <b>hi</b>")
    assert "](" not in inert and "<b>" not in inert


# --------------------------------------------------------------------------------------------------
# Uploads stay in memory and nothing is sent anywhere


class _Forbidden(AssertionError):
    pass


@pytest.fixture
def no_disk_writes_or_network(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    """Fail on any file opened for writing, any temp file or folder, and any outgoing connection."""
    import builtins
    import io
    import os

    real_open = builtins.open
    real_os_open = os.open
    temp_root = tmp_path / "tmp"
    temp_root.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp_root))

    def guarded_open(file, mode="r", *args, **kwargs):
        # An int is a descriptor this process already holds (a pipe to the PDF worker), not a file.
        if any(flag in str(mode) for flag in "wax+") and not isinstance(file, int):
            raise _Forbidden(f"opened {file!r} for writing")
        return real_open(file, mode, *args, **kwargs)

    def guarded_os_open(path, flags, *args, **kwargs):
        if flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
            raise _Forbidden(f"os.open({path!r}) for writing")
        return real_os_open(path, flags, *args, **kwargs)

    def no_connect(self, address, *args, **kwargs):
        raise _Forbidden(f"connection to {address!r}")

    monkeypatch.setattr(builtins, "open", guarded_open)
    monkeypatch.setattr(io, "open", guarded_open)
    monkeypatch.setattr(os, "open", guarded_os_open)
    monkeypatch.setattr(socket.socket, "connect", no_connect)
    monkeypatch.setattr(socket.socket, "connect_ex", no_connect)
    yield temp_root
    assert list(temp_root.iterdir()) == [], "a temporary file was left behind"


def test_the_guard_catches_writes_temp_files_and_connections(no_disk_writes_or_network) -> None:
    with pytest.raises(_Forbidden):
        tempfile.NamedTemporaryFile()  # noqa: SIM115 - must fail before returning
    with pytest.raises(_Forbidden):
        open(no_disk_writes_or_network / "leak.txt", "w")  # noqa: SIM115 - must fail before returning
    with pytest.raises(_Forbidden):
        socket.create_connection(("127.0.0.1", 9), timeout=1)


@pytest.mark.parametrize(
    "name, make",
    [
        ("report.pdf", lambda: build_pdf([LOREM, LOREM], password="pw", algorithm="AES-256")),
        ("notes.txt", lambda: LOREM.encode()),
    ],
)
def test_loading_an_upload_touches_no_disk_and_no_network(no_disk_writes_or_network, name, make) -> None:
    data = make()
    document = load_document(data, name, password="pw")
    assert LOREM in document.text


# --------------------------------------------------------------------------------------------------
# The app: one session survives the whole corpus


APP_CASES = [case for case in FILES if case.password is None and not case.kwargs]


def test_the_app_shows_each_message_and_keeps_serving(make_pdf) -> None:
    """One session uploads every hostile file in turn: each shows exactly the core's message (or loads),
    no traceback ever, a failed upload never replaces the document in use, and a good file still works."""
    from test_app import assert_healthy, shown_errors, sidebar_text, start, upload

    at = start()
    good = make_pdf(["Harbour notes\nThe old ferry crosses the bay twice a day.", "The lighthouse is red."])
    upload(at, "harbour.pdf", good)
    assert_healthy(at)
    in_use = "harbour.pdf"
    for case in APP_CASES:
        result, _ = _outcome(case)
        upload(at, case.name, case.make())
        assert not at.exception, (case.id, [e.value for e in at.exception])
        if isinstance(result, DocumentError):
            assert shown_errors(at) == [str(result)], case.id
            at.run()  # the message stays while that file is in the uploader
            assert shown_errors(at) == [str(result)], case.id
            assert at.session_state["document"].name == in_use, case.id
        else:
            assert_healthy(at)
            assert at.session_state["document"].text == result.text, case.id
            in_use = case.name
    upload(at, "harbour.pdf", good)
    assert_healthy(at)
    assert "harbour.pdf" in sidebar_text(at)


def test_the_app_refuses_a_document_over_the_token_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    """Over LONGDOC_MAX_TOKENS: a message on the page and in the sidebar, no crash, nothing read."""
    from test_app import start, upload

    monkeypatch.setenv("LONGDOC_MAX_TOKENS", "30")
    at = start()
    upload(at, "long.txt", (LOREM * 4).encode())
    assert not at.exception
    errors = [e.value for e in at.error]
    assert errors and all("'long.txt' is too long for this app: more than 30 tokens" in e for e in errors)
    at.switch_page("pages/ask.py").run()
    at.text_input(key="question").input("Who met on Monday?")
    at.button(key="ask_button").click().run()
    assert not at.exception
    assert any("more than 30 tokens" in e.value for e in at.error)


def test_the_app_reads_and_answers_an_upload_without_disk_or_network(request, make_pdf) -> None:
    """Through the app: upload, read and answer with file writes, temp files and connections forbidden
    (the model is loaded before the guard goes up: loading it reads files, which is allowed anyway)."""
    from test_app import assert_healthy, start, upload

    at = start()
    temp_root = request.getfixturevalue("no_disk_writes_or_network")
    upload(at, "private.pdf", make_pdf(["Private notes\nThe safe code is kept by the harbour master."]))
    assert_healthy(at)
    at.switch_page("pages/ask.py").run()
    at.text_input(key="question").input("Who keeps the safe code?")
    at.button(key="ask_button").click().run()
    assert_healthy(at)
    assert "harbour master" in at.session_state["ask_history"][-1].answers["longformer"].result.best.text
    assert list(temp_root.iterdir()) == []
