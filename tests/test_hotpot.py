"""HotpotQA evaluation and the one-pass long reader, on tiny random checkpoints (and the shared file when present)."""

from __future__ import annotations

import io
import itertools
import json
from contextlib import redirect_stdout
from pathlib import Path

import numpy as np
import pytest
import torch

from longformer_core.evaluation import hotpot
from longformer_core.model.qa_head import ANSWER_TYPES, AnswerTypeHead
from longformer_core.qa.one_pass import (
    SpanModel,
    pool_mask_of,
    qa_forward,
    read_chunks,
    read_one_pass,
    select_regions,
)
from longformer_core.reading.encoding import build_input, model_kwargs, tokenize

PARAGRAPHS = [
    ("Paris", ["The capital of France is Paris.", " Paris is a long city on a river."]),
    ("Berlin", ["Berlin is the capital of Germany.", " The answer is in the document."]),
    (
        "Longformer",
        ["Longformer reads long documents with a sliding window.", " It uses a few global tokens."],
    ),
    ("Question", ["What is the answer to the question?", " The answer is Paris."]),
]


def _questions() -> list[dict]:
    """Three questions in the official HotpotQA format: two span answers and one yes/no comparison."""
    return [
        {
            "_id": "q-bridge",
            "question": "What is the capital of France?",
            "answer": "Paris",
            "type": "bridge",
            "supporting_facts": [["Paris", 0], ["Question", 1]],
            "context": PARAGRAPHS,
        },
        {
            "_id": "q-span",
            "question": "What reads long documents?",
            "answer": "Longformer",
            "type": "bridge",
            "supporting_facts": [["Longformer", 0], ["Berlin", 0]],
            "context": PARAGRAPHS[::-1],
        },
        {
            "_id": "q-yes",
            "question": "Are Paris and Berlin both capitals?",
            "answer": "yes",
            "type": "comparison",
            "supporting_facts": [["Paris", 0], ["Berlin", 0]],
            "context": PARAGRAPHS * 6,
        },
    ]


def test_is_heldout_is_the_fixed_sha256_rule() -> None:
    import hashlib

    ids = [f"id{i}" for i in range(200)]
    expected = [int(hashlib.sha256(i.encode()).hexdigest(), 16) % 2 == 0 for i in ids]
    assert [hotpot.is_heldout(i) for i in ids] == expected
    assert 60 < sum(expected) < 140  # both halves are used


def test_shared_file_split_is_205_heldout(shared_data: Path) -> None:
    path = shared_data / "hotpotqa" / "hotpotqa-dev-distractor.json"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    questions = hotpot.load_hotpot(path)
    assert len(questions) == 381
    assert sum(hotpot.is_heldout(q.id) for q in questions) == 205
    assert all(len(q.gold) == 2 for q in questions)


def test_build_document_layout_and_gold_paragraphs(tmp_path: Path) -> None:
    text, spans = hotpot.build_document(PARAGRAPHS[:2])
    assert text == (
        "Paris\nThe capital of France is Paris. Paris is a long city on a river.\n\n"
        "Berlin\nBerlin is the capital of Germany. The answer is in the document."
    )
    assert [text[a:b].split("\n")[0] for a, b in spans] == ["Paris", "Berlin"]
    path = tmp_path / "h.json"
    path.write_text(json.dumps(_questions()))
    q = hotpot.load_hotpot(path)[1]
    assert [q.titles[i] for i in q.gold] == ["Longformer", "Berlin"]
    assert q.text[slice(*q.paragraphs[q.gold[0]])].startswith("Longformer\n")


def test_load_hotpot_refuses_squad_format(tmp_path: Path) -> None:
    path = tmp_path / "squad.json"
    path.write_text(json.dumps({"data": []}))
    with pytest.raises(ValueError, match="SQuAD format"):
        hotpot.load_hotpot(path)


@pytest.fixture(scope="module")
def tiny_pair(tiny_checkpoint):
    from longformer_core.model.registry import load_models

    return load_models(str(tiny_checkpoint("longformer-qa")))


