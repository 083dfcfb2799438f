"""Question answering over a whole document, three ways: truncated, chunked and Longformer.

Three methods, chosen by the model:
- **span** (the checkpoint has a QA head, e.g. a fine-tuned hub Longformer): `[CLS] question [SEP] window
  [SEP]` for every window the view reads, question tokens global for the Longformer (the paper's
  setting), spans decoded from the start/end logits (n-best, max answer length, SQuAD 2.0 no-answer).
- **retrieve-then-read** (the embedded default with its shipped QA head, `LoadedModel.span_model`): the
  view's passages are ranked by hybrid retrieval (below); the reader then extracts spans from regions of
  `REGION_TOKENS` tokens around the `READ_REGIONS` best passages, and each span's score adds
  `RETRIEVAL_WEIGHT` x its passage's fused retrieval score, so the reader and retrieval agree on the answer.
  The truncated view reads its first 512 tokens with the same head.
- **sentence** (no QA head at all): pick the passage that answers the question.

Passages (`passages.py`: sentences, or layout units of a PDF such as glossary entries and list items) are
ranked by `retrieval.fuse` over three signals: BM25 words in common, the cosine between the question and the
passage embedded on its own (what MiniLM was trained for), and the cosine with the mean of the passage's token
states from the view's pass over the document (the context the view could read). The pass, the passage
embeddings and the lexical index do not depend on the question, so they are cached and a second question costs
only the question's embedding and the reader. Weights were chosen on the shared data (docs/results.md).
"""

from __future__ import annotations

import re
import threading
import time
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from longformer_core.model.registry import LoadedModel
from longformer_core.qa.intent import question_intent
from longformer_core.qa.shaping import answer_layout, shape_span
from longformer_core.qa.spans import best_spans, span_probabilities
from longformer_core.reading.document_reading import DocumentReader
from longformer_core.reading.encoding import VIEWS, Progress, embed_texts, run_windows, scaled, tokenizer_call
from longformer_core.reading.results import Located, ModelRun, model_run, windows_run
from longformer_core.reading.retrieval import SIGNAL_WORDS, Ranking, fuse

SENTENCE_TEMPERATURE = 0.5  # softmax temperature turning fused passage scores (z units) into confidences
RETRIEVAL_WEIGHT = 3.0  # span score += this x fused retrieval score of its passage (docs/results.md)
PRELIMINARY_NOTE = (
    "A first answer from the passages sharing the most words with the question; the full answer "
    "replaces it when this model has read the whole document."
)
FOCUS_PASSAGES = 8  # the best-ranked passages whose own best spans are always candidates
MAX_QUESTION_CHARS = 1000
# The reader reads READ_REGIONS regions of REGION_TOKENS tokens per question (retrieve-then-read): 6 of 300
# read better than 4 of 384 (and 6 of 225 or 260) on the shared SQuAD train articles and the NIST guide as a
# whole (docs/results.md). The head was trained on 257-token windows; the Longformer sees +-256 tokens.
READ_REGIONS = 6
REGION_TOKENS = 300


@dataclass
class Answer(Located):
    score: float = 0.0  # confidence in [0, 1]
    context: tuple[int, int] = (0, 0)  # char span of the surrounding text to show (sentence / window text)
    passage: tuple[int, int] = (0, 0)  # char span of the passage the answer came from
    signal: str = ""  # the retrieval signal that found the passage most: a key of retrieval.SIGNAL_WORDS
    items: list[tuple[int, int]] = field(default_factory=list)  # a list answer: each item's char span
    cell: tuple[int, int, int] | None = None  # a table cell answer: (index in Document.tables, row, column)

    @property
    def found_by(self) -> str:
        """Which signal found the passage, in words for people who do not program ("" when none)."""
        return SIGNAL_WORDS.get(self.signal, "")


@dataclass
class QAResult(ModelRun):
    question: str = ""
    method: str = "sentence"  # "sentence" | "span" | "retrieve-then-read"
    answers: list[Answer] = field(default_factory=list)  # best first
    no_answer_probability: float | None = None  # span method with a SQuAD 2.0 head

    @property
    def best(self) -> Answer | None:
        return self.answers[0] if self.answers else None


