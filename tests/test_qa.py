"""Question answering: span decoding, sentence selection and retrieve-then-read with the real embedded
model, deep answers."""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import pytest
import torch

from longformer_core.documents import load_path, text_document
from longformer_core.model.qa_head import AnswerTypeHead
from longformer_core.qa.answering import (
    LONG_WINDOW_TOKENS,
    answering_mask,
    ask,
    check_question,
    long_window_ranges,
    prepare,
    rank_passages,
)
from longformer_core.qa.evidence import explain
from longformer_core.qa.one_pass import window_logits
from longformer_core.qa.spans import best_spans, span_probabilities
from longformer_core.reading.document_reading import DocumentReader

FILLER = (
    "The committee met again to review the quarterly schedule and the budget of the regional office. "
    "Members discussed staffing, travel plans and the maintenance of the old building on the hill. "
)
DEEP_FACT = "The lighthouse keeper Marguerite Olsen painted the tower bright green in 1911."


def test_best_spans_respects_context_order_and_length():
    start = np.array([5.0, 0, 9, 0, 0, 1, 0])
    end = np.array([5.0, 0, 0, 0, 8, 0, 7])
    spans, null = best_spans(start, end, context=(1, 7), n_best=3, max_answer_tokens=3)
    assert null == 10.0  # position 0 is [CLS]: the SQuAD 2.0 no-answer score
    assert (spans[0].start, spans[0].end, spans[0].score) == (2, 4, 17.0)
    assert all(s.start <= s.end < s.start + 3 and s.start >= 1 for s in spans)
    assert [s.score for s in spans] == sorted((s.score for s in spans), reverse=True)
    probs = span_probabilities([s.score for s in spans], null)
    assert probs.sum() == pytest.approx(1.0) and probs[0] > probs[-1]


def test_check_question_messages():
    with pytest.raises(ValueError, match="Type a question"):
        check_question("   ")
    with pytest.raises(ValueError, match="characters long"):
        check_question("why " * 2500)
    assert check_question("  What   is it? ") == "What is it?"


DEEP_TEXT = FILLER * 30 + DEEP_FACT + " " + FILLER * 5


@pytest.fixture(scope="module")
def deep_reader(embedded_sentence_pair):
    return DocumentReader(embedded_sentence_pair, text_document(DEEP_TEXT, "deep.txt"), strategy="question")


def test_the_shipped_head_reads_the_retrieved_region(embedded_pair):
    """Retrieve-then-read: the long views extract a span from the deep sentence; the truncated one cannot."""
    reader = DocumentReader(embedded_pair, text_document(DEEP_TEXT, "deep.txt"), strategy="question")
    results = ask(reader, "Who painted the tower?")
    a, b = DEEP_TEXT.index(DEEP_FACT), DEEP_TEXT.index(DEEP_FACT) + len(DEEP_FACT)
    for view in ("chunked", "longformer"):
        r = results[view]
        assert r.method == "retrieve-then-read" and r.notes
        assert a <= r.best.char_span[0] < r.best.char_span[1] <= b  # a span inside the deep sentence
        assert "Marguerite Olsen" in r.best.text and len(r.best.text) < len(DEEP_FACT)
        assert r.seen_tokens == (0, len(reader.tokens_for(view)))  # its pass read the whole document
    truncated = results["truncated"]
    assert truncated.method == "span" and truncated.best.char_span[1] < a


@pytest.fixture(scope="module")
def long_reader_pair(embedded_pair):
    """The embedded pair with its Longformer reading one long window per question: the shipped long reader when
    there is one, else the QA head in that role (the same code path; yes/no needs a classifier, see below)."""
    if embedded_pair.longformer.long_reader:
        return embedded_pair
    longformer = dataclasses.replace(embedded_pair.longformer, long_reader=True)
    return dataclasses.replace(embedded_pair, longformer=longformer)


LONG_TEXT = FILLER * 150 + DEEP_FACT + " " + FILLER * 20  # ~7,000 tokens: more than one long pass holds


def test_long_window_reads_the_best_passages_in_one_pass(long_reader_pair):
    reader = DocumentReader(long_reader_pair, text_document(LONG_TEXT, "long.txt"), strategy="question")
    question = "Who painted the tower?"
    q_ids = reader.model_for("longformer").tokenizer(question, add_special_tokens=False)["input_ids"]
    capacity = LONG_WINDOW_TOKENS - len(q_ids) - 4
    prepare(reader, "longformer")
    ranges = long_window_ranges(reader, rank_passages(reader, question, "longformer"), "longformer", capacity)
    assert sum(e - s for s, e in ranges) <= capacity < len(reader.tokens_for("longformer"))
    assert all(e1 < s2 for (_, e1), (s2, _) in itertools.pairwise(ranges))  # sorted, apart
    fact = LONG_TEXT.index(DEEP_FACT)
    fact_token = reader.tokens_for("longformer").token_at(fact)
    assert any(s <= fact_token < e for s, e in ranges)
    result = ask(reader, question, views=["longformer"])["longformer"]
    assert result.method == "long-window" and "one pass" in result.notes[0]
    assert fact <= result.best.char_span[0] < result.best.char_span[1] <= fact + len(DEEP_FACT)
    assert "Marguerite Olsen" in result.best.text
    assert result.read_ranges == ranges
    explained = explain(reader, question, {"longformer": result}, views=["longformer"])["longformer"]
    assert explained.window_ranges == ranges  # the evidence view explains what the reader read


