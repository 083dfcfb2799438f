"""Property tests for longformer_core.documents: whatever bytes arrive, load_document either returns a
Document or raises DocumentError; sentence/paragraph spans are always well formed.

Bounded: few examples, no deadline (CI machines are shared), ~20 s in all.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from longformer_core.documents import (
    Document,
    DocumentError,
    load_document,
    paragraph_spans,
    sentence_spans,
)

FUZZ = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    database=None,  # keep runs reproducible from the seed printed on failure, and leave no files
)
NAMES = st.sampled_from(["upload.pdf", "upload.txt", "upload.md", "upload", "upload.docx"])
SEED_TEXT = (
    "Incident handling is a process. Dr. Smith wrote the plan, e.g. for U.S. agencies.\n"
    "It has 3.5 phases!\nHeading\n- item"
)


def _check(data: bytes, name: str) -> None:
    try:
        doc = load_document(data, name, time_budget_s=5.0)
    except DocumentError as error:
        assert str(error).strip()  # every error explains itself
        return
    assert isinstance(doc, Document)
    assert doc.text.strip() and doc.n_pages >= 1
    assert doc.pages[0].start >= 0 and doc.pages[-1].end <= len(doc.text)
    for page in doc.pages:
        assert 0 <= page.start <= page.end <= len(doc.text)
    assert "\x00" not in doc.text


@FUZZ
@given(data=st.binary(max_size=4096), name=NAMES)
def test_arbitrary_bytes_load_or_raise_document_error(data: bytes, name: str) -> None:
    _check(data, name)


@FUZZ
@given(data=st.binary(max_size=2048), name=NAMES)
def test_bytes_behind_a_pdf_header(data: bytes, name: str) -> None:
    _check(b"%PDF-1.7\n" + data, name)


@pytest.fixture(scope="module")
def seed_pdfs(make_pdf) -> list[bytes]:
    """Valid PDFs to mutate: plain, two pages, and encrypted."""
    return [
        make_pdf([SEED_TEXT]),
        make_pdf([SEED_TEXT, "Second page. " + SEED_TEXT]),
        make_pdf([SEED_TEXT], password="pw", algorithm="RC4-128"),
    ]


@st.composite
def _mutations(draw: st.DrawFn, size: int) -> list[tuple[str, int, bytes]]:
    n = draw(st.integers(1, 6))
    return [
        (
            draw(st.sampled_from(["flip", "insert", "delete", "truncate"])),
            draw(st.integers(0, size - 1)),
            draw(st.binary(min_size=1, max_size=16)),
        )
        for _ in range(n)
    ]


@FUZZ
@given(data=st.data(), name=st.sampled_from(["upload.pdf", "upload.txt"]))
def test_mutated_pdfs_load_or_raise_document_error(
    seed_pdfs: list[bytes], data: st.DataObject, name: str
) -> None:
    pdf = bytearray(data.draw(st.sampled_from(seed_pdfs)))
    for kind, position, payload in data.draw(_mutations(len(pdf))):
        position = min(position, max(len(pdf) - 1, 0))
        if kind == "flip" and pdf:
            pdf[position] ^= payload[0] or 0xFF
        elif kind == "insert":
            pdf[position:position] = payload
        elif kind == "delete":
            del pdf[position : position + len(payload)]
        elif kind == "truncate":
            del pdf[position:]
    _check(bytes(pdf), name)


# Text built from the pieces that make sentence splitting hard.
_PIECES = st.sampled_from(
    [
        " ",
        "  ",
        "\n",
        "\n\n",
        "\t",
        ".",
        "...",
        "!",
        "?",
        '"',
        "“",
        "”",
        "(",
        ")",
        "e.g.",
        "U.S.",
        "Dr.",
        "J.",
        "3.5",
        "No.",
        "Fig.",
        "word",
        "Word",
        "A",
        "x",
        "- ",
        "• ",
        "1. ",
        "\uf03c ",
        "。",
        "好",
        "\u00a0",
        "\u2028",
    ]
)
TEXTS = st.one_of(
    st.lists(_PIECES, max_size=80).map("".join),
    st.text(max_size=300),
)


def _assert_spans(text: str, spans: list[tuple[int, int]], start: int, end: int) -> None:
    previous = start
    for a, b in spans:
        assert previous <= a < b <= end, (spans, start, end)
        piece = text[a:b]
        assert piece.strip() and piece == piece.strip()
        previous = b


@settings(max_examples=150, deadline=None, database=None)
@given(text=TEXTS, bounds=st.tuples(st.integers(-5, 400), st.integers(-5, 400) | st.none()))
def test_sentence_spans_are_ordered_disjoint_and_stripped(text: str, bounds: tuple[int, int | None]) -> None:
    start, end = bounds
    spans = sentence_spans(text, start, end)
    real_start = max(start, 0)
    real_end = len(text) if end is None else min(end, len(text))
    if real_start >= real_end:
        assert spans == []
        return
    _assert_spans(text, spans, real_start, real_end)
    # Nothing but whitespace is dropped between sentences.
    covered = "".join(text[a:b] for a, b in spans)
    assert "".join(text[real_start:real_end].split()) == "".join(covered.split())


@settings(max_examples=100, deadline=None, database=None)
@given(text=TEXTS)
def test_paragraph_spans_are_ordered_disjoint_and_stripped(text: str) -> None:
    spans = paragraph_spans(text)
    _assert_spans(text, spans, 0, len(text))
    covered = "".join(text[a:b] for a, b in spans)
    assert "".join(text.split()) == "".join(covered.split())
