"""Books, not booklets (issue 27): the mechanisms that let the app read a 1,000-page document.

Fast tests use short documents with the limits lowered (a zero byte budget forces the memory-mapped path); the
slow ones compare float16 states with float32 on a real sample with the real embedded model, and build the
1,147-page King James Bible PDF once (scripts/make_samples.py --bible; skipped without Debian's bible-kjv).
"""

from __future__ import annotations

import importlib.util
import shutil
import time
import weakref
from pathlib import Path

import numpy as np
import pytest
import torch

from longformer_core.documents import Document, Page, load_path, text_document
from longformer_core.documents.limits import DEFAULT_MAX_CHARS, document_time_budget_s
from longformer_core.qa.answering import ask, preliminary_answer
from longformer_core.qa.evidence import Evidence, Explanation
from longformer_core.qa.report import evidence_strip_figure, strip_bins
from longformer_core.reading import document_reading
from longformer_core.reading.cache import estimate_nbytes, reader_nbytes
from longformer_core.reading.document_reading import DEFAULT_MAX_TOKENS, DocumentReader
from longformer_core.reading.encoding import embed_texts, encode_document
from longformer_core.reading.results import Located
from longformer_core.reading.states import StateStore, is_mapped, mapped_zeros, window_owners
from longformer_core.similarity import document_embedding

REPO_ROOT = Path(__file__).resolve().parent.parent
SAMPLES = REPO_ROOT / "assets" / "samples"
FACTS = (
    "The archive opens at 7:45 on weekdays. Visitors sign the ledger at the front desk. "
    "The reading room holds two hundred seats. Maps are kept in the west wing. "
    "The conservator repairs bindings on Thursdays. Photographs may be taken without flash. "
)


# --------------------------------------------------------------------------------------------------
# Merging windows as they come


def _owners_by_the_old_rule(n: int, windows: list[tuple[int, int]]) -> np.ndarray:
    """Each token's window, as the reader chose before states were written batch by batch (strictly better
    margin wins, so the first window wins ties)."""
    owner = np.full(n, -1)
    best = np.full(n, -1)
    for i, (s, e) in enumerate(windows):
        for t in range(s, e):
            margin = min(t - s, e - 1 - t)
            if margin > best[t]:
                owner[t], best[t] = i, margin
    return owner


@pytest.mark.parametrize(
    "windows", [[(0, 10)], [(0, 10), (6, 16), (12, 22)], [(0, 512), (384, 896), (768, 1280), (1000, 1512)]]
)
def test_each_token_belongs_to_the_window_where_it_is_most_central(windows) -> None:
    n = windows[-1][1]
    assert window_owners(n, windows).tolist() == _owners_by_the_old_rule(n, windows).tolist()


def test_a_pass_written_batch_by_batch_in_float16_keeps_the_float32_states(embedded_pair) -> None:
    """The chunked view over several batches: float16 states are the float32 ones rounded, window by window."""
    from longformer_core.reading.tokenization import tokenize

    baseline = embedded_pair.baseline
    doc = tokenize(baseline.tokenizer, FACTS * 40)
    full = encode_document(baseline, doc, "chunked", keep_last4=True)
    half = encode_document(baseline, doc, "chunked", keep_last4=True, state_dtype=np.float16)
    assert len(full.windows) > 3 and half.hidden.dtype == np.float16 and full.hidden.dtype == np.float32
    np.testing.assert_allclose(half.hidden, full.hidden, rtol=2e-3, atol=2e-3)
    np.testing.assert_allclose(half.last4, full.last4, rtol=2e-3, atol=1e-2)
    mean32, mean16 = full.pooled(), half.pooled()
    assert mean16.dtype == np.float32
    assert float(mean16 @ mean32 / np.linalg.norm(mean16) / np.linalg.norm(mean32)) > 0.99999


# --------------------------------------------------------------------------------------------------
# Only the layers a task uses


