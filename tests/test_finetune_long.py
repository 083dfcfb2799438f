"""Long-context fine-tuning of the one-pass reader and its chunked twin, on tiny random checkpoints."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from longformer_core.evaluation.hotpot import is_heldout
from longformer_core.qa.one_pass import ANSWER_TYPES, SpanModel, load_answer_type_head, read_one_pass
from longformer_core.training import long as fl

FILLER = "Longformer reads long documents with a sliding window. The answer is in the document. "


def _squad_articles(path: Path) -> Path:
    paragraphs = [
        FILLER * 3,
        "The capital of France is Paris. " + FILLER,
        FILLER * 2 + "Berlin is the capital of Germany.",
    ]
    context = "\n\n".join(paragraphs)
    qas = [
        {
            "id": "s1",
            "question": "What is the capital of France?",
            "paragraph_index": 1,
            "answers": [{"text": "Paris", "answer_start": context.index("Paris")}],
        },
        {
            "id": "s2",
            "question": "What is the capital of Germany?",
            "paragraph_index": 2,
            "answers": [{"text": "Berlin", "answer_start": context.index("Berlin")}],
        },
    ]
    path.write_text(
        json.dumps({"data": [{"title": "Capitals", "paragraphs": [{"context": context, "qas": qas}]}]})
    )
    return path


def _hotpot(path: Path) -> Path:
    """Two trainable questions (sha256 of the id odd), one span and one yes/no, and one held-out question."""
    ids = [f"h{i}" for i in range(40)]
    train = [i for i in ids if not is_heldout(i)][:2]
    held = next(i for i in ids if is_heldout(i))
    context = [
        ["Paris", ["The capital of France is Paris."]],
        ["Filler", [FILLER * 2]],
        ["Berlin", ["Berlin is the capital of Germany."]],
    ]
    qs = [
        {
            "_id": train[0],
            "question": "Which city is the capital of France?",
            "answer": "Paris",
            "type": "bridge",
            "supporting_facts": [["Paris", 0], ["Berlin", 0]],
            "context": context,
        },
        {
            "_id": train[1],
            "question": "Are Paris and Berlin both capitals?",
            "answer": "yes",
            "type": "comparison",
            "supporting_facts": [["Paris", 0], ["Berlin", 0]],
            "context": context,
        },
        {
            "_id": held,
            "question": "What is the capital of Germany?",
            "answer": "Berlin",
            "type": "bridge",
            "supporting_facts": [["Berlin", 0], ["Paris", 0]],
            "context": context,
        },
    ]
    path.write_text(json.dumps(qs))
    return path


def test_windows_hold_the_answer_and_chunks_point_elsewhere_at_cls(tiny_checkpoint, tmp_path: Path) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(tiny_checkpoint("longformer-qa")))
    examples = fl.squad_article_examples(_squad_articles(tmp_path / "s.json")) + fl.hotpot_train_examples(
        _hotpot(tmp_path / "h.json")
    )
    assert [e.kind for e in examples] == ["span", "span", "span", "yes"]  # the held-out question is not there
    windows = fl.build_windows(tokenizer, examples, window_tokens=96, seed=0)
    assert len(windows) == 4
    for w in windows:
        assert len(w.input_ids) <= 96 and w.global_attention_mask[0] == 1
        ex = examples[w.example]
        if ex.kind == "span":
            text = tokenizer.decode(w.input_ids[w.starts[0] : w.ends[0] + 1]).strip()
            assert text == ex.text[slice(*ex.answers[0])]
        else:
            assert w.starts == [] and w.answer_type == ANSWER_TYPES.index("yes")
    chunks = fl.chunk_windows(tokenizer, examples, windows, chunk_tokens=40)
    assert len(chunks) == 4 and any(len(c) > 1 for c in chunks)
    for w, cs in zip(windows, chunks):
        assert cs[0].doc_range[0] == w.doc_range[0] and cs[-1].doc_range[1] == w.doc_range[1]
        if examples[w.example].kind == "span":
            assert any(c.starts != [0] for c in cs) and all(c.starts and c.ends for c in cs)


@pytest.mark.slow
def test_loss_falls_when_overfitting_one_window(tiny_checkpoint, tmp_path: Path) -> None:
    from longformer_core.model.lora import LoraConfig

    source = tiny_checkpoint("longformer-qa")
    module, _, type_head = fl.reader_for_training(source, LoraConfig(rank=4, alpha=8.0), None)
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(source))
    examples = fl.squad_article_examples(_squad_articles(tmp_path / "s.json"))[:1]
    windows = fl.build_windows(tokenizer, examples, window_tokens=96)
    settings = fl.LongTrainSettings(epochs=20, learning_rate=3e-2, batch_size=1, precision="fp32", warmup=0.0)
    log = fl.train(module, type_head, [windows], settings, True, tokenizer.pad_token_id, torch.device("cpu"))
    assert log.steps == 20 and log.precision == "fp32"
    assert log.losses[-1] < 0.5 * log.losses[0]


@pytest.mark.slow
def test_finetune_long_few_steps_saves_heads_the_readers_load(tiny_checkpoint, tmp_path: Path) -> None:
    from longformer_core.model.registry import load_models, load_span_model

    model = tiny_checkpoint("longformer-qa")
    settings = fl.LongTrainSettings(epochs=2, max_steps=3, batch_size=2, precision="auto")
    report = fl.finetune_long(
        tmp_path / "out",
        model=str(model),
        squad_paths=[_squad_articles(tmp_path / "s.json")],
        hotpot_path=_hotpot(tmp_path / "h.json"),
        window_tokens=96,
        chunk_tokens=48,
        settings=settings,
        init_head=None,
        lora_rank=4,
    )
    assert report["squad_questions"] == 2 and report["hotpot_questions"] == 2
    for which in ("long", "chunked"):
        assert report[which]["steps"] == 3 and report[which]["windows"] == 6
        assert all(math.isfinite(loss) and loss > 0 for loss in report[which]["losses"])
        assert report[which]["precision"] == ("bf16" if fl.native_bf16(torch.device("cpu")) else "fp32")
        card = json.loads((tmp_path / "out" / which / "adapter.json").read_text())
        assert card["lora"]["rank"] == 4 and card["split"]["hotpot"].startswith("trained only on")
    # the saved head loads like the shipped one, with its answer-type classifier, and reads a document
    head = tmp_path / "out" / "long"
    module = load_span_model(model, head, torch.device("cpu"), fast_attention=True)
    pair = load_models(str(model))
    answer_type = load_answer_type_head(head, pair.longformer.encoder.config.hidden_size)
    assert answer_type is not None
    from longformer_core.reading.encoding import tokenize

    text = "The capital of France is Paris. " + FILLER
    tokens = tokenize(pair.longformer.tokenizer, text)
    result = read_one_pass(
        SpanModel(pair.longformer, module, answer_type), tokens, text, "Is Paris a capital?"
    )
    assert set(result.type_probabilities) == set(ANSWER_TYPES)
    assert sum(result.type_probabilities.values()) == pytest.approx(1.0, abs=1e-5)