def check_question(question: str) -> str:
    """Strip the question and refuse empty or absurdly long ones with a message for the user."""
    q = " ".join(question.split())
    if not q:
        raise ValueError("Type a question first.")
    if len(q) > MAX_QUESTION_CHARS:
        raise ValueError(
            f"The question is {len(q):,} characters long; keep it under {MAX_QUESTION_CHARS:,} "
            "(one or two sentences work best)."
        )
    return q


def ask(
    reader: DocumentReader,
    question: str,
    views: Sequence[str] = VIEWS,
    n_best: int = 3,
    progress: Progress | None = None,
) -> dict[str, QAResult]:
    """Answer one question with each view.

    Args:
        reader: the document, models and strategy (its encodings are reused across questions).
        question: the user's question.
        views: which of "truncated", "chunked", "longformer" to run.
        n_best: answers to keep per view.
        progress: (fraction, message) callback for long work.
    Returns:
        {view: QAResult}.
    """
    question = check_question(question)
    results = {}
    for i, view in enumerate(views):
        step = scaled(progress, i / len(views), (i + 1) / len(views))
        model = reader.model_for(view)
        if model.head == "qa":
            results[view] = answer_spans(reader, question, view, n_best, step)
        elif model.span_model is not None:
            results[view] = retrieve_then_read(reader, question, view, n_best, step)
        else:
            results[view] = answer_sentences(reader, question, view, n_best, step)
    return results


# --------------------------------------------------------------------------------------------------
# Passage ranking (hybrid retrieval) and passage answers (no QA head)


def prepare(reader: DocumentReader, view: str, progress: Progress | None = None) -> float:
    """Compute what ranking needs for a view (its pass, passage embeddings and states, the lexical index);
    returns the seconds spent (0 when all of it was cached)."""
    cached = reader.has_pass(view) and reader.passage_vectors_ready()
    t0 = time.perf_counter()
    reader.encoded(view, scaled(progress, 0.0, 0.8))
    reader.embed_passages(scaled(progress, 0.8, 1.0))
    reader.passage_states(view)
    _ = reader.lexical_index
    return 0.0 if cached else time.perf_counter() - t0


# The last questions each baseline embedded (keyed weakly by its network): every view that ranks passages
# ranks them with the same question vector, so it is computed once per question.
_QUESTION_VECTORS: weakref.WeakKeyDictionary[object, dict[str, np.ndarray]] = weakref.WeakKeyDictionary()
_QUESTIONS_LOCK = threading.Lock()
_QUESTIONS_KEPT = 64  # per model


def question_vector(model: LoadedModel, question: str) -> np.ndarray:
    """The question embedded by `model` (the baseline): (hidden,), computed once for all the views."""
    with _QUESTIONS_LOCK:
        vector = _QUESTION_VECTORS.get(model.model, {}).get(question)
    if vector is None:
        vector = embed_texts(model, [question])[0]
        with _QUESTIONS_LOCK:
            kept = _QUESTION_VECTORS.setdefault(model.model, {})
            kept[question] = vector
            while len(kept) > _QUESTIONS_KEPT:
                del kept[next(iter(kept))]  # oldest first
    return vector