def test_readers_of_one_document_tokenize_it_once(embedded_pair) -> None:
    """The sidebar's token count (first-token strategy) and the Ask page's reading (question words) share tokens."""
    document = text_document(FACTS * 12, "shared.txt")
    counted = DocumentReader(embedded_pair, document, strategy="cls")
    asked = DocumentReader(embedded_pair, document, strategy="question")
    assert asked.long_tokens is counted.long_tokens
    limited = DocumentReader(embedded_pair, document, strategy="cls", max_tokens=10**6)
    assert limited.long_tokens is not counted.long_tokens  # another limit may stop elsewhere
    np.testing.assert_array_equal(limited.long_tokens.ids, counted.long_tokens.ids)


def test_readers_under_other_strategies_read_the_baseline_once(embedded_pair) -> None:
    """Ask (question words) and Classify (first token) on one book: the chunked view, which no strategy changes,
    is read once; the Longformer's is each reader's own. Only the reader that read it counts it in its budget."""
    document = text_document(FACTS * 12, "twice.txt")
    asked = DocumentReader(embedded_pair, document, strategy="question")
    classified = DocumentReader(embedded_pair, document, strategy="cls")
    chunked = asked.encoded("chunked")
    assert classified.encoded("chunked") is chunked
    assert classified.state_store.in_memory_bytes == 0 < asked.state_store.in_memory_bytes
    assert classified.encoded("longformer") is not asked.encoded("longformer")
    exact = DocumentReader(embedded_pair, document, strategy="cls", state_dtype=np.float32)
    assert exact.encoded("chunked") is not chunked and exact.encoded("chunked").hidden.dtype == np.float32
    with_sum = classified.encoded(
        "chunked", last4=True
    )  # read again with the sum, for this reader and the next
    assert with_sum is not chunked and asked.encoded("chunked") is chunked
    assert (
        DocumentReader(embedded_pair, document, strategy="every_k").encoded("chunked", last4=True) is with_sum
    )
    classified.state_store.forget([chunked.hidden])  # not its own: nothing to forget
    own = classified.encoded("longformer").hidden.nbytes + with_sum.hidden.nbytes + with_sum.last4.nbytes
    assert classified.state_store.in_memory_bytes == own


def test_the_last_four_layers_are_read_only_when_a_task_asks(embedded_pair) -> None:
    reader = DocumentReader(embedded_pair, text_document(FACTS * 10, "facts.txt"), strategy="cls")
    plain = reader.encoded("longformer")
    assert (
        plain.last4 is None
        and reader.has_pass("longformer")
        and not reader.has_pass("longformer", last4=True)
    )
    stored = reader.state_store.in_memory_bytes
    vector = document_embedding(reader, "longformer", "sum-last4")  # reads the view again, with the sum
    again = reader.encoded("longformer")
    assert again.last4 is not None and reader.has_pass("longformer", last4=True)
    np.testing.assert_allclose(again.hidden, plain.hidden, atol=1e-3)  # the same last layer
    assert reader.state_store.in_memory_bytes == stored + again.last4.nbytes  # the replaced pass is forgotten
    exact = DocumentReader(embedded_pair, reader.document, strategy="cls", state_dtype=np.float32)
    reference = document_embedding(exact, "longformer", "sum-last4")
    assert float(vector @ reference) > 0.99999


# --------------------------------------------------------------------------------------------------
# Past the budget: memory-mapped states


def test_the_store_maps_what_does_not_fit_and_leaves_no_file_behind(tmp_path: Path) -> None:
    store = StateStore(budget_bytes=4096, folder=tmp_path)
    small = store.allocate((8, 128), np.dtype(np.float16))  # 2 kB: in memory
    big = store.allocate((64, 128), np.dtype(np.float16))  # 16 kB: past the budget
    assert not is_mapped(small) and is_mapped(big) and is_mapped(big[3:9])
    assert (store.in_memory_bytes, store.mapped_bytes) == (small.nbytes, big.nbytes)
    big[5] = 1.5
    assert float(big[5].sum()) == 1.5 * 128 and float(big[6].sum()) == 0.0
    assert list(tmp_path.iterdir()) == []  # unlinked as soon as it was mapped
    assert estimate_nbytes(big) < 1024 and estimate_nbytes([big[1:4], big]) < 2048  # not in memory
    assert estimate_nbytes(small) >= small.nbytes
    store.forget([big])
    assert store.mapped_bytes == 0
    assert mapped_zeros((0, 4), np.float16, tmp_path).shape == (0, 4)


