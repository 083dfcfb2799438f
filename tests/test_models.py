"""The embedded conversion reproduces MiniLM; hub-style checkpoints load through the same code path."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch

from longformer_core.classify import Label, classify
from longformer_core.documents import text_document
from longformer_core.model.convert import ConversionConfig, embedded_longformer_dir
from longformer_core.model.registry import ModelLoadError, load_checkpoint, load_models
from longformer_core.qa.answering import ask
from longformer_core.reading.document_reading import DocumentReader
from longformer_core.reading.encoding import VIEWS, tokenize

TEXT = "Longformer reads long documents. " * 40 + "The capital of France is Paris. " * 5


def test_conversion_reproduces_minilm_within_half_window(embedded_pair):
    """For inputs within half the window (256 tokens) the Longformer equals the original model."""
    long, base = embedded_pair.longformer, embedded_pair.baseline
    texts = ["The capital of France is Paris. " * 25, "A short one."]  # ~200 and 5 tokens: padded batch
    enc = base.tokenizer(texts, padding=True, return_tensors="pt")
    assert enc["input_ids"].shape[1] <= 256
    with torch.inference_mode():
        want = base.encoder(**enc).last_hidden_state
        got = long.encoder(**enc).last_hidden_state
    mask = enc["attention_mask"].bool()
    diff = (want - got).abs()[mask].max().item()
    assert diff <= 1e-4, diff


def test_conversion_is_cached_and_records_its_recipe(embedded_pair):
    folder = embedded_longformer_dir(ConversionConfig())
    meta = json.loads((folder / "conversion.json").read_text())
    config = json.loads((folder / "config.json").read_text())
    assert config["model_type"] == "longformer"
    assert config["attention_window"] == [512] * config["num_hidden_layers"]
    assert config["max_position_embeddings"] >= 4096
    assert meta  # the recipe and source fingerprint that key the cache
    # A second call returns the cached folder instead of converting again.
    assert embedded_longformer_dir(ConversionConfig()) == folder


def test_position_table_is_tiled_from_the_learned_rows(embedded_pair):
    long, base = embedded_pair.longformer, embedded_pair.baseline
    src = base.encoder.embeddings.position_embeddings.weight
    dst = long.encoder.embeddings.position_embeddings.weight
    n = src.shape[0]
    # HF Longformer positions start at pad_token_id + 1 = 1; row 1 + i holds learned row i % 512.
    assert torch.equal(dst[1 : 1 + n], src)
    assert torch.equal(dst[1 + n : 1 + 2 * n], src)
    layer = long.encoder.encoder.layer[0].attention.self
    assert torch.equal(layer.query_global.weight, layer.query.weight)
    assert torch.equal(layer.value_global.weight, layer.value.weight)


@pytest.mark.parametrize(
    "kind,head",
    [
        ("longformer", "none"),
        ("longformer-qa", "qa"),
        ("longformer-cls", "classification"),
        ("roberta", "none"),
        ("roberta-qa", "qa"),
        ("roberta-cls", "classification"),
    ],
)
def test_hub_style_checkpoints_load_from_a_folder(tiny_checkpoint, kind, head):
    model = load_checkpoint(str(tiny_checkpoint(kind)))
    assert model.head == head
    assert model.is_longformer == kind.startswith("longformer")
    assert model.max_tokens == (4096 if model.is_longformer else 512)
    if head == "classification":
        assert model.labels == ["class_0", "class_1", "class_2"]


def test_tiny_longformer_qa_pair_answers_with_spans_in_three_views(tiny_checkpoint):
    pair = load_models(str(tiny_checkpoint("longformer-qa")), baseline=str(tiny_checkpoint("roberta-qa")))
    assert pair.same_tokenizer
    reader = DocumentReader(pair, text_document(TEXT), strategy="question")
    results = ask(reader, "What is the capital of France?")
    assert set(results) == set(VIEWS)
    n = len(reader.long_tokens)
    assert n > 512
    assert results["truncated"].seen_tokens[1] < 512 <= results["chunked"].seen_tokens[1] == n
    assert results["longformer"].seen_tokens == (0, n)
    for r in results.values():
        assert r.method == "span" and r.answers
        best = r.best
        assert TEXT[best.char_span[0] : best.char_span[1]] == best.text
        assert 0 <= best.score <= 1 and r.no_answer_probability is not None


def test_tiny_classification_head_scores_sum_to_one(tiny_checkpoint):
    pair = load_models(str(tiny_checkpoint("longformer-cls")))  # baseline: the same weights cut at 512
    reader = DocumentReader(pair, text_document(TEXT), strategy="cls")
    results = classify(reader, [Label("ignored"), Label("also ignored")])
    for r in results.values():
        assert r.method == "head"
        assert set(r.scores) == {"class_0", "class_1", "class_2"}
        assert sum(r.scores.values()) == pytest.approx(1.0, abs=1e-5)
    assert results["truncated"].seen_tokens[1] <= 512


def test_a_roberta_model_is_refused_as_the_long_model(tiny_checkpoint):
    with pytest.raises(ModelLoadError, match="Choose a Longformer checkpoint"):
        load_models(str(tiny_checkpoint("roberta")))


def test_unknown_id_says_the_machine_is_offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelLoadError, match="cannot download"):
        load_checkpoint("nobody/no-such-longformer")


def test_a_folder_that_is_not_a_model_is_refused(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(ModelLoadError, match="not a model folder"):
        load_checkpoint(str(tmp_path))


def test_tokenize_keeps_character_offsets(embedded_pair):
    text = "Héllo wörld.\n\nSecond paragraph, with numbers 3.14!"
    toks = tokenize(embedded_pair.longformer.tokenizer, text)
    assert len(toks) > 5
    for a, b in toks.offsets:
        assert 0 <= a < b <= len(text)
    assert toks.char_span(0, len(toks)) == (0, len(text))


def test_fast_attention_matches_hf_in_inference_mode(embedded_pair):
    """The app encodes under torch.inference_mode, with the attention's worker threads: same states as HF."""
    from longformer_core.model.registry import load_embedded
    from longformer_core.reading.encoding import encode_document

    hf_pair = load_embedded(fast_attention=False)
    assert (
        type(hf_pair.longformer.encoder.encoder.layer[0].attention.self).__name__ == "LongformerSelfAttention"
    )
    assert (
        type(embedded_pair.longformer.encoder.encoder.layer[0].attention.self).__name__
        != "LongformerSelfAttention"
    )
    toks = tokenize(
        embedded_pair.longformer.tokenizer, "Long documents need long models. " * 250
    )  # ~1,750 tokens
    mask = np.zeros(len(toks), dtype=bool)
    mask[::300] = True
    # Exactness is an fp32 question: where the CPU has bf16, LONGDOC_DTYPE=auto would run both in bf16.
    fp32 = {"dtype": torch.float32}
    fast = encode_document(
        dataclasses.replace(embedded_pair.longformer, **fp32), toks, "longformer", doc_global=mask
    )
    slow = encode_document(
        dataclasses.replace(hf_pair.longformer, **fp32), toks, "longformer", doc_global=mask
    )
    assert np.abs(fast.hidden - slow.hidden).max() <= 1e-4


def test_hugging_face_logging_is_quieted_once_not_on_every_load():
    """A developer who turns HF logging back on is not overridden by the next model load."""
    from transformers.utils import logging as hf_logging

    from longformer_core.model.convert import quiet_transformers

    quiet_transformers()
    hf_logging.set_verbosity_info()
    try:
        quiet_transformers()  # what every model load calls
        assert hf_logging.get_verbosity() == hf_logging.INFO
    finally:
        hf_logging.set_verbosity_error()
