"""Issue 16: batched passes give the same states as one window at a time; bf16 only where native."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from longformer_core.model.registry import DTYPE_ENV, compute_dtype, cpu_has_native_bf16, load_checkpoint
from longformer_core.reading import encoding
from longformer_core.reading.encoding import (
    batch_size_for,
    embed_texts,
    encode_document,
    plan_batches,
    run_windows,
    tokenize,
)

TEXT = " ".join(
    f"Sentence {i} says that the capital of country {i % 7} is city {i % 11}, and the river runs north."
    for i in range(120)
)


def _one_at_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """A token budget so small that every forward pass holds one window."""
    monkeypatch.setattr(encoding, "BATCH_TOKENS", 1)


@pytest.fixture(scope="module")
def tiny_roberta(tiny_checkpoint):
    return load_checkpoint(str(tiny_checkpoint("roberta")))


@pytest.fixture(scope="module")
def tiny_longformer_qa(tiny_checkpoint):
    return load_checkpoint(str(tiny_checkpoint("longformer-qa")))


def test_batched_chunked_view_equals_one_chunk_at_a_time(tiny_roberta, monkeypatch):
    model = tiny_roberta
    model.dtype = torch.float32
    doc = tokenize(model.tokenizer, TEXT)
    assert len(doc) > 3 * model.max_tokens  # several chunks, so batches really hold more than one
    batched = encode_document(model, doc, "chunked", keep_last4=True)
    assert len(plan_batches([model.max_tokens] * len(batched.windows), model)) < len(batched.windows)
    _one_at_a_time(monkeypatch)
    assert len(plan_batches([model.max_tokens] * len(batched.windows), model)) == len(batched.windows)
    single = encode_document(model, doc, "chunked", keep_last4=True)
    assert batched.windows == single.windows
    np.testing.assert_allclose(batched.hidden, single.hidden, atol=1e-5)
    np.testing.assert_allclose(batched.last4, single.last4, atol=1e-5)
    np.testing.assert_allclose(batched.window_first, single.window_first, atol=1e-5)


def test_batched_regions_of_different_lengths_equal_one_at_a_time(tiny_longformer_qa, monkeypatch):
    """Regions padded to the longest in the batch (Longformer, question tokens global) answer as alone."""
    model = tiny_longformer_qa
    model.dtype = torch.float32
    doc = tokenize(model.tokenizer, TEXT)
    q_ids = model.tokenizer("What is the capital of country 3?", add_special_tokens=False)["input_ids"]
    regions = [(0, 40), (100, 190), (300, 317), (500, 620)]  # different lengths: padding inside a batch
    kwargs = {"question_ids": q_ids, "global_question": True, "global_first": True, "windows": regions}

    def logits() -> list[tuple[np.ndarray, np.ndarray, tuple[int, int]]]:
        return [
            (out.start_logits[0].numpy(), out.end_logits[0].numpy(), win.doc_range)
            for win, out in run_windows(model, doc, "longformer", **kwargs)
        ]

    batched = logits()
    _one_at_a_time(monkeypatch)
    single = logits()
    assert [r for *_, r in batched] == [r for *_, r in single] == regions  # window order kept
    for (bs, be, _), (ss, se, _) in zip(batched, single):
        assert bs.shape == ss.shape and bs.dtype == np.float32  # trimmed to its own length, float32
        np.testing.assert_allclose(bs, ss, atol=1e-4)
        np.testing.assert_allclose(be, se, atol=1e-4)


def test_embed_texts_in_length_sorted_batches_equals_one_by_one(tiny_roberta):
    model = tiny_roberta
    model.dtype = torch.float32
    texts = ["short", TEXT[:900], "a somewhat longer sentence about rivers", TEXT[:300], "x"]
    batched = embed_texts(model, texts)
    single = np.concatenate([embed_texts(model, [t]) for t in texts])
    tiny_budget = embed_texts(model, texts, token_budget=1)
    np.testing.assert_allclose(batched, single, atol=1e-5)
    np.testing.assert_allclose(tiny_budget, single, atol=1e-5)
    assert embed_texts(model, []).shape == (0, model.encoder.config.hidden_size)


def test_batch_size_follows_the_token_budget_and_model_width(tiny_roberta):
    """A model twice as wide gets half the sequences per pass; a batch never outgrows the budget."""
    model = tiny_roberta
    hidden = model.encoder.config.hidden_size
    budget = encoding.BATCH_TOKENS * encoding.REFERENCE_HIDDEN // hidden
    assert batch_size_for(model, 512) == max(1, budget // 512)
    assert batch_size_for(model, 10**9) == 1  # a window longer than the budget still runs, alone
    lengths = [50, 512, 30, 400, 512, 7, 300] * 40
    for batch in plan_batches(lengths, model, token_budget=2048):
        longest = max(lengths[i] for i in batch)
        assert len(batch) == 1 or len(batch) * longest * hidden <= 2048 * encoding.REFERENCE_HIDDEN
    assert sorted(i for b in plan_batches(lengths, model) for i in b) == list(range(len(lengths)))


def test_dtype_setting_overrides_detection(monkeypatch):
    cpu = torch.device("cpu")
    monkeypatch.setenv(DTYPE_ENV, "fp32")
    assert compute_dtype(cpu) == torch.float32
    monkeypatch.setenv(DTYPE_ENV, "bf16")
    assert compute_dtype(cpu) == torch.bfloat16
    monkeypatch.setenv(DTYPE_ENV, "auto")
    assert compute_dtype(cpu) == (torch.bfloat16 if cpu_has_native_bf16() else torch.float32)
    monkeypatch.setenv(DTYPE_ENV, "half please")
    with pytest.raises(ValueError, match="fp32 or bf16"):
        compute_dtype(cpu)


def test_native_bf16_detection_agrees_with_the_kernel_flags():
    cpuinfo = Path("/proc/cpuinfo")
    if not cpuinfo.is_file():
        pytest.skip("no /proc/cpuinfo on this system")
    flags = next((line.split() for line in cpuinfo.read_text().splitlines() if line.startswith("flags")), [])
    assert cpu_has_native_bf16() == any(f in flags for f in ("avx512_bf16", "amx_bf16"))


def test_bf16_pass_is_close_to_fp32_and_hands_back_float32(tiny_longformer_qa):
    model = tiny_longformer_qa
    doc = tokenize(model.tokenizer, TEXT[:2000])
    model.dtype = torch.float32
    fp32 = encode_document(model, doc, "longformer")
    model.dtype = torch.bfloat16
    try:
        bf16 = encode_document(model, doc, "longformer")
    finally:
        model.dtype = torch.float32
    assert bf16.hidden.dtype == np.float32
    cos = (fp32.hidden * bf16.hidden).sum(1) / (
        np.linalg.norm(fp32.hidden, axis=1) * np.linalg.norm(bf16.hidden, axis=1)
    )
    assert cos.min() > 0.99, cos.min()
    assert not np.array_equal(fp32.hidden, bf16.hidden)  # it really ran in bf16


# --------------------------------------------------------------------------------------------------
# Reading in the background (longformer_core.reading.background)


@pytest.fixture()
def tiny_pair(tiny_checkpoint):
    """A fresh tiny Longformer + RoBERTa pair per test (hooks added by a test stay in it)."""
    from longformer_core.model.registry import load_models

    return load_models(str(tiny_checkpoint("longformer")), str(tiny_checkpoint("roberta")))


def _reader(pair, text: str = TEXT):
    from longformer_core.documents import text_document
    from longformer_core.reading.document_reading import DocumentReader

    return DocumentReader(pair, text_document(text, name="speed.txt"), strategy="cls")


def test_a_reader_keeps_its_passage_vectors_after_the_shared_cache_dropped_them(tiny_pair, monkeypatch):
    """The shared cache keeps the last few documents' passage vectors; a reader that outlives them (a book read
    while other sessions upload) must not embed its passages again: in a soak that was minutes of foreground work."""
    from longformer_core.documents import text_document
    from longformer_core.reading import document_reading
    from longformer_core.reading.document_reading import DocumentReader

    monkeypatch.setattr(document_reading, "_PASSAGE_CACHE_SIZE", 1)
    embedded: list[int] = []
    real = document_reading.embed_texts

    def counting(model, texts, **kwargs):
        embedded.append(len(texts))
        return real(model, texts, **kwargs)

    monkeypatch.setattr(document_reading, "embed_texts", counting)
    book = _reader(tiny_pair)
    vectors = book.embed_passages()
    other = DocumentReader(
        tiny_pair, text_document("Another upload. " * 40, name="other.txt"), strategy="cls"
    )
    other.embed_passages()  # the shared cache now holds only this one
    assert book.document.sha256 not in document_reading._PASSAGE_VECTORS[tiny_pair.baseline.model]
    assert book.passage_vectors_ready() and book.embed_passages() is vectors
    assert len(embedded) == 2 and "passage vectors" in book.memory_by_component()


def test_background_reading_answers_each_view_when_ready_and_blocks_no_one(tiny_pair):
    """Two threads: one waits for the Longformer, held up inside its forward pass (the reader's lock
    held); the other gets the same reading and answers with the chunked view meanwhile."""
    import threading

    from longformer_core.qa.answering import ask
    from longformer_core.reading.background import PASSAGES, reading_of, start_reading

    gate = threading.Event()
    entered = threading.Event()

    def hold(*_args, **_kwargs):
        entered.set()
        assert gate.wait(30), "the test never opened the gate"

    hook = tiny_pair.longformer.encoder.register_forward_pre_hook(hold)
    reader = _reader(tiny_pair)
    reading = start_reading(reader)
    assert reading.steps == ["truncated", PASSAGES, "chunked", "longformer"]
    assert entered.wait(60), "the background reading never reached the Longformer"
    assert reading.ready_views() == ["truncated", "chunked"]
    assert not reading.wait("longformer", timeout=0.2)

    answers: dict[str, object] = {}

    def second_session() -> None:
        same = start_reading(_reader(tiny_pair))  # another session's reader of the same document
        answers["same"] = same is reading and reading_of(reader) is reading
        answers["ready"] = same.wait("chunked", timeout=30)
        answers["chunked"] = ask(reader, "What is the capital of country 3?", views=["chunked"])["chunked"]

    other = threading.Thread(target=second_session)
    other.start()
    other.join(30)
    assert not other.is_alive(), "a question on a read view waited for the Longformer's reading"
    assert answers["same"] and answers["ready"]
    assert answers["chunked"].best is not None
    assert not reading.is_ready("longformer")
    assert reading.fractions()["chunked"] == 1.0 and reading.fractions()["longformer"] < 1.0

    gate.set()
    assert reading.wait("longformer", timeout=60)
    assert reading.join(60) and reading.error is None
    assert reading.fractions() == {step: 1.0 for step in reading.steps}
    assert reader.has_pass("longformer")
    hook.remove()


def test_background_reading_reports_a_failure_to_whoever_waits_and_restarts(tiny_pair):
    from longformer_core.reading.background import start_reading

    def fail(*_args, **_kwargs):
        raise RuntimeError("out of memory (simulated)")

    hook = tiny_pair.longformer.encoder.register_forward_pre_hook(fail)
    reader = _reader(tiny_pair, TEXT[:3000])
    reading = start_reading(reader)
    with pytest.raises(RuntimeError, match="simulated"):
        reading.wait("longformer", timeout=60)
    assert reading.wait("chunked", timeout=60)  # what was read before the failure stays usable
    with pytest.raises(ValueError, match="does not read the view"):
        reading.wait("passages")
    hook.remove()
    again = start_reading(reader)
    assert again is not reading
    assert again.wait("longformer", timeout=60) and again.error is None


def test_background_reading_skips_what_views_with_their_own_qa_head_do_not_need(tiny_checkpoint):
    from longformer_core.model.registry import load_models
    from longformer_core.reading.background import start_reading

    pair = load_models(str(tiny_checkpoint("longformer-qa")), str(tiny_checkpoint("roberta-qa")))
    reading = start_reading(_reader(pair, TEXT[:2000]))
    assert reading.steps == []  # span heads read their windows per question
    assert reading.wait("longformer", timeout=0) and reading.ready_views() == [
        "truncated",
        "chunked",
        "longformer",
    ]
    assert reading.join(10) and reading.error is None


def test_sum_of_last_four_layers_equals_summing_output_hidden_states(tiny_longformer_qa):
    """keep_last4 sums the last four layers as they run; the same as HF's output_hidden_states[-4:]."""
    from longformer_core.reading.encoding import build_input, model_kwargs

    model = tiny_longformer_qa
    model.dtype = torch.float32
    doc = tokenize(model.tokenizer, TEXT[:600])
    p = encode_document(model, doc, "longformer", keep_last4=True, global_first=True)
    win = build_input(model.tokenizer, doc, p.windows[0], global_first=True)
    with torch.inference_mode():
        out = model.encoder(**model_kwargs(model, win), output_hidden_states=True)
    assert len(out.hidden_states) == 3  # embeddings + 2 layers: the sum takes all three, as [-4:] does
    expected = torch.stack(out.hidden_states[-4:]).sum(0)[0, win.doc_start : win.doc_start + len(doc)]
    np.testing.assert_allclose(p.last4, expected.numpy(), atol=1e-5)