def test_a_reader_past_its_budget_maps_its_states_and_answers_the_same(
    embedded_pair, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LONGDOC_CACHE", str(tmp_path))  # states go to tmp_path/states
    document = text_document(FACTS * 25, "archive.txt")
    in_memory = DocumentReader(embedded_pair, document, strategy="question")
    for view in ("chunked", "longformer"):
        in_memory.encoded(view)
    # A fresh table of shared passes: the mapped reader must read its own chunked view, not borrow this one.
    monkeypatch.setattr(document_reading, "_SHARED_PASSES", weakref.WeakKeyDictionary())
    mapped = DocumentReader(embedded_pair, document, strategy="question", states_budget_bytes=0)
    for view in ("chunked", "longformer"):
        kept, on_disk = in_memory.encoded(view), mapped.encoded(view)
        assert not is_mapped(kept.hidden) and is_mapped(on_disk.hidden)
        np.testing.assert_allclose(on_disk.hidden, kept.hidden, atol=1e-3)
    question = "When does the archive open?"
    expected, got = ask(in_memory, question), ask(mapped, question)
    for view in ("chunked", "longformer"):
        assert got[view].best.char_span == expected[view].best.char_span
        assert got[view].best.score == pytest.approx(expected[view].best.score, abs=1e-3)
    assert "7:45" in got["longformer"].best.text
    assert mapped.state_store.mapped_bytes > 0 and mapped.state_store.in_memory_bytes == 0
    assert list((tmp_path / "states").iterdir()) == []
    states = sum(p.hidden.nbytes for p in (in_memory.encoded("chunked"), in_memory.encoded("longformer")))
    assert (
        reader_nbytes(mapped) < reader_nbytes(in_memory) - 0.9 * states
    )  # the cache counts what is in memory
    components = mapped.memory_by_component()
    assert "states longformer last (mapped)" in components and "states longformer last" not in components


# --------------------------------------------------------------------------------------------------
# Bytes per token


def test_memory_by_component_is_the_shapes_times_the_dtypes(embedded_pair) -> None:
    """What docs/results.md's "Memory per token" table computes: last-layer states 2 bytes x hidden per token
    and view, passage vectors and states 4 bytes x hidden per passage, tokens 24 bytes."""
    reader = DocumentReader(embedded_pair, text_document(FACTS * 30, "archive.txt"), strategy="question")
    for view in ("chunked", "longformer"):
        reader.encoded(view)
        reader.passage_states(view)
    reader.embed_passages()
    _ = reader.lexical_index, reader.paragraphs
    n, hidden, passages = len(reader.long_tokens), 384, len(reader.passages)
    memory = reader.memory_by_component()
    assert memory["states chunked last"] == memory["states longformer last"] == n * hidden * 2
    assert memory["passage vectors"] == passages * hidden * 4
    assert memory["passage states longformer"] == passages * (hidden * 4 + 1)
    assert memory["tokens"] == n * 24
    per_token = sum(memory.values()) / n
    assert 2 * hidden * 2 < per_token < 2 * hidden * 2 + 1000, memory  # the states dominate


def test_estimates_of_long_lists_are_sampled_and_close(monkeypatch: pytest.MonkeyPatch) -> None:
    spans = [(i * 37, i * 37 + 30 + i % 7) for i in range(200_000)]  # a book's sentence spans
    started = time.perf_counter()
    sampled = estimate_nbytes(spans)
    sampled_s = time.perf_counter() - started
    monkeypatch.setattr("longformer_core.reading.cache._SAMPLE_ABOVE", 10**9)  # walk every item
    started = time.perf_counter()
    exact = estimate_nbytes(spans)
    assert abs(sampled - exact) < 0.02 * exact
    assert sampled_s < time.perf_counter() - started


def test_passage_embeddings_are_those_of_each_text_read_alone(embedded_pair) -> None:
    """embed_texts keeps only token ids between batches; its vectors are still each text's mean-pooled state."""
    baseline = embedded_pair.baseline
    texts = ["The archive opens at 7:45.", "Maps", FACTS, "Photographs may be taken without flash. " * 3]
    got = embed_texts(baseline, texts, batch_size=2)
    for text, vector in zip(texts, got, strict=True):
        encoded = baseline.tokenizer(text, return_tensors="pt", truncation=True, max_length=512)
        with torch.inference_mode(), baseline.autocast():
            states = baseline.encoder(**encoded).last_hidden_state.float()[0]  # (L, hidden)
        expected = torch.nn.functional.normalize(states.mean(0), dim=0).numpy()
        assert float(vector @ expected) > 0.9999


# --------------------------------------------------------------------------------------------------
# Limits


def test_defaults_accept_a_1500_page_book() -> None:
    assert DEFAULT_MAX_TOKENS >= 1_000_000 and DEFAULT_MAX_CHARS >= 4.5 * 1_000_000
    assert document_time_budget_s(1_221) > 1_221 / 60 * 5  # five times pypdf's pace on two cores
    assert document_time_budget_s(1) < 61


def test_pdf_pages_are_reported_as_they_are_read(make_pdf) -> None:
    from longformer_core.documents import load_document

    seen: list[tuple[int, int]] = []
    document = load_document(
        make_pdf([f"Page {i}. The harbour master keeps the log." for i in range(7)]),
        "log.pdf",
        on_page=lambda done, total: seen.append((done, total)),
    )
    assert document.n_pages == 7
    assert seen[0] == (0, 7) and seen[-1] == (7, 7)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen) and len(seen) == 8


