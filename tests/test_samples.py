"""The bundled demo samples: readable, small, public domain, and their suggested answers lie beyond token 512."""

from __future__ import annotations

import csv
import re

import pytest

from longformer_core.documents.samples import SAMPLES_DIR, load_samples, sample_collection_path
from longformer_core.reading.encoding import tokenize


@pytest.fixture(scope="module")
def samples():
    return load_samples()


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", text).lower()


def test_samples_are_small_and_documented(samples):
    assert {"book_of_esther_kjv", "devils_dictionary_a_to_c", "field_guide_to_longformer"} <= set(samples)
    total = sum(p.stat().st_size for p in SAMPLES_DIR.iterdir())
    assert total < 3_000_000  # keep the repository small
    readme = (SAMPLES_DIR / "README.md").read_text(encoding="utf-8")
    for name in samples:
        assert name in readme
    assert readme.count("ublic domain") >= 3
    assert (
        samples["book_of_esther_kjv"].document.kind == "pdf"
        and samples["book_of_esther_kjv"].document.n_pages >= 8
    )


def test_suggested_answers_lie_beyond_token_512(samples, embedded_pair):
    tokenizer = embedded_pair.longformer.tokenizer
    asked = 0
    for sample in samples.values():
        if not sample.questions:
            continue
        doc = sample.document
        tokens = tokenize(tokenizer, doc.text)
        assert len(tokens) > 4000, sample.name
        flat = _norm(doc.text)
        for q in sample.questions:
            at = flat.find(_norm(q.answer))
            assert at >= 0, (sample.name, q.answer)
            # map the position in the whitespace-collapsed text back approximately: it can only grow
            assert tokens.token_at(at) > 512, (sample.name, q.question)
            asked += 1
    assert asked >= 6


def test_unknown_sample_lists_the_real_ones():
    from longformer_core.documents.samples import load_sample

    with pytest.raises(ValueError, match="book_of_esther_kjv"):
        load_sample("../../etc/passwd")


def test_sample_collection_csv():
    with sample_collection_path().open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) >= 12 and {"title", "section", "text"} <= set(rows[0])
    assert len({r["section"] for r in rows}) >= 3 and all(len(r["text"]) > 1000 for r in rows)
