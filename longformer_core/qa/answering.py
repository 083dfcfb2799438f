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
- **long-window** (the embedded Longformer with a long reader, `LoadedModel.long_reader`): the same ranking, then
  ONE pass of up to `LONG_WINDOW_TOKENS` over the whole document when it fits, else over regions around as
  many of the best passages as fit (merged where they touch, in document order), the question global; spans
  are scored as in retrieve-then-read and the reader's classifier may answer yes or no.
- **sentence** (no QA head at all): pick the passage that answers the question.

Passages (`passages.py`: sentences, or layout units of a PDF such as glossary entries and list items) are
ranked by `retrieval.fuse` over three signals: BM25 words in common, the cosine between the question and the
passage embedded on its own (what MiniLM was trained for), and the cosine with the mean of the passage's token
states from the view's pass over the document (the context the view could read). The pass, the passage
embeddings and the lexical index do not depend on the question, so they are cached and a second question costs
only the question's embedding and the reader. Weights were chosen on the shared data (docs/results.md).
"""

from __future__ import annotations

import itertools
import threading
import time
import weakref
from collections.abc import Iterator, Sequence

import numpy as np
import torch

from longformer_core.model.registry import LoadedModel
from longformer_core.qa.intent import question_intent
from longformer_core.qa.one_pass import ANSWER_TYPES, SpanModel, sub_mask, sub_tokens, window_logits
from longformer_core.qa.results import Answer, QAResult
from longformer_core.qa.shaping import answer_layout, shape_span
from longformer_core.qa.span_reading import (
    RETRIEVAL_WEIGHT,
    answer_spans,
    focus_ranges,
    paragraph_around,
    score_spans,
    span_answers,
    window_spans,
)
from longformer_core.reading.document_reading import DocumentReader
from longformer_core.reading.encoding import (
    VIEWS,
    Progress,
    embed_texts,
    scaled,
    tokenizer_call,
    window_capacity,
)
from longformer_core.reading.results import Located, model_run, windows_run
from longformer_core.reading.retrieval import Ranking, fuse
from longformer_core.reading.strategies import STRATEGIES

SENTENCE_TEMPERATURE = 0.5  # softmax temperature turning fused passage scores (z units) into confidences
PRELIMINARY_NOTE = (
    "A first answer from the passages sharing the most words with the question; the full answer "
    "replaces it when this model has read the whole document."
)
MAX_QUESTION_CHARS = 1000
# The reader reads READ_REGIONS regions of REGION_TOKENS tokens per question (retrieve-then-read): 6 of 300
# read better than 4 of 384 (and 6 of 225 or 260) on the shared SQuAD train articles and the NIST guide as a
# whole (docs/results.md). The head was trained on 257-token windows; the Longformer sees +-256 tokens.
READ_REGIONS = 6
REGION_TOKENS = 300
# A long reader (`finetune-long`) reads one pass of up to LONG_WINDOW_TOKENS (question and special tokens
# included): the whole document when it fits, else REGION_TOKENS around as many best passages as fit.
LONG_WINDOW_TOKENS = 4096


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
        elif model.long_reader and view == "longformer":
            results[view] = read_long_window(reader, question, view, n_best, step)
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
                    context=paragraph_around(reader, shaped[0]),
                    passage=reader.passages.spans[i],
                    signal=ranking.main_signal(i),
                    **answer_layout(reader.document, reader.passages, shaped[0], intent),
                )
            )
    run = model_run(reader, view, time.perf_counter() - t1, encode_seconds)
    return QAResult(**run, question=question, method="sentence", answers=answers)


# --------------------------------------------------------------------------------------------------
# Regions to read with a QA head: retrieve-then-read, the long window, the preliminary answer


def candidate_regions(
    reader: DocumentReader,
    ranking: Ranking,
    view: str,
    k: int = READ_REGIONS,
    region_tokens: int = REGION_TOKENS,
) -> list[tuple[int, int]]:
    """Document-token ranges of `region_tokens` centred on the view's k best passages, best first; a passage
    already inside an earlier region adds no region of its own."""
    return list(itertools.islice(_passage_regions(reader, ranking, view, region_tokens), k))


def _passage_regions(
    reader: DocumentReader, ranking: Ranking, view: str, region_tokens: int
) -> Iterator[tuple[int, int]]:
    """`candidate_regions` one at a time, in rank order (a book has tens of thousands of passages: take few)."""
    tokens = reader.tokens_for(view)
    regions: list[tuple[int, int]] = []
    for i in ranking.order:
        a, b = tokens.tokens_in(*reader.passages.spans[int(i)])
        if any(lo <= a and b <= hi for lo, hi in regions):
            continue
        lo = max(0, (a + b) // 2 - region_tokens // 2)
        hi = min(len(tokens), lo + region_tokens)
        regions.append((max(0, hi - region_tokens), hi))
        yield regions[-1]


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
        result = answer_spans(reader, question, view, n_best, progress)
        seen, n = result.seen_tokens[1], result.n_tokens
        result.notes = [
            f"Read only the first {seen:,} tokens of {n:,} (one pass of a 512-token model) and marked the answer."
        ]
        return result
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
                f"Read the {len(regions)} passages closest to the question (by words in common, meaning and "
                f"context) as {len(regions)} separate pieces of {REGION_TOKENS} tokens, then marked the answer."
            )
        ],
    )


def long_window_ranges(
    reader: DocumentReader,
    ranking: Ranking,
    view: str,
    capacity: int,
    region_tokens: int = REGION_TOKENS,
) -> list[tuple[int, int]]:
    """Document-token ranges one long pass reads, in document order: the whole view when it holds at most
    `capacity` tokens, else `region_tokens` around each of the best passages in rank order, merged where they
    overlap or touch, for as long as the union fits in `capacity`."""
    n = len(reader.tokens_for(view))
    if n <= capacity:
        return [(0, n)]
    chosen: list[tuple[int, int]] = []
    used = 0
    # Regions that overlap chosen ones cost less than their length, so a few more are tried than fit end to end.
    tries = 4 * max(1, capacity // region_tokens)
    for lo, hi in itertools.islice(_passage_regions(reader, ranking, view, region_tokens), tries):
        merged = _merge_ranges([*chosen, (lo, hi)])
        size = sum(e - s for s, e in merged)
        if size <= capacity:
            chosen, used = merged, size
        elif capacity - used < region_tokens // 4:
            break  # full enough: a sliver of another passage would not hold its answer
    return chosen


def long_window_capacity(model: LoadedModel, n_question: int, max_tokens: int | None = None) -> int:
    """Document tokens one long pass of `model` (`max_tokens`, default LONG_WINDOW_TOKENS) holds next to a
    question of `n_question` tokens."""
    return window_capacity(model.limited_to(max_tokens or LONG_WINDOW_TOKENS), model.tokenizer, n_question)


def _merge_ranges(ranges: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
    """Sorted ranges with those that overlap or touch joined."""
    out: list[tuple[int, int]] = []
    for s, e in sorted(ranges):
        if out and s <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], e))
        else:
            out.append((s, e))
    return out


def answering_mask(reader: DocumentReader, model: LoadedModel) -> np.ndarray:
    """The Longformer's global document tokens when it answers: the strategy's, and those its long reader saw
    global in training (`LoadedModel.reader_globals`), which stay global whatever the strategy."""
    if model.reader_globals == "question":
        return reader.plan.doc_mask
    return reader.plan.doc_mask | reader.global_mask_of(model.reader_globals)


def read_long_window(
    reader: DocumentReader,
    question: str,
    view: str,
    n_best: int = 3,
    progress: Progress | None = None,
    retrieval_weight: float = RETRIEVAL_WEIGHT,
    max_tokens: int | None = None,
    max_answer_tokens: int = 30,
) -> QAResult:
    """The Longformer with a long reader: the view's ranking, then ONE pass over the whole document or the best
    passages with their neighbours (`long_window_ranges`), the question global (module docstring).

    A yes/no answer (the reader's classifier) keeps the best span's place in the document as its evidence.
    """
    encode_seconds = prepare(reader, view, scaled(progress, 0.0, 0.9))
    t0 = time.perf_counter()
    model = reader.model_for(view)
    ranking = rank_passages(reader, question, view)
    q_ids = tokenizer_call(model.tokenizer, question, add_special_tokens=False)["input_ids"]
    capacity = long_window_capacity(model, len(q_ids), max_tokens or LONG_WINDOW_TOKENS)
    ranges = long_window_ranges(reader, ranking, view, capacity)
    tokens = reader.tokens_for(view)
    window = sub_tokens(tokens, ranges)
    mask = answering_mask(reader, model)
    doc_global = sub_mask(mask, ranges) if len(mask) == len(tokens) else None
    trained = model.reader_globals != "question"
    with torch.inference_mode():
        start, end, type_probs = window_logits(
            SpanModel.of(model), window, (0, len(window)), q_ids, doc_global=doc_global
        )
    focus = focus_ranges(reader, window, ranking)
    found, _ = window_spans(start, end, 0, (0, len(window)), focus, max(n_best, 10), max_answer_tokens)
    located = score_spans(reader, question, window, found, ranking, retrieval_weight)
    answers, _ = span_answers(reader, question, located, n_best, ranking)
    read = sum(e - s for s, e in ranges)
    whole = ranges == [(0, len(tokens))]
    also = (
        f" and the {STRATEGIES[model.reader_globals].label.lower()} (as the reader was trained)"
        if trained
        else ""
    )
    notes = [
        f"Read the whole document ({read:,} tokens) in one pass, the question{also} global, and marked the answer."
        if whole
        else f"Read {read:,} tokens in one pass: the passages closest to the question (by words in common, "
        f"meaning and context) with their neighbours, {len(ranges)} stretches of the document, the question{also} "
        "global."
    ]
    kind = ANSWER_TYPES[int(np.argmax(type_probs))] if type_probs is not None else "span"
    if kind != "span" and answers:
        best = answers[0]
        answers = [
            Answer(
                **{**vars(best), "text": kind, "score": float(type_probs.max()), "items": [], "cell": None}
            )
        ]
        notes.append(
            f"The reader judged this a yes/no question and answered {kind}; the highlight is its evidence."
        )
    run = model_run(reader, view, time.perf_counter() - t0, encode_seconds)
    return QAResult(
        **run, question=question, method="long-window", answers=answers, notes=notes, read_ranges=ranges
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
                    context=paragraph_around(reader, spans[i]),
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