# --------------------------------------------------------------------------------------------------
# Pages that draw a whole book


def _book(n_pages: int) -> Document:
    text = "\n\n".join(f"Page {i + 1}. " + FACTS for i in range(n_pages))
    pages, start = [], 0
    for i in range(n_pages):
        length = len(f"Page {i + 1}. " + FACTS)
        pages.append(Page(start, start + length, str(i + 1)))
        start += length + 2
    return Document(text=text, pages=tuple(pages), name="book.pdf", kind="pdf", sha256="b" * 64)


def _explanation_on(book: Document, page: int) -> Explanation:
    at = book.pages[page - 1].start + 10
    return Explanation(
        view="longformer",
        question="q",
        answer=Located.of(book, (at, at + 5)),
        evidence=[Evidence(**vars(Located.of(book, (at, at + 20))), score=0.7)],
        window_tokens=(0, 10),
        window_chars=(0, 10),
        target_logit=1.0,
        seconds=0.1,
    )


def test_the_evidence_strip_of_a_book_bins_its_pages() -> None:
    edges = strip_bins(1_221)
    assert len(edges) - 1 <= 250 and edges[0] == 0 and edges[-1] == 1_221
    figure = evidence_strip_figure(1_221, {"longformer": _explanation_on(_book(1_221), 700)})
    heat = figure.data[0]
    assert len(heat.x) == len(edges) - 1
    cell = int(np.argmax(heat.z[0]))
    assert heat.z[0][cell] == pytest.approx(1.0) and heat.customdata[0][cell] == "pages 696-700"
    assert heat.x[cell] - 2.5 < 700 <= heat.x[cell] + 2.5  # the answer's star falls in its cell
    assert "5 per cell" in figure.layout.title.text
    short = evidence_strip_figure(79, {"longformer": _explanation_on(_book(79), 40)})
    assert list(short.data[0].x) == list(range(1, 80))  # one page a cell, as before
    assert short.data[0].customdata[0][39] == "page 40" and "per cell" not in short.layout.title.text