def test_long_reader_logits_equal_hf_longformer_qa(tiny_pair, tiny_checkpoint) -> None:
    """One pass of the long reader = HF's LongformerForQuestionAnswering with the same weights (and HF's own
    attention, and its default QA global mask: every token before the first separator)."""
    from transformers import LongformerForQuestionAnswering

    hf = LongformerForQuestionAnswering.from_pretrained(str(tiny_checkpoint("longformer-qa"))).eval()
    model = tiny_pair.longformer
    text = " ".join(s for _, sents in PARAGRAPHS * 4 for s in sents)
    tokens = tokenize(model.tokenizer, text)
    question = "What is the capital of France?"
    q_ids = model.tokenizer(question, add_special_tokens=False)["input_ids"]
    assert len(tokens) > 8 * model.attention_window  # the sliding window matters
    win = build_input(
        model.tokenizer, tokens, (0, len(tokens)), question_ids=q_ids, global_first=True, global_question=True
    )
    reader = SpanModel.of(model)
    with torch.inference_mode():
        start, end, _ = qa_forward(reader.module, model_kwargs(model, win), pool_mask_of(win))
        ref = hf(input_ids=win.input_ids, attention_mask=win.attention_mask)  # HF sets the question global
    torch.testing.assert_close(start, ref.start_logits, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(end, ref.end_logits, atol=1e-4, rtol=1e-4)

    result = read_one_pass(reader, tokens, text, question)
    assert result.passes == [[(0, len(tokens))]]
    s = ref.start_logits[0].numpy()
    e = ref.end_logits[0].numpy()
    assert result.score == pytest.approx(
        max(
            s[i] + e[j]
            for i in range(win.doc_start, win.doc_start + len(tokens))
            for j in range(i, min(i + 30, win.doc_start + len(tokens)))
        ),
        abs=1e-3,
    )
    assert result.text == text[slice(*result.char_span)] and result.kind == "span"


def test_one_pass_makes_the_strategys_document_tokens_global(tiny_pair, tiny_checkpoint) -> None:
    """A reader trained with paragraph starts global (`finetune-long --doc-global paragraphs`) reads them global:
    one pass with `doc_global` = HF's Longformer given the same global mask, and differs from question-only."""
    from transformers import LongformerForQuestionAnswering

    hf = LongformerForQuestionAnswering.from_pretrained(str(tiny_checkpoint("longformer-qa"))).eval()
    model = tiny_pair.longformer
    text, _ = hotpot.build_document(PARAGRAPHS * 4)
    tokens = tokenize(model.tokenizer, text)
    question = "What is the capital of France?"
    q_ids = model.tokenizer(question, add_special_tokens=False)["input_ids"]
    mask = np.zeros(len(tokens), dtype=bool)
    mask[:: max(1, len(tokens) // 6)] = True
    win = build_input(
        model.tokenizer,
        tokens,
        (0, len(tokens)),
        q_ids,
        doc_global=mask,
        global_first=True,
        global_question=True,
    )
    with torch.inference_mode():
        ref = hf(**{k: getattr(win, k) for k in ("input_ids", "attention_mask", "global_attention_mask")})
    doc = slice(win.doc_start, win.doc_start + len(tokens))
    s, e = ref.start_logits[0, doc].numpy(), ref.end_logits[0, doc].numpy()
    best = max(s[i] + e[j] for i in range(len(s)) for j in range(i, min(i + 30, len(s))))
    reader = SpanModel.of(model)
    marked = read_one_pass(reader, tokens, text, question, doc_global=mask)
    assert marked.score == pytest.approx(best, abs=1e-3)
    assert marked.score != pytest.approx(read_one_pass(reader, tokens, text, question).score, abs=1e-4)


def test_long_document_reads_retrieved_regions_in_one_pass(tiny_pair) -> None:
    model = tiny_pair.longformer
    text = " ".join(s for _, sents in PARAGRAPHS * 30 for s in sents)
    tokens = tokenize(model.tokenizer, text)
    result = read_one_pass(
        SpanModel.of(model), tokens, text, "What reads long documents?", max_tokens=256, region_tokens=64
    )
    (ranges,) = result.passes
    assert len(ranges) == 3 and sum(b - a for a, b in ranges) <= 256
    assert all(b - a >= 64 for a, b in ranges) and ranges == sorted(ranges)
    assert all(b1 <= a2 for (_, b1), (a2, _) in itertools.pairwise(ranges))
    assert result.char_span is not None and text[slice(*result.char_span)] == result.text
    none_global = read_one_pass(
        SpanModel.of(model),
        tokens,
        text,
        "What reads long documents?",
        max_tokens=256,
        region_tokens=64,
        doc_global=np.zeros(len(tokens), dtype=bool),  # cut to the regions like the tokens
    )
    assert none_global.passes == result.passes and none_global.score == pytest.approx(result.score, abs=1e-4)


def test_select_regions_prefers_the_matching_text(tiny_pair) -> None:
    tokenizer = tiny_pair.longformer.tokenizer
    filler = "The answer is in the document. " * 40
    text = filler + "Longformer reads long documents with a sliding window. " + filler
    tokens = tokenize(tokenizer, text)
    (region,) = select_regions(tokens, text, "Longformer sliding window", capacity=120, region_tokens=100)
    a, b = tokens.char_span(*region)
    assert a <= text.index("Longformer") < b


def test_chunks_and_answer_type_head(tiny_pair) -> None:
    model = tiny_pair.baseline
    text, _ = hotpot.build_document(PARAGRAPHS * 8)
    tokens = tokenize(model.tokenizer, text)
    reader = SpanModel.of(model)
    every = read_chunks(reader, tokens, text, "What is the capital of France?")
    first = read_chunks(reader, tokens, text, "What is the capital of France?", truncated=True)
    assert len(every.passes) > 1 and len(first.passes) == 1 and first.passes[0][0][0] == 0
    assert every.score >= first.score  # the first chunk is one of the chunks
    yes = AnswerTypeHead(model.encoder.config.hidden_size)
    with torch.no_grad():
        yes.classifier.weight.zero_()
        yes.classifier.bias.copy_(torch.tensor([0.0, 5.0, 0.0]))  # always "yes"
    said = read_chunks(SpanModel.of(model, answer_type=yes), tokens, text, "Is Paris a capital?")
    assert said.text == said.kind == "yes" and said.char_span is None
    assert said.type_probabilities["yes"] == pytest.approx(np.exp(5) / (np.exp(5) + 2), abs=1e-5)
    assert set(said.type_probabilities) == set(ANSWER_TYPES)


def test_evaluate_hotpotqa_command_end_to_end(tiny_checkpoint, tmp_path: Path) -> None:
    from longformer_core.__main__ import main

    path = tmp_path / "hotpot.json"
    path.write_text(json.dumps(_questions()))
    rows = tmp_path / "rows.jsonl"
    out = io.StringIO()
    with redirect_stdout(out):
        code = main(
            [
                "evaluate",
                "hotpotqa",
                str(path),
                "--model",
                str(tiny_checkpoint("longformer-qa")),
                "--rows",
                str(rows),
                "--json",
            ]
        )
    assert code == 0
    report = json.loads(out.getvalue())
    assert report["questions"] == 3 and report["by_type_count"] == {"bridge": 2, "comparison": 1}
    lines = [json.loads(line) for line in rows.read_text().splitlines()]
    assert [r["id"] for r in lines] == ["q-bridge", "q-span", "q-yes"]
    for method in hotpot.METHODS:
        for view in ("truncated", "chunked", "longformer"):
            m = report[method][view]
            per_q = [r[f"{method}/{view}"] for r in lines]
            assert m["f1"] == pytest.approx(100 * np.mean([r["f1"] for r in per_q]), abs=0.01)
            assert m["by_answer"]["yes/no"] == {
                "questions": 1,
                "em": 0.0,
                "f1": 0.0,
            }  # no classifier: no yes/no
            assert set(m["by_type"]) == {"bridge", "comparison"}
            assert 0.0 <= m["gold_together"] <= 1.0 and m["seconds_per_question"] > 0
    # Every document fits in one Longformer pass: both gold paragraphs are always read together.
    assert report["one-pass"]["longformer"]["gold_together"] == 1.0
    # The third document (24 paragraphs) is longer than one 512-token chunk; the gold pair is far apart there.
    assert (
        report["one-pass"]["truncated"]["gold_together"] <= report["one-pass"]["longformer"]["gold_together"]
    )


def test_evaluate_hotpotqa_takes_both_dev_files_and_refuses_a_train_file_held_out(
    tiny_checkpoint, tmp_path: Path, capsys
) -> None:
    """Both shared dev files are scored as one held-out set (per method and view); a train file, trained on
    whole, has nothing held out."""
    from longformer_core.__main__ import main

    questions = _questions()
    ids = [f"dev-{i}" for i in range(12)]
    held = [i for i in ids if hotpot.is_heldout(i)][:3]
    trainable = next(i for i in ids if not hotpot.is_heldout(i))
    first, second = tmp_path / "hotpot-dev.json", tmp_path / "hotpot-dev.more.json"
    first.write_text(json.dumps([{**questions[0], "_id": held[0]}, {**questions[1], "_id": trainable}]))
    second.write_text(json.dumps([{**questions[1], "_id": held[1]}, {**questions[2], "_id": held[2]}]))
    model = str(tiny_checkpoint("longformer-qa"))
    args = ["evaluate", "hotpotqa", str(first), str(second), "--heldout", "--methods", "one-pass"]
    assert main([*args, "--model", model, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["questions"] == 3 and report["heldout"] and report["files"] == [str(first), str(second)]
    assert set(report["one-pass"]) == {"truncated", "chunked", "longformer"}
    train = tmp_path / "hotpot-train.json"
    train.write_text(first.read_text())
    assert main(["evaluate", "hotpotqa", str(train), "--heldout", "--model", model]) == 2
    assert "trained on whole" in capsys.readouterr().err
