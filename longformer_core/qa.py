"""Question answering over a whole document, three ways: truncated, chunked and Longformer.

Three methods, chosen by the model:
- **span** (the checkpoint has a QA head, e.g. a fine-tuned hub Longformer): `[CLS] question [SEP] window
  [SEP]` for every window the view reads, question tokens global for the Longformer (the paper's
  setting), spans decoded from the start/end logits (n-best, max answer length, SQuAD 2.0 no-answer).
- **retrieve-then-read** (the embedded default with its shipped QA head, `LoadedModel.qa_reader`): the
  view's cached, question-independent pass over the document scores every sentence (as below); the
  reader then extracts spans from regions of `REGION_TOKENS` tokens around the `READ_REGIONS` best
  sentences. The truncated view reads its first 512 tokens with the same head.
- **sentence** (no QA head at all): pick the sentence that answers the question.
  Each sentence gets `standalone + CONTEXT_WEIGHT * contextual`: the cosine between the question and the
  sentence embedded on its own (what MiniLM was trained for) plus the cosine with the mean of the
  sentence's token states from the view's pass over the document (the context the view could read).
  The pass does not depend on the question, so it is cached and a second question costs only the
  question's embedding. The weight was chosen on the shared SQuAD articles (docs/results.md).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from longformer_core.encoding import VIEWS, Progress, embed_texts, run_windows, scaled
from longformer_core.reader import DocumentReader
from longformer_core.results import Located, ModelRun, model_run, windows_run
from longformer_core.spans import best_spans, span_probabilities

CONTEXT_WEIGHT = 0.5  # weight of the contextual cosine; 0.5 measured best of {0, 0.5, 1} (docs/results.md)
SENTENCE_TEMPERATURE = 0.1  # softmax temperature turning sentence scores into confidences
MAX_QUESTION_CHARS = 1000
READ_REGIONS = 4  # regions the reader reads per question (retrieve-then-read)
REGION_TOKENS = 384  # tokens per region: the head was trained on 257-token windows; the Longformer sees +-256


@dataclass
class Answer(Located):
    score: float = 0.0  # confidence in [0, 1]
    context: tuple[int, int] = (0, 0)  # char span of the surrounding text to show (sentence / window text)


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
        elif model.qa_reader is not None:
            results[view] = retrieve_then_read(reader, question, view, n_best, step)
        else:
            results[view] = answer_sentences(reader, question, view, n_best, step)
    return results


# --------------------------------------------------------------------------------------------------
# Sentence selection (no QA head)


def sentence_scores(reader: DocumentReader, question: str, view: str) -> tuple[np.ndarray, np.ndarray]:
    """Score of every sentence for a view; (scores, seen) with scores of unseen sentences = -inf."""
    q = embed_texts(reader.pair.baseline, [question])[0]  # (hidden,)
    standalone = reader.sentence_vectors @ q  # (n_sentences,)
    contextual, seen = reader.sentence_states(view)
    # A converted Longformer shares its source model's space; a different width cannot be compared.
    ctx = contextual @ q if contextual.shape[1] == q.shape[0] else 0.0
    scores = np.where(seen, standalone + CONTEXT_WEIGHT * ctx, -np.inf)
    return scores, seen


def answer_sentences(
    reader: DocumentReader, question: str, view: str, n_best: int = 3, progress: Progress | None = None
) -> QAResult:
    """Pick the answer sentence(s) with one view (see module docstring)."""
    cached = reader.has_pass(view) and reader.sentence_vectors_ready()
    t0 = time.perf_counter()
    reader.encoded(view, progress)
    reader.embed_sentences(progress)  # question-independent: counted as encoding
    reader.sentence_states(view)
    encode_seconds = 0.0 if cached else time.perf_counter() - t0
    t1 = time.perf_counter()
    scores, seen = sentence_scores(reader, question, view)
    answers: list[Answer] = []
    if seen.any():
        finite = np.where(seen, scores, -1e9)
        probs = np.exp((finite - finite.max()) / SENTENCE_TEMPERATURE) * seen
        probs /= probs.sum()
        for i in np.argsort(-finite)[: min(n_best, int(seen.sum()))]:
            span = reader.sentences[i]
            loc = Located.of(reader.document, span)
            answers.append(Answer(**vars(loc), score=float(probs[i]), context=_paragraph_around(reader, span)))
    run = model_run(reader, view, time.perf_counter() - t1, encode_seconds)
    return QAResult(**run, question=question, method="sentence", answers=answers)


def _paragraph_around(reader: DocumentReader, span: tuple[int, int], max_chars: int = 1200) -> tuple[int, int]:
    """The paragraph holding `span`, clipped to about max_chars around it (for highlighting in context)."""
    a, b = span
    for pa, pb in reader.paragraphs:
        if pa <= a < pb:
            break
    else:
        pa, pb = a, b
    pad = max(0, (max_chars - (b - a)) // 2)
    return max(pa, a - pad), min(pb, b + pad) if pb >= b else b


# --------------------------------------------------------------------------------------------------
# Extractive spans (QA head)


def candidate_regions(
    reader: DocumentReader, question: str, view: str, k: int = READ_REGIONS, region_tokens: int = REGION_TOKENS
) -> list[tuple[int, int]]:
    """Document-token ranges of `region_tokens` centred on the view's k best-scored sentences, best first."""
    scores, seen = sentence_scores(reader, question, view)
    tokens = reader.tokens_for(view)
    regions: list[tuple[int, int]] = []
    for i in np.argsort(-np.where(seen, scores, -np.inf))[: min(k, int(seen.sum()))]:
        a, b = tokens.tokens_in(*reader.sentences[i])
        lo = max(0, (a + b) // 2 - region_tokens // 2)
        hi = min(len(tokens), lo + region_tokens)
        regions.append((max(0, hi - region_tokens), hi))
    return regions


def retrieve_then_read(
    reader: DocumentReader, question: str, view: str, n_best: int = 3, progress: Progress | None = None
) -> QAResult:
    """The embedded default with its QA head: candidate regions from the view's cached pass, then spans.

    The truncated view has nothing to choose from: its reader reads the first 512 tokens.
    """
    if view == "truncated":
        return answer_spans(reader, question, view, n_best, progress)
    cached = reader.has_pass(view) and reader.sentence_vectors_ready()
    t0 = time.perf_counter()
    reader.encoded(view, scaled(progress, 0.0, 0.8))
    reader.embed_sentences(scaled(progress, 0.8, 0.9))
    reader.sentence_states(view)
    encode_seconds = 0.0 if cached else time.perf_counter() - t0
    regions = candidate_regions(reader, question, view)
    result = answer_spans(reader, question, view, n_best, scaled(progress, 0.9, 1.0), regions=regions)
    run = model_run(reader, view, result.seconds, encode_seconds)  # the pass saw the whole view
    return QAResult(**run, question=question, method="retrieve-then-read", answers=result.answers,
                    no_answer_probability=result.no_answer_probability,
                    notes=[(f"Found the {len(regions)} passages closest to the question in everything it read, "
                            "then marked the exact answer inside them.")])


def answer_spans(
    reader: DocumentReader,
    question: str,
    view: str,
    n_best: int = 3,
    progress: Progress | None = None,
    max_answer_tokens: int = 30,
    regions: Sequence[tuple[int, int]] | None = None,
) -> QAResult:
    """Extract answer spans with a QA head: every window the view reads (or the given document-token
    regions), best spans over all of them. Uses the model's own head, else its `qa_reader`."""
    t0 = time.perf_counter()
    model = reader.model_for(view)
    tokens = reader.tokens_for(view)
    q_ids = model.tokenizer(question, add_special_tokens=False)["input_ids"]
    candidates: list[tuple[float, int, int]] = []  # (score, first doc token, last doc token)
    nulls: list[float] = []
    seen_end = 0
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
        module=None if model.head == "qa" else model.qa_reader,
    ):
        s, e = win.doc_range
        seen_end = max(seen_end, e)
        start = out.start_logits[0].float().cpu().numpy()
        end = out.end_logits[0].float().cpu().numpy()
        spans, null = best_spans(start, end, (win.doc_start, win.doc_start + e - s), n_best, max_answer_tokens)
        nulls.append(null)
        candidates += [(sp.score, s + sp.start - win.doc_start, s + sp.end - win.doc_start) for sp in spans]
    candidates = _dedupe(sorted(candidates, reverse=True))[:n_best]
    null_score = min(nulls) if nulls else None  # the window most sure an answer exists sets the no-answer score
    probs = span_probabilities([c[0] for c in candidates], null_score)
    answers = []
    for (score, a, b), p in zip(candidates, probs):
        span = tokens.char_span(a, b + 1)
        loc = Located.of(reader.document, span)
        answers.append(Answer(**vars(loc), score=float(p), context=_paragraph_around(reader, span)))
    run = windows_run(reader, view, seen_end, time.perf_counter() - t0)
    return QAResult(
        **run,
        question=question,
        method="span",
        answers=answers,
        no_answer_probability=float(probs[-1]) if null_score is not None and len(probs) else None,
    )


def _dedupe(cands: list[tuple[float, int, int]]) -> list[tuple[float, int, int]]:
    """Drop spans repeated by overlapping windows (same tokens), keeping the best-scored copy."""
    seen, out = set(), []
    for c in cands:
        if (c[1], c[2]) not in seen:
            seen.add((c[1], c[2]))
            out.append(c)
    return out