def test_the_attention_grid_of_a_book_with_a_global_token_per_sentence(monkeypatch) -> None:
    from longformer_core import plots
    from longformer_core.reading.windows import LONG_OVERLAP, plan_windows

    n = 1_200_000
    windows = plan_windows(n, 16_382, LONG_OVERLAP)
    doc_global = np.zeros(n, dtype=bool)
    doc_global[::20] = True  # 60,000 globals
    spec = plots.document_pattern_spec(n, 256, doc_global, True, windows)
    positions = spec.global_positions
    starts = np.array([s for s, _ in windows])
    ends = np.array([e for _, e in windows])
    sample = np.linspace(0, len(positions) - 1, 500).astype(int)
    for k in sample:  # each global reaches exactly the windows holding it
        holding = (starts <= positions[k]) & (positions[k] < ends)
        assert spec.global_spans[k].tolist() == [starts[holding].min(), ends[holding].max()]
    grid = plots.pattern_grid(spec)
    assert grid.codes.shape == (600, 600)
    small = plots.document_pattern_spec(
        60_000, 256, doc_global[:60_000], True, plan_windows(60_000, 16_382, 1024)
    )
    expected = plots.pattern_grid(small)
    monkeypatch.setattr("longformer_core.plots.pattern._GLOBALS_PER_BLOCK", 97)  # many blocks, same counts
    got = plots.pattern_grid(small)
    np.testing.assert_array_equal(got.codes, expected.codes)
    np.testing.assert_allclose(got.coverage, expected.coverage)


# --------------------------------------------------------------------------------------------------
# Reading progress


def test_the_reading_says_how_long_is_left(embedded_pair) -> None:
    from longformer_core.reading.background import BackgroundReading

    reading = BackgroundReading(
        DocumentReader(embedded_pair, text_document(FACTS, "short.txt"), strategy="question")
    )
    assert reading.join(120) and reading.error is None
    assert all(reading.seconds_left(step) is None for step in reading.steps)  # done: nothing left
    assert reading.running_step() is None
    step = reading.steps[-1]
    with reading._lock:  # as if the step were a quarter done after 10 s
        reading._fraction[step] = 0.25
        reading._step_started[step] = time.monotonic() - 10.0
    assert reading.seconds_left(step) == pytest.approx(30.0, abs=0.5)
    assert reading.running_step() == step


def _pdf_being_read() -> None:
    """An app script: a 1,221-page PDF with 300 pages read (AppTest.from_function runs its body)."""
    import time

    from ui.feedback import page_progress

    update = page_progress("manual.pdf")
    update(0, 1_221)
    time.sleep(0.3)  # the bar is redrawn at most 4 times a second
    update(300, 1_221)


def _pdf_read() -> None:
    """An app script: the same PDF, every page read."""
    from ui.feedback import page_progress

    update = page_progress("manual.pdf")
    update(0, 1_221)
    update(1_221, 1_221)


def test_the_sidebar_shows_pages_and_pages_per_second_while_a_pdf_is_read() -> None:
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_function(_pdf_being_read).run(timeout=60)
    assert not at.exception
    (bar,) = at.sidebar.get("progress")
    assert bar.proto.value == 100 * 300 // 1_221  # Streamlit keeps whole percents
    assert bar.proto.text.startswith(
        "Reading manual\\.pdf: page 300 of 1,221 · "
    )  # the name escaped (Markdown)
    assert " pages/s · about " in bar.proto.text and bar.proto.text.endswith(" left")
    done = AppTest.from_function(_pdf_read).run(timeout=60)
    assert not done.exception and not done.sidebar.get("progress")  # gone once the last page is read


def test_time_left_in_words() -> None:
    from ui.feedback import time_left

    assert [time_left(s) for s in (None, float("nan"), 0.2, 42.4, 150, 7_200)] == [
        "",
        "",
        "about 1 s left",
        "about 42 s left",
        "about 2 min left",
        "about 2.0 h left",
    ]


