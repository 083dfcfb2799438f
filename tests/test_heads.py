"""Trained heads: fitting folds the scaling in, files round-trip, the shipped heads classify real text, and
the evaluate command cross-validates and scores heads on the shared datasets."""

from __future__ import annotations

import json

import numpy as np
import pytest

from longformer_core.__main__ import main
from longformer_core.classify import classify_with_trained_heads
from longformer_core.documents import text_document
from longformer_core.evaluation.corpus import command_line, duplicate_groups, metrics
from longformer_core.heads import HEADS_DIR, Head, bundled_heads, fit_linear, load_head
from longformer_core.reading.document_reading import DocumentReader

SPORT = (
    "Arsenal beat Chelsea 2-1 at the Emirates on Saturday. Thierry Henry scored the winning goal in the 88th "
    "minute after the striker had hit the post twice. Manager Arsene Wenger said his players showed great "
    "character and the win keeps them three points behind the Premiership leaders. Chelsea's goalkeeper Petr "
    "Cech made several saves, and the defeat ends their unbeaten run of eleven league matches."
)


def test_fit_linear_matches_sklearn_and_round_trips(tmp_path):
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(0)
    x = rng.standard_normal((60, 5)) * [1, 10, 0.1, 1, 1] + [0, 5, 0, 0, 0]
    y = ["a" if v > 0 else "b" for v in x[:, 0] + 0.1 * x[:, 1]]
    coef, bias, classes, c = fit_linear(x, y)
    scaler = StandardScaler().fit(x)
    reference = LogisticRegression(C=c, max_iter=3000).fit(scaler.transform(x), y)
    head = Head(
        "toy", "Toy", "longformer", "mean", "cls", "abc", classes, {"a": "A"}, coef, bias, {"rows": 60}
    )
    np.testing.assert_allclose(head.probabilities(x), reference.predict_proba(scaler.transform(x)), atol=1e-4)
    path = head.save(tmp_path / "toy.npz")
    loaded = load_head(path)
    assert loaded.classes == classes and loaded.meta == {"rows": 60} and loaded.display == {"a": "A"}
    assert set(loaded.scores(x[0])) == {"A", "b"}
    with pytest.raises(ValueError, match="not a head file"):
        load_head(tmp_path / "missing.npz")


def test_recorded_command_is_repository_relative(tmp_path):
    """Paths next to or inside the repository become relative to its root; --cache (machine-local) goes."""
    repo = tmp_path / "checkout"
    (repo / "assets" / "heads").mkdir(parents=True)
    data = tmp_path / "shared" / "data" / "bbc" / "bbc news.csv"
    data.parent.mkdir(parents=True)
    data.write_text("x")
    argv = [
        "evaluate",
        "bbc",
        str(data),
        "--cache",
        "/tmp/elsewhere/bbc.parquet",
        "--C",
        "0.1",
        "--write-heads=assets/heads",
        "--json",
        "--model",
        "/opt/models/mine",
    ]
    command = command_line(argv, cwd=repo, repo_root=repo)
    assert command == (
        "python -m longformer_core evaluate bbc '../shared/data/bbc/bbc news.csv' --C 0.1 "
        "--write-heads=assets/heads --json --model /opt/models/mine"
    )
    # Given relative to another directory, a path is still written relative to the repository root.
    nested = command_line(
        ["evaluate", "bbc", "../../shared/data/bbc/bbc news.csv"], cwd=repo / "assets", repo_root=repo
    )
    assert nested == "python -m longformer_core evaluate bbc '../shared/data/bbc/bbc news.csv'"


def test_metrics_and_duplicate_groups():
    assert duplicate_groups(["A  b", "a b", "c"]).tolist() == [0, 0, 1]
    m = metrics(["true", "false", "true", "false"], ["true", "true", "true", "false"], positive="true")
    assert m == {"n": 4, "accuracy": 75.0, "macro_f1": 73.3, "positive_f1": 80.0}


