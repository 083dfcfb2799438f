"""Fine-tuning: the CLI end to end on tiny checkpoints, the LoRA head of the embedded default, the shipped head."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from longformer_core.__main__ import main
from longformer_core.model.registry import QA_HEAD_DIR, load_checkpoint
from longformer_core.training.finetune import (
    QAExample,
    TrainSettings,
    classification_scores,
    load_squad_examples,
    qa_features,
    split_titles,
    squad_scores,
)

# A question from an article the shipped head never trained on (Sky_(United_Kingdom), kept aside).
VALIDATION_QUESTION = (
    "What company was formed by the merger of Sky Television and British Satellite Broadcasting?"
)
CONTEXT = "The capital of France is Paris. Berlin is the capital of Germany. Longformer reads long documents."


def _squad_file(path: Path, titles=("France", "Germany", "Models")) -> Path:
    """A small SQuAD-format file written by the test: three articles, answers at their true offsets."""
    qas = [
        ("What is the capital of France?", "Paris"),
        ("What is the capital of Germany?", "Berlin"),
        ("What reads long documents?", "Longformer"),
    ]
    data = []
    for t, title in enumerate(titles):
        paragraphs = [
            {
                "context": CONTEXT,
                "qas": [
                    {
                        "id": f"{t}-{i}",
                        "question": q,
                        "answers": [{"text": a, "answer_start": CONTEXT.index(a)}],
                    }
                    for i, (q, a) in enumerate(qas)
                ],
            }
        ]
        data.append({"title": title, "paragraphs": paragraphs})
    path.write_text(json.dumps({"version": "test", "data": data}))
    return path


def test_split_by_article_never_mixes(tmp_path):
    path = _squad_file(tmp_path / "s.json")
    train, val = split_titles(path, 1, seed=0)
    assert len(val) == 1 and not set(train) & set(val) and len(train) == 2
    assert split_titles(path, 1, seed=0) == (train, val)  # seeded
    with pytest.raises(ValueError, match="Cannot keep 3 of 3"):
        split_titles(path, 3)


def test_features_label_the_answer_tokens(tiny_checkpoint):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_checkpoint("roberta-qa"))
    ex = QAExample(
        "1",
        "What is the capital of Germany?",
        CONTEXT,
        [{"text": "Berlin", "answer_start": CONTEXT.index("Berlin")}],
    )
    feats = qa_features(tok, [ex], max_length=32, stride=4, longformer=True)
    assert len(feats["input_ids"]) > 1  # the context overflowed into strided windows
    found = False
    for ids, s, e, offsets, glob in zip(
        feats["input_ids"],
        feats["start_positions"],
        feats["end_positions"],
        feats["offsets"],
        feats["global_attention_mask"],
    ):
        assert glob[0] == 1 and glob[1] == 1  # [CLS] and the question are global
        if s:
            found = True
            assert CONTEXT[offsets[s][0] : offsets[e][1]].strip() == "Berlin"
    assert found
    with pytest.raises(ValueError, match="too little room"):
        qa_features(tok, [ex], max_length=16, stride=8, longformer=True)


def test_metrics():
    ex = [
        QAExample(
            "1", "q", "c", [{"text": "the Paris", "answer_start": 0}, {"text": "Lyon", "answer_start": 0}]
        )
    ]
    assert squad_scores(["Paris"], ex) == {"em": 100.0, "f1": 100.0, "questions": 1}  # articles ignored
    assert squad_scores(["Paris France"], ex)["f1"] == pytest.approx(66.67, abs=0.01)
    scores = classification_scores(np.array([0, 1, 1, 2]), np.array([0, 1, 2, 2]))
    assert scores["accuracy"] == 0.75 and scores["macro_f1"] == pytest.approx(
        (1 + 2 / 3 + 2 / 3) / 3, abs=1e-4
    )


def test_cli_finetunes_qa_and_the_checkpoint_reloads(tiny_checkpoint, tmp_path, capsys):
    data = _squad_file(tmp_path / "s.json")
    out = tmp_path / "qa"
    rc = main(
        [
            "finetune",
            "--task",
            "qa",
            "--model",
            str(tiny_checkpoint("longformer-qa")),
            "--train",
            str(data),
            "--val-articles",
            "1",
            "--max-steps",
            "3",
            "--batch-size",
            "2",
            "--out",
            str(out),
            "--json",
        ]
    )
    assert rc == 0
    report = json.loads(capsys.readouterr().out)
    assert report["steps"] == 3 and report["train_questions"] == 6 and report["eval_questions"] == 3
    for key in ("train_loss", "eval_loss", "em", "f1", "train_seconds", "samples_per_second"):
        assert np.isfinite(report[key]), key
    loaded = load_checkpoint(str(out))
    assert loaded.head == "qa" and loaded.is_longformer
    trained = dict(loaded.model.named_parameters())["qa_outputs.weight"]
    original = dict(load_checkpoint(str(tiny_checkpoint("longformer-qa"))).model.named_parameters())[
        "qa_outputs.weight"
    ]
    assert not torch.equal(trained, original)  # the steps changed the weights


def test_finetune_classifier_and_sweep(tiny_checkpoint, tmp_path, capsys):
    import pandas as pd

    rows = [("Paris is the capital of France.", "geo"), ("Longformer reads long documents.", "nlp")] * 4
    pd.DataFrame(rows, columns=["body", "topic"]).to_csv(tmp_path / "d.csv", index=False)
    args = [
        "finetune",
        "--task",
        "classify",
        "--model",
        str(tiny_checkpoint("roberta")),
        "--train",
        str(tmp_path / "d.csv"),
        "--eval",
        str(tmp_path / "d.csv"),
        "--text-column",
        "body",
        "--label-column",
        "topic",
        "--max-steps",
        "2",
        "--batch-size",
        "4",
        "--json",
    ]
    assert main(args + ["--out", str(tmp_path / "cls")]) == 0
    report = json.loads(capsys.readouterr().out)
    assert (
        report["labels"] == ["geo", "nlp"]
        and 0 <= report["accuracy"] <= 1
        and np.isfinite(report["eval_loss"])
    )
    loaded = load_checkpoint(str(tmp_path / "cls"))
    assert loaded.head == "classification" and loaded.labels == ["geo", "nlp"]

    assert (
        main(
            args
            + [
                "--out",
                str(tmp_path / "sweep"),
                "--sweep",
                "--sweep-lr",
                "1e-4",
                "1e-3",
                "--sweep-batch",
                "4",
            ]
        )
        == 0
    )
    table = pd.read_csv(tmp_path / "sweep" / "sweep.csv")
    assert len(table) == 2 and set(table["learning_rate"]) == {1e-4, 1e-3}
    assert (tmp_path / "sweep" / "sweep.html").stat().st_size > 1000


def test_missing_csv_column_is_explained(tiny_checkpoint, tmp_path, capsys):
    (tmp_path / "d.csv").write_text("text,label\nhello,a\n")
    rc = main(
        [
            "finetune",
            "--task",
            "classify",
            "--model",
            str(tiny_checkpoint("roberta")),
            "--train",
            str(tmp_path / "d.csv"),
            "--label-column",
            "category",
            "--out",
            str(tmp_path / "o"),
        ]
    )
    assert rc == 2
    assert "no column 'category'; the columns are text, label" in capsys.readouterr().err


def test_a_stopped_run_resumes_to_the_same_weights(tiny_checkpoint, tmp_path):
    """Stopped at step 3 of 7 (as SIGTERM or a session's end would) and resumed, a LoRA run ends with the weights
    of a run that never stopped; its checkpoint holds the trainable weights only, as plain tensors and JSON."""
    from safetensors.torch import load_file

    from longformer_core.training.finetune import finetune_qa, latest_checkpoint

    data = _squad_file(tmp_path / "s.json", titles=[f"T{i}" for i in range(6)])

    def run(out: str, **extra) -> dict:
        settings = TrainSettings(
            max_steps=7,
            batch_size=2,
            learning_rate=1e-2,
            checkpoint_dir=str(tmp_path / "ckpt" / out),
            **extra,
        )
        return finetune_qa(
            str(tiny_checkpoint("roberta-qa")), data, tmp_path / out, settings=settings, lora_rank=4
        )

    whole = run("whole")
    assert whole["steps"] == 7 and "stopped" not in whole
    stopped = run("parts", stop_after_steps=3)
    assert stopped["stopped"] and stopped["steps"] == 3
    assert not (tmp_path / "parts" / "adapter.safetensors").exists()
    checkpoint = latest_checkpoint(tmp_path / "ckpt" / "parts")
    assert checkpoint.name == "checkpoint-3"
    saved = load_file(str(checkpoint / "model.safetensors"))
    assert saved and all("lora" in k or "qa_outputs" in k for k in saved)  # not the frozen base
    assert json.loads((checkpoint / "trainer_state.json").read_text())["global_step"] == 3
    resumed = run("parts", resume=str(tmp_path / "ckpt" / "parts"))
    assert resumed["steps"] == 7 and "stopped" not in resumed
    assert resumed["resumed_from"].endswith("checkpoint-3")
    a = load_file(str(latest_checkpoint(tmp_path / "ckpt" / "whole") / "model.safetensors"))
    b = load_file(str(latest_checkpoint(tmp_path / "ckpt" / "parts") / "model.safetensors"))
    assert a.keys() == b.keys()
    for name in a:
        assert torch.allclose(a[name], b[name], atol=1e-6), name


def test_resume_names_what_is_missing(tmp_path):
    from longformer_core.training.finetune import latest_checkpoint

    with pytest.raises(ValueError, match="No training checkpoint in"):
        latest_checkpoint(tmp_path)


@pytest.mark.slow
def test_embedded_lora_head_trains_on_the_twin_and_runs_in_the_longformer(tmp_path, embedded_pair):
    """The head trained on the MiniLM twin gives the same logits in the converted Longformer (<= 257 tokens)."""
    from longformer_core.model.registry import load_embedded
    from longformer_core.reading.encoding import build_input, model_kwargs, tokenize
    from longformer_core.training.finetune import EMBEDDED, finetune_qa

    data = _squad_file(tmp_path / "s.json")
    report = finetune_qa(
        EMBEDDED,
        data,
        tmp_path / "head",
        val_articles=1,
        settings=TrainSettings(max_steps=2, batch_size=2, learning_rate=1e-2),
    )
    assert report["lora"]["rank"] == 16 and report["max_length"] == 257
    size = (tmp_path / "head" / "adapter.safetensors").stat().st_size
    assert size < 10_000_000
    pair = load_embedded(qa_head=tmp_path / "head")
    lf, base = pair.longformer, pair.baseline
    assert lf.span_model is not None and base.span_model is not None
    doc = tokenize(lf.tokenizer, CONTEXT * 6)
    q = lf.tokenizer("What is the capital of Germany?", add_special_tokens=False)["input_ids"]
    win = build_input(
        lf.tokenizer, doc, (0, len(doc)), question_ids=q, global_first=True, global_question=True
    )
    assert win.input_ids.shape[1] <= 257
    with torch.inference_mode():
        a = lf.span_model(**model_kwargs(lf, win))
        b = base.span_model(**model_kwargs(base, win))
    assert torch.allclose(a.start_logits, b.start_logits, atol=1e-4)
    assert torch.allclose(a.end_logits, b.end_logits, atol=1e-4)
    # The head changed the reader, not the encoder the other tasks use.
    assert (
        lf.span_model.longformer.encoder.layer[0].attention.self.query.weight.data_ptr()
        != lf.model.encoder.layer[0].attention.self.query.weight.data_ptr()
    )
    assert not torch.equal(
        lf.span_model.longformer.encoder.layer[0].attention.self.query.weight,
        lf.model.encoder.layer[0].attention.self.query.weight,
    )


@pytest.mark.slow
def test_shipped_head_answers_a_validation_question(shared_data):
    """The head in assets/ extracts the right span of a SQuAD question from an article it never trained on."""
    from longformer_core.documents import text_document
    from longformer_core.model.registry import load_embedded
    from longformer_core.qa.answering import ask
    from longformer_core.reading.document_reading import DocumentReader

    card = json.loads((QA_HEAD_DIR / "adapter.json").read_text())
    examples = load_squad_examples(
        shared_data / "squad" / "squad-v1.1-dev.paragraphs.json", card["val_articles"]
    )
    ex = next(e for e in examples if e.question == VALIDATION_QUESTION)
    pair = load_embedded(qa_head=QA_HEAD_DIR)
    reader = DocumentReader(pair, text_document(ex.context, "paragraph"), "question")
    result = ask(reader, ex.question, views=["longformer"])["longformer"]
    assert result.method == "retrieve-then-read"
    assert result.best.text.strip(" .") in {a["text"] for a in ex.answers}
    assert 0 < result.best.score <= 1


def test_a_full_fine_tune_is_not_read_as_a_qa_head(tiny_checkpoint):
    """A folder of every weight (save_pretrained) is a model, not a head: the message says to give it to --model."""
    from longformer_core.model.qa_head import read_qa_head

    with pytest.raises(ValueError, match="give that to --model"):
        read_qa_head(tiny_checkpoint("roberta-qa"))