# --------------------------------------------------------------------------------------------------
# Real model, real documents (slow)


@pytest.mark.slow
def test_float16_states_answer_like_float32(embedded_pair) -> None:
    """On the Esther sample (11 pages), with the real model and QA head: the same answers, scores within 0.02."""
    import json

    document = load_path(SAMPLES / "book_of_esther_kjv.pdf")
    questions = json.loads((SAMPLES / "book_of_esther_kjv.questions.json").read_text())["questions"]
    half = DocumentReader(embedded_pair, document, strategy="question")
    full = DocumentReader(embedded_pair, document, strategy="question", state_dtype=np.float32)
    for view in ("chunked", "longformer"):
        a, b = half.passage_states(view)[0], full.passage_states(view)[0]
        assert float(np.min(np.sum(a * b, axis=1)[np.linalg.norm(b, axis=1) > 0])) > 0.9995
    for item in questions:
        got, expected = ask(half, item["question"]), ask(full, item["question"])
        for view in ("chunked", "longformer"):
            assert got[view].best.char_span == expected[view].best.char_span, (item, view)
            assert got[view].best.score == pytest.approx(expected[view].best.score, abs=0.02)


def _make_samples():
    spec = importlib.util.spec_from_file_location("make_samples", REPO_ROOT / "scripts" / "make_samples.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_manual_sample_is_typeset_until_its_page_count(tmp_path: Path) -> None:
    """`make_samples.py --manual` (the second book-length test document) stops at the page count it is given."""
    pytest.importorskip("fpdf", reason="fpdf2 typesets the manual (requirements-test.txt)")
    pages = _make_samples().manual_pdf(tmp_path / "manual.pdf", min_pages=3)
    document = load_path(tmp_path / "manual.pdf")
    assert pages >= 3 and len(document.pages) == pages
    second = document.pages[1]
    assert "Module abc" in document.text and "Python 3." in document.text[second.start : second.end]  # header


@pytest.fixture(scope="module")
def bible_pdf() -> Path:
    """The whole KJV Bible as a PDF, built once under LONGDOC_CACHE/samples (about a minute) and reused."""
    if shutil.which("bible") is None:
        pytest.skip("Debian's bible-kjv is not installed (apt-get install -y bible-kjv): no King James text")
    pytest.importorskip("fpdf", reason="fpdf2 typesets the test book (requirements-test.txt)")
    return _make_samples().cached_bible_pdf()


@pytest.mark.slow
def test_a_1000_page_book_loads_and_gets_a_preliminary_answer(embedded_pair, bible_pdf: Path) -> None:
    """The whole Bible (1,147 pages, ~1.05 M tokens): no refusal by any default limit, and a preliminary answer
    (words in common, then the reader on two regions) from the right book without reading the document."""
    pages: list[tuple[int, int]] = []
    document = load_path(bible_pdf, on_page=lambda done, total: pages.append((done, total)))
    assert document.n_pages >= 1_000 and pages[-1] == (document.n_pages, document.n_pages)
    reader = DocumentReader(embedded_pair, document, strategy="question")
    n_tokens = len(reader.long_tokens)
    assert 1_000_000 < n_tokens <= DEFAULT_MAX_TOKENS
    jonah = (document.text.index("The Book of Jonah"), document.text.index("The Book of Micah"))
    answer = preliminary_answer(reader, "Who prepared a great fish to swallow up Jonah?", "longformer").best
    assert jonah[0] <= answer.char_span[0] < jonah[1], answer.text
    memory = reader.memory_by_component()
    per_token = {name: round(size / n_tokens, 1) for name, size in memory.items()}
    print(
        f"{document.n_pages} pages, {n_tokens:,} tokens, {len(reader.passages):,} passages; bytes/token {per_token}"
    )
    assert per_token["tokens"] == 24 and per_token["lexical index"] < 40 and per_token["text"] < 10