def test_longformer_padding_mask_is_one_row_and_outputs_are_unchanged(tiny_longformer_qa, monkeypatch):
    """The (batch, 1, seq, seq) mask HF builds and slices is an expanded row now; a padded batch is unchanged."""
    from transformers.models.longformer import modeling_longformer

    from longformer_core.reading.encoding import build_input, collate, model_kwargs

    model = tiny_longformer_qa
    model.dtype = torch.float32
    patched = modeling_longformer.create_bidirectional_mask
    assert getattr(patched, "_one_row", False)  # installed by use_fast_attention (load_checkpoint)
    doc = tokenize(model.tokenizer, TEXT[:900])
    wins = [build_input(model.tokenizer, doc, span, global_first=True) for span in ((0, 40), (10, 25))]
    kwargs = model_kwargs(model, collate(model.tokenizer, wins))  # the second row padded
    embeds = torch.zeros(2, kwargs["input_ids"].shape[1], 8)
    mask = kwargs["attention_mask"]
    row = patched(model.encoder.config, embeds, mask, allow_is_bidirectional_skip=False)
    dense = patched.original(model.encoder.config, embeds, mask, allow_is_bidirectional_skip=False)
    assert row.shape == dense.shape and row.stride(2) == 0  # a view: no (seq, seq) memory
    assert torch.equal(row, dense)
    with torch.inference_mode():
        fast = model.encoder(**kwargs).last_hidden_state
        monkeypatch.setattr(modeling_longformer, "create_bidirectional_mask", patched.original)
        slow = model.encoder(**kwargs).last_hidden_state
    assert torch.equal(fast, slow)


