"""WikiHop candidate selection: the format, candidate scoring, and the command on a tiny checkpoint."""

from __future__ import annotations

import io
import json
from contextlib import redirect_stdout
from pathlib import Path

import numpy as np
import pytest

from longformer_core.evaluation import wikihop

FILLER = "Longformer reads long documents with a sliding window and a few global tokens. "


def _record() -> dict:
    """The answer ("paris") is mentioned only past the first 512-token chunk; a distractor ("berlin") early."""
    return {
        "id": "WH_test_0",
        "query": "capital_of france",
        "candidates": ["berlin", "paris", "rome"],
        "answer": "paris",
        "supports": [
            "Berlin is the capital of Germany. " + FILLER * 40,
            FILLER * 10 + "The capital of France is Paris.",
        ],
    }


def test_query_becomes_a_question_and_mentions_are_whole_words(tmp_path: Path) -> None:
    assert (
        wikihop.question_of("country_of_citizenship frédéric chopin")
        == "frédéric chopin: country of citizenship?"
    )
    text = "Paris, not Parisian; paris again."
    assert [text[a:b] for a, b in wikihop.mentions(text, "paris")] == ["Paris", "paris"]
    path = tmp_path / "w.json"
    path.write_text(json.dumps([_record()]))
    [record] = wikihop.load_wikihop(path)
    assert record.question == "france: capital of?" and record.text.count("\n\n") == 1
    path.write_text(json.dumps([{"query": "x"}]))
    with pytest.raises(ValueError, match="lacks candidates, answer, supports"):
        wikihop.load_wikihop(path)


def test_a_candidate_scores_its_best_mention_inside_the_window() -> None:
    start = np.array([0.0, 5.0, 0.0, 1.0, 0.0])  # logits of tokens 10..14
    end = np.array([0.0, 0.0, 4.0, 1.0, 9.0])
    found = {"a": [(11, 12), (13, 13)], "b": [(13, 14)], "c": [(8, 9)], "d": [(14, 16)]}
    scores: dict[str, float] = {"b": 20.0}
    wikihop.score_candidates(start, end, (10, 15), found, scores)
    assert scores == {
        "a": 9.0,
        "b": 20.0,
    }  # a: 5 + 4 beats 1 + 1; b keeps a better earlier score; c, d outside


def test_evaluate_wikihop_command_reads_what_each_view_can_see(tiny_checkpoint, tmp_path: Path) -> None:
    from longformer_core.__main__ import main

    path = tmp_path / "wikihop.json"
    path.write_text(json.dumps([_record()]))
    out = io.StringIO()
    with redirect_stdout(out):
        code = main(
            ["evaluate", "wikihop", str(path), "--model", str(tiny_checkpoint("longformer-qa")), "--json"]
        )
    assert code == 0
    report = json.loads(out.getvalue())
    assert report["records"] == 1 and report["chance"] == pytest.approx(1 / 3, abs=1e-4)
    assert report["tokens_median"] > 512  # longer than one chunk
    # The answer lies past the first chunk: the truncated view cannot read it, the other two do.
    assert report["truncated"]["answer_read"] == 0.0 and report["truncated"]["accuracy"] == 0.0
    assert report["chunked"]["answer_read"] == report["longformer"]["answer_read"] == 1.0
    for view in ("truncated", "chunked", "longformer"):
        assert report[view]["accuracy"] in (0.0, 1.0) and report[view]["seconds_per_record"] > 0


@pytest.mark.slow
def test_shared_wikihop_files_load(shared_data: Path) -> None:
    for name in ("wikihop-dev.first28.json", "wikihop-train.first22.json"):
        records = wikihop.load_wikihop(shared_data / "wikihop" / name)
        assert len(records) in (28, 22)
        assert all(r.answer in r.candidates and r.text for r in records)
