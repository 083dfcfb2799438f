"""Global-attention strategies put global tokens where they say, with explanations and task defaults."""

from __future__ import annotations

import numpy as np
import pytest

from longformer_core.documents import Document, Page, text_document
from longformer_core.reading.encoding import build_input, tokenize
from longformer_core.reading.strategies import DEFAULT_FOR_TASK, STRATEGIES, plan_global

TEXT = (
    "First sentence here. Second one follows!\n\nA new paragraph starts. It has Paris in it.\n\nParis again."
)


@pytest.fixture(scope="module")
def tokenizer(embedded_pair):
    return embedded_pair.longformer.tokenizer


def _words_at(text, tokens, mask):
    return [text[slice(*tokens.offsets[i])] for i in np.flatnonzero(mask)]


def test_every_strategy_has_a_label_and_a_plain_explanation():
    assert {"none", "cls", "question", "sentences", "paragraphs", "pages", "every_k", "keywords"} <= set(
        STRATEGIES
    )
    for s in STRATEGIES.values():
        assert s.label and s.explanation.endswith(".") and len(s.explanation) < 200
    assert DEFAULT_FOR_TASK["qa"] == "question"  # the paper's QA setting
    assert DEFAULT_FOR_TASK["classify"] == "cls"  # the paper's classification setting


def test_sentence_and_paragraph_starts(tokenizer):
    doc = text_document(TEXT)
    toks = tokenize(tokenizer, TEXT)
    sentences = _words_at(TEXT, toks, plan_global("sentences", doc, toks).doc_mask)
    assert [w.lower() for w in sentences] == ["first", "second", "a", "it", "paris"]
    paragraphs = _words_at(TEXT, toks, plan_global("paragraphs", doc, toks).doc_mask)
    assert [w.lower() for w in paragraphs] == ["first", "a", "paris"]


def test_page_starts_follow_the_document_pages(tokenizer):
    text = "alpha beta gamma delta epsilon zeta"
    doc = Document(
        text=text,
        pages=(Page(0, 11, "i"), Page(11, 23, "1"), Page(23, len(text), "2")),
        name="t",
        kind="pdf",
        sha256="x",
    )
    toks = tokenize(tokenizer, text)
    words = _words_at(text, toks, plan_global("pages", doc, toks).doc_mask)
    assert words == ["alpha", "gamma", "epsilon"]


def test_keywords_match_whole_words_case_insensitively(tokenizer):
    doc = text_document(TEXT)
    toks = tokenize(tokenizer, TEXT)
    plan = plan_global("keywords", doc, toks, keywords=["paris"])
    assert [w.lower() for w in _words_at(TEXT, toks, plan.doc_mask)] == ["paris", "paris"]
    with pytest.raises(ValueError, match="at least one keyword"):
        plan_global("keywords", doc, toks, keywords=[" "])


def test_every_k_and_the_cap(tokenizer):
    text = "word " * 1000
    doc = text_document(text)
    toks = tokenize(tokenizer, text)
    plan = plan_global("every_k", doc, toks, every_k=100)
    assert list(np.flatnonzero(plan.doc_mask)) == list(range(0, 1000, 100))
    capped = plan_global("every_k", doc, toks, every_k=1, max_global=50)
    assert capped.n_doc_global == 50 and capped.dropped == 950


def test_none_cls_and_question_flags(tokenizer):
    doc = text_document(TEXT)
    toks = tokenize(tokenizer, TEXT)
    none = plan_global("none", doc, toks)
    assert not none.global_first and none.n_doc_global == 0
    cls = plan_global("cls", doc, toks)
    assert cls.global_first and not cls.global_question
    q = plan_global("question", doc, toks)
    win = build_input(
        tokenizer,
        toks,
        (0, len(toks)),
        question_ids=[2054, 2003],
        doc_global=q.doc_mask,
        global_first=q.global_first,
        global_question=q.global_question,
    )
    glob = win.global_attention_mask[0].tolist()
    assert glob[0] == 1 and glob[1:3] == [1, 1] and sum(glob) == 3


def test_unknown_strategy_is_refused(tokenizer):
    doc = text_document(TEXT)
    with pytest.raises(ValueError, match="Unknown strategy"):
        plan_global("dilated", doc, tokenize(tokenizer, TEXT))
