"""Collections: clustering, neighbours and recommendations (core), and the Collection page (AppTest)."""

from __future__ import annotations

import csv
import dataclasses
import io
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from longformer_core.corpus.collection import (
    cluster,
    cold_start,
    evaluate_collection,
    knn_predictions,
    neighbours,
    overlap_at_k,
    purity,
    recommend,
    top_terms,
)
from longformer_core.corpus.embed import Corpus, Embeddings
from longformer_core.model.registry import EMBEDDED
from ui.collection import CollectionState, embed_one_text
from ui.state import COLLECTION, Settings, Stored

APP = Path(__file__).resolve().parent.parent / "app.py"

ARTICLES = [
    ("Cup final", "The striker scored twice as the home team won the cup final in front of a full stadium."),
    ("Late winner", "A late goal from the midfielder gave the club victory in the league match on Saturday."),
    ("Tennis", "The champion won the tennis final in straight sets after a strong serve in the first set."),
    ("Soup", "Simmer the onions and carrots for twenty minutes, then add the stock and season the soup."),
    ("Bread", "Knead the dough, let it rise for an hour, then bake the bread in a hot oven until golden."),
    ("Cake", "Whisk the eggs and sugar, fold in the flour and bake the cake for forty minutes."),
    ("Rates", "The central bank raised interest rates again as inflation stayed above its target."),
    ("Shares", "Shares fell sharply after the company reported lower profits and cut its forecast."),
]


def _toy_vectors() -> tuple[np.ndarray, list[str]]:
    """Three well separated topics in 4-D, two near-duplicates of document 0."""
    rng = np.random.default_rng(0)
    centres = np.eye(4)[:3]
    labels = ["a"] * 4 + ["b"] * 4 + ["c"] * 4
    x = np.stack([centres["abc".index(lab)] + 0.1 * rng.standard_normal(4) for lab in labels])
    return x / np.linalg.norm(x, axis=1, keepdims=True), labels


def test_clusters_neighbours_and_recommendations_follow_the_topics():
    x, labels = _toy_vectors()
    cl = cluster(x, 3)
    assert purity(labels, cl.labels) == 1.0 and cl.silhouette > 0.5
    groups = np.arange(len(x))
    groups[1] = groups[0]  # document 1 duplicates document 0: never its neighbour
    hits = neighbours(x, 0, 3, groups)
    assert 0 not in [i for i, _ in hits] and 1 not in [i for i, _ in hits]
    assert all(labels[i] == "a" for i, _ in hits[:2])
    recs = recommend(x, [4, 5], 2, np.arange(len(x)))
    assert all(labels[i] == "b" and i not in (4, 5) for i, _ in recs)
    picks = cold_start(x, cl)
    assert sorted(labels[i] for i in picks) == ["a", "b", "c"]
    assert knn_predictions(x, labels, np.arange(len(x)), 3) == labels
    assert np.all(overlap_at_k(x, x, 3) == 1.0)
    with pytest.raises(ValueError, match="at least one"):
        recommend(x, [], 2)


def test_top_terms_name_each_cluster():
    texts = [t for _, t in ARTICLES[:6]]
    terms = top_terms(texts, np.array([0, 0, 0, 1, 1, 1]))
    assert "won" in terms[0] and "bake" in terms[1]


def test_evaluate_collection_reports_knn_and_purity_by_length():
    x, labels = _toy_vectors()
    tokens = np.array([100] * 6 + [900] * 6)
    emb = Embeddings(x, np.arange(12), [str(i) for i in range(12)], tokens, labels, [None] * 12)
    texts = [f"document {i}" for i in range(12)]
    report = evaluate_collection(
        {("truncated", "mean"): emb, ("longformer", "mean"): emb}, texts, labels, ks=(1, 3)
    )
    r = report["results"]["longformer"]["mean"]
    assert r["knn@1"] == {"all": 100.0, "<=512": 100.0, ">512": 100.0}
    assert r["kmeans"]["all"]["purity"] == 100.0 and r["kmeans"]["all"]["nmi"] == 100.0
    assert report["length"] == {"<=512": 6, ">512": 6}
    assert report["overlap"]["mean"]["mean_overlap@10"]["all"] == 1.0


# --------------------------------------------------------------------------------------------------
# The page, with the real embedded model on eight short articles


def _seed_csv() -> bytes:
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["Title", "Content"])
    writer.writerows(ARTICLES)
    writer.writerow(["Empty", ""])
    return buf.getvalue().encode()


def test_collection_page_clusters_and_recommends(tmp_path, monkeypatch):
    monkeypatch.setenv("LONGDOC_CORPUS_CACHE", str(tmp_path))
    at = AppTest.from_file(str(APP), default_timeout=300).run()
    at.switch_page("pages/collection.py").run()
    assert not at.exception
    assert at.info, "the page should say what to upload"
    at.file_uploader(key="collection_csv").set_value(("seed.csv", _seed_csv(), "text/csv")).run()
    assert at.selectbox(key="collection_text_column").value == "Content"
    assert at.selectbox(key="collection_title_column").value == "Title"
    at.button(key="collection_embed").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    assert any("row 10" in w.value and "empty text" in w.value for w in at.warning), (
        "the empty row is reported"
    )
    assert "8 documents" in at.success[0].value
    at.slider(key="collection_k").set_value(3).run()
    labels = [m.label for m in at.metric]
    assert any("silhouette" in label for label in labels)
    groups = [e.label for e in at.expander if e.label.startswith("Group ")]
    assert len(groups) == 3
    assert len(at.dataframe) >= 3  # neighbours for both models + a new reader's suggestions
    neighbour_docs = at.dataframe[0].value["document"].tolist()
    assert "Cup final" not in neighbour_docs and len(neighbour_docs) == 5
    at.multiselect(key="collection_liked").set_value([3]).run()  # the reader liked the soup
    assert not at.exception
    at.text_area(key="collection_pasted").set_value(
        "The goalkeeper saved a penalty and the team won the match in extra time."
    )
    at.button(key="collection_new_button").click().run()  # in a form: the text goes with the click
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert any("It belongs with" in m.value for m in at.markdown)

    # After a model switch the collection read by the old model must not be used: a pasted article would
    # be embedded by the new model and compared with the old model's vectors. Simulate the switch by
    # marking the kept collection as read by another checkpoint (loading a second real model is slow).
    kept = at.session_state[COLLECTION]
    old = dataclasses.replace(kept.provenance, model_key="old-checkpoint|")
    at.session_state[COLLECTION] = Stored(old, dataclasses.replace(kept.value, model_key="old-checkpoint|"))
    at.text_area(key="collection_pasted").set_value("The bank cut interest rates.")
    at.button(key="collection_new_button").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert any("model or the global-attention strategy changed" in i.value for i in at.info)
    assert not any("It belongs with" in m.value for m in at.markdown)
    assert COLLECTION not in at.session_state


def test_a_collection_read_by_another_model_is_refused(embedded_pair):
    """embed_one_text refuses to compare a new article with vectors of another model (the Collection bug)."""
    corpus = Corpus(texts=[text for _, text in ARTICLES], ids=[title for title, _ in ARTICLES])
    state = CollectionState(corpus, {}, model_key="old-checkpoint|", strategy="cls")
    settings = Settings(embedded_pair, EMBEDDED, "auto")
    with pytest.raises(ValueError, match="model changed"):
        embed_one_text("The bank cut interest rates.", state, settings, "longformer", "mean")