def test_shipped_heads_are_small_and_say_how_to_rebuild_them():
    heads = bundled_heads()
    assert set(heads) == {"hyperpartisan", "bbc"}
    for task, by_view in heads.items():
        assert set(by_view) == {"truncated", "chunked", "longformer"}
        for view, head in by_view.items():
            assert (HEADS_DIR / f"{task}-{view}.npz").stat().st_size < 16_000
            assert head.meta["rebuild"].startswith("python -m longformer_core evaluate")
            # Runnable from any checkout's root: no absolute path of the machine that built it.
            assert " /" not in head.meta["rebuild"] and "--cache" not in head.meta["rebuild"]
            assert f" ../shared/data/{task}/" in head.meta["rebuild"]
            assert head.meta["cv_scores"]["all"]["n"] == head.meta["rows"]


@pytest.mark.slow
def test_bbc_head_calls_a_football_report_sport(embedded_pair):
    reader = DocumentReader(embedded_pair, text_document(SPORT, "match report"), strategy="cls")
    results = classify_with_trained_heads(reader, bundled_heads()["bbc"])
    assert set(results) == {"truncated", "chunked", "longformer"}
    for view, result in results.items():
        assert result.prediction == "sport", (view, result.scores)
        assert result.method == "trained head" and result.score > 0.8


@pytest.mark.slow
def test_cli_cross_validates_and_scores_a_shipped_head(shared_data, tmp_path, capsys):
    bbc = shared_data / "bbc" / "bbc-news.csv"
    cache = tmp_path / "bbc.parquet"
    args = [
        "evaluate",
        "bbc",
        str(bbc),
        "--limit",
        "12",
        "--folds",
        "2",
        "--views",
        "truncated",
        "longformer",
        "--poolings",
        "mean",
        "--cache",
        str(cache),
        "--json",
    ]
    assert main(args) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["rows"] == 12 and report["folds"] == 2
    for view in ("truncated", "longformer"):
        scores = report["results"][view]["mean"]
        assert scores["all"]["n"] == 12 and 0 <= scores["all"]["macro_f1"] <= 100
        assert scores["<=512"]["n"] + scores[">512"]["n"] == 12
    assert set(report["paired_long"]["mean"]) == {
        "both",
        "only_longformer",
        "only_truncated",
        "neither",
        "mcnemar_p",
    }

    head = HEADS_DIR / "bbc-longformer.npz"
    pooling = load_head(head).pooling
    assert (
        main(
            [
                "evaluate",
                "bbc",
                str(bbc),
                "--limit",
                "12",
                "--cache",
                str(cache),
                "--model-head",
                str(head),
                "--json",
            ]
        )
        == 0
    )
    scored = json.loads(capsys.readouterr().out)["heads"][str(head)]
    assert scored["pooling"] == pooling and scored["all"]["n"] == 12
    assert scored["all"]["accuracy"] >= 75  # rows it was trained on: a sanity check, not a score

    assert main(["evaluate", "hyperpartisan", str(bbc), "--limit", "4", "--cache", str(cache)]) == 2
    err = capsys.readouterr().err
    assert "Column 'id' not found" in err and "'category'" in err  # a BBC file is not a Hyperpartisan file


@pytest.mark.slow
def test_classify_page_offers_the_trained_heads():
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(HEADS_DIR.parent.parent / "app.py"), default_timeout=300).run()
    at.file_uploader(key="document_upload").set_value(("match.txt", SPORT.encode(), "text/plain")).run()
    at.switch_page("pages/classify.py").run()
    assert set(at.radio(key="classify_by").options) >= {
        "Your labels (typed below)",
        "Hyperpartisan news? (trained classifier)",
        "News topic (BBC) (trained classifier)",
    }
    at.radio(key="classify_by").set_value("bbc").run()
    assert at.text_area(key="labels").disabled
    at.button(key="classify_button").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert [m.value for m in at.metric] == ["sport"] * 3
