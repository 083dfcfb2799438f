"""Classification and similarity with the real embedded model, three views each."""

from __future__ import annotations

import numpy as np
import pytest

from longformer_core.classify import Label, classify, parse_labels
from longformer_core.documents import text_document
from longformer_core.reading.document_reading import DocumentReader
from longformer_core.similarity import compare, document_embedding, passage_matrix, passages

FOOTBALL = (
    "The striker scored twice in the second half and the home team won the league match 3-1. "
    "The coach praised the defenders after the game. "
) * 6
COOKING = (
    "Whisk the eggs with sugar, fold in the flour and bake the cake for forty minutes at 180 degrees. "
    "Let it cool before adding the cream. "
) * 6


def reader(pair, text, strategy="cls"):
    return DocumentReader(pair, text_document(text), strategy=strategy)


def test_parse_labels_messages():
    labels = parse_labels("sport: games and matches\n\ncooking")
    assert labels == [Label("sport", "games and matches"), Label("cooking")]
    with pytest.raises(ValueError, match="at least two labels"):
        parse_labels("sport")
    with pytest.raises(ValueError, match="different"):
        parse_labels("sport\nSport")


def test_zero_shot_picks_the_right_label_in_every_view(embedded_pair):
    labels = parse_labels("sport: a football match\ncooking: a recipe for baking")
    for text, want in ((FOOTBALL, "sport"), (COOKING, "cooking")):
        results = classify(reader(embedded_pair, text), labels)
        for r in results.values():
            assert r.prediction == want, (r.view, r.scores)
            assert sum(r.scores.values()) == pytest.approx(1.0, abs=1e-5)


def test_long_document_truncated_view_sees_only_the_start(embedded_pair):
    # 600+ tokens of cooking, then football: only the long views read the football part.
    r = reader(embedded_pair, COOKING * 3 + FOOTBALL * 3)
    results = classify(r, parse_labels("sport\ncooking"))
    assert results["truncated"].seen_tokens[1] < len(r.long_tokens)
    assert results["longformer"].seen_tokens[1] == len(r.long_tokens)
    assert results["chunked"].evidence is not None


@pytest.mark.parametrize("pooling", ["sum-last4", "mean", "cls"])
def test_similarity_ranks_same_topic_higher(embedded_pair, pooling):
    football2 = FOOTBALL.replace("striker", "winger").replace("3-1", "2-0")
    a, b, c = (reader(embedded_pair, t) for t in (FOOTBALL, football2, COOKING))
    same = compare(a, b, pooling)
    different = compare(a, c, pooling)
    for view in same:
        assert same[view].cosine > different[view].cosine, (view, pooling)
    v = document_embedding(a, "longformer", pooling)
    assert v.shape == (384,) and np.linalg.norm(v) == pytest.approx(1.0, abs=1e-5)


def test_passage_matrix_shape_and_best_pair(embedded_pair):
    a = reader(embedded_pair, (FOOTBALL + "\n\n" + COOKING + "\n\n") * 2)
    b = reader(embedded_pair, COOKING)
    m = passage_matrix(a, b, "longformer", "mean")
    assert m.matrix.shape == (len(passages(a)), len(passages(b)))
    i, _, cos = m.best_pairs(1)[0]
    assert "cake" in m.passages_a[i].text and cos > 0.5
    truncated = passage_matrix(a, b, "truncated", "mean")
    assert np.isnan(truncated.matrix).any() or len(a.long_tokens) <= 510
