"""SQuAD article-level evaluation: official normalisation, buckets, and a small real run."""

from __future__ import annotations

import json

import pytest

from longformer_core.evaluation.squad import (
    bucket_of,
    exact_match,
    f1_score,
    normalize_answer,
    squad_articles,
)


def test_official_squad_normalisation():
    assert normalize_answer("The  Eiffel-Tower!") == "eiffeltower"
    assert exact_match("the Denver Broncos", "Denver Broncos") == 1.0
    assert f1_score("Denver Broncos team", "Denver Broncos") == pytest.approx(0.8)
    assert f1_score("nothing", "Denver") == 0.0


def test_buckets():
    assert [bucket_of(t) for t in (0, 511, 512, 2047, 2048, 4095, 4096, 10**6)] == [
        "0-512",
        "0-512",
        "512-2048",
        "512-2048",
        "2048-4096",
        "2048-4096",
        "4096+",
        "4096+",
    ]


def test_small_real_run_has_the_three_views(embedded_pair, shared_data):
    path = shared_data / "squad" / "squad-v1.1-dev.articles.json"
    report = squad_articles(embedded_pair, path, limit=4, max_articles=1)
    assert report["questions"] == 4
    json.dumps(report)  # machine-readable
    for view in ("truncated", "chunked", "longformer"):
        assert 0.0 <= report[view]["sentence_hit@1"] <= 1.0
        buckets = report[view]["by_answer_position"]
        assert sum(b["questions"] for b in buckets.values()) == 4
    # The truncated model reads 512 tokens: it cannot hit an answer sentence beyond them.
    for name, b in report["truncated"]["by_answer_position"].items():
        if name != "0-512" and b["questions"]:
            assert b["sentence_hit@1"] == 0.0


def _paragraph_file(path, titles):
    """A SQuAD paragraph file written by the test: one paragraph and three questions per article."""
    context = (
        "The capital of France is Paris. Berlin is the capital of Germany. Longformer reads long documents."
    )
    qas = [("What is the capital of France?", "Paris"), ("What is the capital of Germany?", "Berlin")]
    qas.append(("What reads long documents?", "Longformer"))
    data = [
        {
            "title": title,
            "paragraphs": [
                {
                    "context": context,
                    "qas": [
                        {
                            "id": f"{t}-{i}",
                            "question": q,
                            "answers": [{"text": a, "answer_start": context.index(a)}],
                        }
                        for i, (q, a) in enumerate(qas)
                    ],
                }
            ],
        }
        for t, title in enumerate(titles)
    ]
    path.write_text(json.dumps({"data": data}))
    return path


def test_squad_paragraphs_scores_a_checkpoint_as_finetune_did(tiny_checkpoint, tmp_path, capsys):
    """A LoRA run's checkpoint, read as a head, scores its held-out article exactly as the run's own evaluation
    did; `--titles-from` takes the articles from the checkpoint's card; an exported head gives the same answers
    up to its fp16 rounding."""
    from longformer_core.__main__ import main
    from longformer_core.model.qa_head import export_head, read_qa_head
    from longformer_core.training.finetune import TrainSettings, finetune_qa, latest_checkpoint

    data = _paragraph_file(tmp_path / "p.json", [f"T{i}" for i in range(6)])
    model = str(tiny_checkpoint("roberta-qa"))
    settings = TrainSettings(
        max_steps=4, batch_size=2, learning_rate=1e-2, checkpoint_dir=str(tmp_path / "ck")
    )
    trained = finetune_qa(model, data, tmp_path / "run", val_articles=1, settings=settings, lora_rank=4)
    checkpoint = latest_checkpoint(tmp_path / "ck")
    assert read_qa_head(checkpoint).card["val_articles"] == trained["val_articles"]

    def evaluate(*extra: str) -> dict:
        assert main(["evaluate", "squad-paragraphs", str(data), "--model", model, *extra, "--json"]) == 0
        return json.loads(capsys.readouterr().out)

    report = evaluate("--qa-head", str(checkpoint), "--titles-from", str(checkpoint))
    assert report["titles"] == trained["val_articles"] and report["questions"] == 3
    assert set(report["views"]) == {"chunked"}  # a RoBERTa folder is one view
    scores = report["views"]["chunked"]
    assert (scores["em"], scores["f1"], scores["questions"]) == (trained["em"], trained["f1"], 3)
    assert scores["seconds"] >= 0
    sample = evaluate("--qa-head", str(checkpoint), "--limit", "5")
    assert sample["questions"] == 5 and sample["titles"] is None
    head = export_head(tmp_path / "ck", tmp_path / "head")
    exported = evaluate("--qa-head", str(head), "--titles-from", str(head))
    assert exported["questions"] == 3 and exported["titles"] == trained["val_articles"]


def test_squad_paragraphs_explains_a_head_without_held_out_articles(tiny_checkpoint, tmp_path, capsys):
    from longformer_core.__main__ import main

    folder = tmp_path / "not-a-head"
    folder.mkdir()
    data = _paragraph_file(tmp_path / "p.json", ["A"])
    assert main(["evaluate", "squad-paragraphs", str(data), "--titles-from", str(folder)]) == 2
    assert "neither a QA head folder" in capsys.readouterr().err


@pytest.mark.slow
def test_squad_paragraphs_shipped_head_on_held_out_articles(shared_data, capsys):
    """The shipped head on 20 questions of its 6 held-out dev articles: both embedded views, the same answers."""
    from longformer_core.__main__ import main

    path = shared_data / "squad" / "squad-v1.1-dev.paragraphs.json"
    args = [
        "evaluate",
        "squad-paragraphs",
        str(path),
        "--titles-from",
        "assets/qa_head",
        "--limit",
        "20",
        "--json",
    ]
    assert main(args) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["questions"] == 20 and len(report["titles"]) == 6
    assert set(report["views"]) == {"chunked", "longformer"}
    assert report["views_agree"] >= 0.95  # the same function within 257-token windows
    for scores in report["views"].values():
        assert scores["questions"] == 20 and 20 <= scores["f1"] <= 100