def passage_signals(
    reader: DocumentReader, question: str, view: str
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Raw retrieval signals over the view's passages and which passages it saw: ({signal: (n,)}, seen (n,))."""
    q = question_vector(reader.pair.baseline, question)  # (hidden,)
    contextual, seen = reader.passage_states(view)
    signals = {"lexical": reader.lexical_index.scores(question), "dense": reader.passage_vectors @ q}
    # A converted Longformer shares its source model's space; a different width cannot be compared.
    if contextual.shape[1] == q.shape[0]:
        signals["context"] = contextual @ q
    return signals, seen


def rank_passages(
    reader: DocumentReader, question: str, view: str, weights: dict[str, float] | None = None
) -> Ranking:
    """The view's passages ranked for the question by fused lexical + dense + contextual scores."""
    signals, seen = passage_signals(reader, question, view)
    return fuse(signals, seen, weights)


def answer_sentences(
    reader: DocumentReader, question: str, view: str, n_best: int = 3, progress: Progress | None = None
) -> QAResult:
    """Pick the answer passage(s) with one view (see module docstring)."""
    encode_seconds = prepare(reader, view, progress)
    t1 = time.perf_counter()
    ranking = rank_passages(reader, question, view)
    answers: list[Answer] = []
    intent = question_intent(question)
    top = ranking.top(n_best + 8)
    if top:
        finite = ranking.fused[ranking.order]
        probs = np.exp((finite - finite.max()) / SENTENCE_TEMPERATURE)
        probs /= probs.sum()
        for rank, i in enumerate(top):
            shaped = shape_span(reader.document, reader.passages, reader.passages.spans[i], i, intent)
            if shaped is None or len(answers) == n_best:
                continue  # a caption never answers a question about content
            loc = Located.of(reader.document, shaped[0])
            answers.append(
                Answer(
                    **vars(loc),
                    score=float(probs[rank]),
                    context=_paragraph_around(reader, shaped[0]),
                    passage=reader.passages.spans[i],
                    signal=ranking.main_signal(i),
                    **answer_layout(reader.document, reader.passages, shaped[0], intent),
                )
            )
    run = model_run(reader, view, time.perf_counter() - t1, encode_seconds)
    return QAResult(**run, question=question, method="sentence", answers=answers)


def _paragraph_around(
    reader: DocumentReader, span: tuple[int, int], max_chars: int = 1200
) -> tuple[int, int]:
    """The paragraph holding `span`, clipped to about max_chars around it (for highlighting in context)."""
    a, b = span
    # Paragraphs are ordered and disjoint: the only one that can hold `a` is the last starting at or before it
    # (found by binary search: a book has tens of thousands of paragraphs).
    i = int(np.searchsorted(reader.paragraph_starts, a, side="right")) - 1
    pa, pb = reader.paragraphs[i] if i >= 0 and a < reader.paragraphs[i][1] else (a, b)
    pad = max(0, (max_chars - (b - a)) // 2)
    return max(pa, a - pad), min(pb, b + pad) if pb >= b else b


# --------------------------------------------------------------------------------------------------
# Extractive spans (QA head)


def candidate_regions(
    reader: DocumentReader,
    ranking: Ranking,
    view: str,
    k: int = READ_REGIONS,
    region_tokens: int = REGION_TOKENS,
) -> list[tuple[int, int]]:
    """Document-token ranges of `region_tokens` centred on the view's k best passages, best first; a passage
    already inside an earlier region adds no region of its own."""
    tokens = reader.tokens_for(view)
    regions: list[tuple[int, int]] = []
    for i in ranking.order:
        if len(regions) >= k:
            break
        a, b = tokens.tokens_in(*reader.passages.spans[int(i)])
        if any(lo <= a and b <= hi for lo, hi in regions):
            continue
        lo = max(0, (a + b) // 2 - region_tokens // 2)
        hi = min(len(tokens), lo + region_tokens)
        regions.append((max(0, hi - region_tokens), hi))
    return regions


def retrieve_then_read(
    reader: DocumentReader,
    question: str,
    view: str,
    n_best: int = 3,
    progress: Progress | None = None,
    retrieval_weight: float = RETRIEVAL_WEIGHT,
) -> QAResult:
    """The embedded default with its QA head: candidate regions from hybrid retrieval, then spans.

    The truncated view has nothing to choose from: its reader reads the first 512 tokens.
    """
    if view == "truncated":
        return answer_spans(reader, question, view, n_best, progress)
    encode_seconds = prepare(reader, view, scaled(progress, 0.0, 0.9))
    ranking = rank_passages(reader, question, view)
    regions = candidate_regions(reader, ranking, view)
    result = answer_spans(
        reader,
        question,
        view,
        max(n_best, 10),
        scaled(progress, 0.9, 1.0),
        regions=regions,
        ranking=ranking,
        retrieval_weight=retrieval_weight,
    )
    result.answers = result.answers[:n_best]
    run = model_run(reader, view, result.seconds, encode_seconds)  # the pass saw the whole view
    return QAResult(
        **run,
        question=question,
        method="retrieve-then-read",
        answers=result.answers,
        no_answer_probability=result.no_answer_probability,
        notes=[
            (
                f"Found the {len(regions)} passages closest to the question in everything it read "
                "(by words in common, meaning and context), then marked the exact answer inside them."
            )
        ],
    )


def preliminary_answer(
    reader: DocumentReader, question: str, view: str, n_best: int = 3, regions: int = 2
) -> QAResult:
    """A first answer in about a second, before the view has read the document: passages ranked by words in
    common only (the lexical index needs no model), then the reader on the `regions` best regions.

    The app shows it as preliminary and replaces it when the view's reading is done. Without a QA reader it
    returns the best lexical passages.
    """
    t0 = time.perf_counter()
    model = reader.model_for(view)
    spans = reader.passages.spans
    seen = np.ones(len(spans), dtype=bool)
    if view == "truncated":  # only what its 512 tokens hold
        limit = reader.tokens_for(view).char_span(0, min(len(reader.tokens_for(view)), model.max_tokens))[1]
        seen = np.array([b <= limit for _, b in spans], dtype=bool)
    ranking = fuse({"lexical": reader.lexical_index.scores(question)}, seen, {"lexical": 1.0})
    if model.span_model is None and model.head != "qa":
        answers = []
        for i in ranking.top(n_best):
            loc = Located.of(reader.document, spans[i])
            answers.append(
                Answer(
                    **vars(loc),
                    context=_paragraph_around(reader, spans[i]),
                    passage=spans[i],
                    signal="lexical",
                )
            )
        result = QAResult(
            **windows_run(reader, view, 0, 0.0), question=question, method="sentence", answers=answers
        )
    else:
        chosen = candidate_regions(reader, ranking, view, k=regions)
        result = answer_spans(reader, question, view, n_best, regions=chosen, ranking=ranking)
    result.seconds = time.perf_counter() - t0
    result.notes = [PRELIMINARY_NOTE]
    return result


def _plain_words(text: str) -> set[str]:
    return set(re.findall(r"\w+", text.lower()))


def answer_spans(
    reader: DocumentReader,
    question: str,
    view: str,
    n_best: int = 3,
    progress: Progress | None = None,
    max_answer_tokens: int = 30,
    regions: Sequence[tuple[int, int]] | None = None,
    ranking: Ranking | None = None,
    retrieval_weight: float = RETRIEVAL_WEIGHT,
) -> QAResult:
    """Extract answer spans with a QA head: every window the view reads (or the given document-token
    regions), best spans over all of them. Uses the model's own head, else its `span_model`.

    ranking: when given, each span's score adds `retrieval_weight` x the fused score of its passage, and the
        answer records its passage and the signal that found it.
    """
    t0 = time.perf_counter()
    located, nulls, seen_end = span_candidates(
        reader, question, view, n_best, progress, max_answer_tokens, regions, ranking, retrieval_weight
    )
    located = _dedupe(sorted(located, key=lambda c: -c[0]))[:n_best]
    null_score = (
        min(nulls) if nulls else None
    )  # the window most sure an answer exists sets the no-answer score
    probs = span_probabilities([c[0] for c in located], null_score)
    intent = question_intent(question)
    answers = []
    for (score, span, passage), p in zip(located, probs):
        loc = Located.of(reader.document, span)
        extra = {}
        if passage >= 0:
            extra = {"passage": reader.passages.spans[passage], "signal": ranking.main_signal(passage)}
        extra.update(answer_layout(reader.document, reader.passages, span, intent))
        answers.append(Answer(**vars(loc), score=float(p), context=_paragraph_around(reader, span), **extra))
    run = windows_run(reader, view, seen_end, time.perf_counter() - t0)
    return QAResult(
        **run,
        question=question,
        method="span",
        answers=answers,
        no_answer_probability=float(probs[-1]) if null_score is not None and len(probs) else None,
    )


def span_candidates(
    reader: DocumentReader,
    question: str,
    view: str,
    n_best: int = 3,
    progress: Progress | None = None,
    max_answer_tokens: int = 30,
    regions: Sequence[tuple[int, int]] | None = None,
    ranking: Ranking | None = None,
    retrieval_weight: float = RETRIEVAL_WEIGHT,
) -> tuple[list[tuple[float, tuple[int, int], int]], list[float], int]:
    """Run the QA head over the windows (or regions) and score every candidate span.

    Returns:
        ([(score, char span, passage index or -1)], no-answer score per window, last document token read).
    """
    model = reader.model_for(view)
    tokens = reader.tokens_for(view)
    q_ids = tokenizer_call(model.tokenizer, question, add_special_tokens=False)["input_ids"]
    candidates: list[tuple[float, int, int]] = []  # (score, first doc token, last doc token)
    nulls: list[float] = []
    seen_end = 0
    # The best-ranked passages each put forward their own best spans, so a passage retrieval trusts is never
    # out-voted only because the reader liked some other place in the same region better.
    focus = (
        [tokens.tokens_in(*reader.passages.spans[int(i)]) for i in ranking.order[:FOCUS_PASSAGES]]
        if ranking
        else []
    )
    for win, out in run_windows(
        model,
        tokens,
        view,
        question_ids=q_ids,
        doc_global=reader.plan.doc_mask if view == "longformer" else None,
        global_first=reader.plan.global_first,
        global_question=True,  # the paper's QA setting, whatever the document strategy
        progress=progress,
        windows=regions,
        module=None if model.head == "qa" else model.span_model,
    ):
        s, e = win.doc_range
        seen_end = max(seen_end, e)
        start = out.start_logits[0].float().cpu().numpy()
        end = out.end_logits[0].float().cpu().numpy()
        spans, null = best_spans(
            start, end, (win.doc_start, win.doc_start + e - s), n_best, max_answer_tokens
        )
        for pa, pb in focus:
            if s <= pa and pb <= e and pb > pa:
                context = (win.doc_start + pa - s, win.doc_start + pb - s)
                spans += best_spans(start, end, context, 2, max_answer_tokens)[0]
        nulls.append(null)
        candidates += [(sp.score, s + sp.start - win.doc_start, s + sp.end - win.doc_start) for sp in spans]
    located = []  # (score, char span, passage index or -1)
    question_words = _plain_words(question)
    intent = question_intent(question)
    for score, a, b in candidates:
        span = tokens.char_span(a, b + 1)
        passage = reader.passages.holding(span[0]) if ranking is not None else -1
        # The answer's shape (qa.shaping): a whole entry, cell, list or definition; never a caption for a
        # question about content.
        shaped = shape_span(reader.document, reader.passages, span, passage, intent)
        if shaped is None:
            continue
        span, bonus = shaped
        score += bonus
        if (
            reader.passages.touches_excluded(span)
            or _plain_words(reader.document.text[span[0] : span[1]]) <= question_words
        ):
            continue  # a running header, or the question's own words ("MSSP" for "What does MSSP stand for?")
        if passage >= 0 and np.isfinite(ranking.fused[passage]):
            score += retrieval_weight * float(ranking.fused[passage])
        located.append((score, span, passage))
    return located, nulls, seen_end


def _dedupe(cands: list[tuple[float, tuple[int, int], int]]) -> list[tuple[float, tuple[int, int], int]]:
    """Drop spans repeated by overlapping windows (same characters), keeping the best-scored copy."""
    seen, out = set(), []
    for c in cands:
        if c[1] not in seen:
            seen.add(c[1])
            out.append(c)
    return out
