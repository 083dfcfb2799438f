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