def test_a_long_reader_trained_with_paragraph_starts_global_reads_them_global(long_reader_pair, monkeypatch):
    from longformer_core.qa import answering

    longformer = dataclasses.replace(long_reader_pair.longformer, reader_globals="paragraphs")
    pair = dataclasses.replace(long_reader_pair, longformer=longformer)
    text = "\n\n".join([FILLER * 3, DEEP_FACT + " " + FILLER, FILLER * 2])
    reader = DocumentReader(pair, text_document(text, "paras.txt"), strategy="question")
    seen = []

    def spy(*args, **kwargs):
        seen.append(kwargs["doc_global"])
        return window_logits(*args, **kwargs)

    monkeypatch.setattr(answering, "window_logits", spy)
    result = ask(reader, "Who painted the tower?", views=["longformer"])["longformer"]
    tokens = reader.tokens_for("longformer")
    starts = sorted(tokens.token_at(a) for a, _ in reader.paragraphs)
    assert len(starts) == 3 and np.flatnonzero(seen[0]).tolist() == starts  # the whole document in one pass
    assert "paragraph starts (as the reader was trained) global" in result.notes[0]
    assert np.array_equal(answering_mask(reader, longformer), seen[0])  # the evidence view uses the same mask


def test_long_window_reads_a_short_document_whole_and_can_say_yes(long_reader_pair):
    reader = DocumentReader(long_reader_pair, text_document(DEEP_TEXT, "deep.txt"), strategy="question")
    result = ask(reader, "Who painted the tower?", views=["longformer"])["longformer"]
    assert result.notes[0].startswith("Read the whole document")
    yes = AnswerTypeHead(reader.model_for("longformer").encoder.config.hidden_size)
    with torch.no_grad():
        yes.classifier.weight.zero_()
        yes.classifier.bias.copy_(torch.tensor([0.0, 5.0, 0.0]))  # always "yes"
    longformer = dataclasses.replace(long_reader_pair.longformer, answer_type=yes)
    said_yes = dataclasses.replace(long_reader_pair, longformer=longformer)
    reader = DocumentReader(said_yes, text_document(DEEP_TEXT, "deep.txt"), strategy="question")
    result = ask(reader, "Was the tower painted green?", views=["longformer"])["longformer"]
    best = result.best
    assert best.text == "yes" and best.score == pytest.approx(np.exp(5) / (np.exp(5) + 2), abs=1e-3)
    assert DEEP_TEXT[slice(*best.char_span)] and "yes/no" in result.notes[-1]  # its evidence is highlighted


def test_longformer_finds_an_answer_the_truncated_model_never_saw(deep_reader):
    results = ask(deep_reader, "What color did the lighthouse keeper paint the tower?")
    answer_char = deep_reader.document.text.index(DEEP_FACT)
    assert deep_reader.long_tokens.token_at(answer_char) > 512
    assert results["longformer"].best.text == DEEP_FACT
    assert results["chunked"].best.text == DEEP_FACT
    truncated = results["truncated"]
    assert truncated.seen_chars[1] < answer_char  # it stopped reading before the answer
    assert truncated.best.text != DEEP_FACT
    for r in results.values():
        assert r.method == "sentence" and 0 < r.best.score <= 1
        a, b = r.best.context
        assert a <= r.best.char_span[0] and r.best.char_span[1] <= b


def test_a_second_question_reuses_the_encoding(deep_reader):
    ask(deep_reader, "Who painted the tower?")
    again = ask(deep_reader, "When was the tower painted?")
    assert all(r.encode_seconds == 0.0 for r in again.values())
    assert again["longformer"].best.text == DEEP_FACT


@pytest.mark.slow
def test_nist_deep_answer_is_on_the_right_page(embedded_sentence_pair, nist_pdf):
    """A question answered on page 12 of the 79-page NIST guide, far beyond token 512."""
    reader = DocumentReader(embedded_sentence_pair, load_path(nist_pdf), strategy="question")
    results = ask(reader, "When should a lessons learned meeting be held?")
    best = results["longformer"].best
    assert best.page == 12
    assert "lessons learned" in best.text.lower()
    truncated = results["truncated"]
    assert truncated.seen_tokens[1] <= 512  # it only read the first pages
    assert truncated.best.page <= reader.document.page_of(truncated.seen_chars[1]) < 12


@pytest.mark.slow
def test_nist_span_answer_with_the_shipped_head(embedded_pair, nist_pdf):
    """The shipped head extracts the answer itself; the guide says it on page 12 and again on page 53."""
    reader = DocumentReader(embedded_pair, load_path(nist_pdf), strategy="question")
    results = ask(reader, "When should a lessons learned meeting be held?")
    best = results["longformer"].best
    # "... after a major incident, and optionally periodically after lesser incidents as time and resources permit"
    assert "incident" in best.text.lower() and len(best.text) < 80 and best.page in (12, 53)
    assert "lessons learned" in reader.document.text[best.passage[0] : best.passage[1]].lower()
    assert (
        results["truncated"].seen_tokens[1] <= 512 and "major incident" not in results["truncated"].best.text
    )