# --------------------------------------------------------------------------------------------------
# The Ask page reads in the background (real app, real embedded model, AppTest)


@pytest.mark.slow
def test_ask_page_shows_reading_progress_and_answers_every_view(make_pdf):
    from test_app import SMALL_PAGES, assert_healthy, start, upload

    at = start()
    upload(at, "harbour.pdf", make_pdf(SMALL_PAGES))
    at.switch_page("pages/ask.py").run()
    assert_healthy(at)
    progress = at.sidebar.get("progress")
    assert progress, "no reading progress in the sidebar"
    labels = " ".join(str(p.proto.text) for p in progress)
    assert "Each passage on its own" in labels
    at.text_input(key="question").input("What colour is the lighthouse?")
    at.button(key="ask_button").click().run()
    assert_healthy(at)
    record = at.session_state["ask_history"][-1]
    assert set(record.answers) == {"truncated", "chunked", "longformer"}
    assert "red and white" in record.answers["longformer"].result.best.text


def test_last_layer_sum_ignores_other_threads_using_the_same_model(tiny_roberta):
    """A question's embedding in another thread during a background pass is not summed into the pass."""
    import threading

    from longformer_core.reading.encoding import _summing_last_layers

    model = tiny_roberta
    ids = torch.tensor([[0, 5, 6, 7, 2]])
    with torch.inference_mode(), _summing_last_layers(model.encoder, 4) as found:
        other = threading.Thread(target=lambda: model.encoder(input_ids=torch.tensor([[0, 9, 2]])))
        other.start()
        other.join()
        assert "sum" not in found  # the other thread's forward left no trace
        out = model.encoder(input_ids=ids, output_hidden_states=True)
    np.testing.assert_allclose(
        found["sum"].numpy(), torch.stack(out.hidden_states[-4:]).sum(0).numpy(), atol=1e-5
    )
