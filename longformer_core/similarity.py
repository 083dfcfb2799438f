"""Document embeddings and similarity, three ways: truncated, chunked and Longformer.

Poolings (over the tokens a view read):
- "sum-last4": the seed project's content embedding: the sum of the last four hidden layers, summed over
  tokens (cosine ignores the overall scale, so summing and averaging tokens rank the same);
- "mean": mean of the last layer (what sentence-transformers does for MiniLM);
- "cls": the first token ([CLS] / <s>, global in the Longformer), averaged over windows.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from longformer_core.reading.document_reading import DocumentReader
from longformer_core.reading.encoding import VIEWS, Progress
from longformer_core.reading.results import Located, ModelRun, model_run

POOLINGS = {
    "sum-last4": "Sum of the last four layers over all tokens (the seed project's embedding)",
    "mean": "Average of the last layer over all tokens",
    "cls": "The first token's state (global in the Longformer)",
}
PASSAGE_TOKENS = 200  # target passage length for the passage-by-passage matrix
MAX_PASSAGES = 80  # per document, so the heatmap stays readable


def _check_pooling(pooling: str) -> None:
    if pooling not in POOLINGS:
        raise ValueError(f"Unknown pooling '{pooling}': choose one of {', '.join(POOLINGS)}.")


def document_embedding(
    reader: DocumentReader, view: str, pooling: str = "mean", progress: Progress | None = None
) -> np.ndarray:
    """One L2-normalised vector for the part of the document the view read. (hidden,) float32."""
    _check_pooling(pooling)
    p = reader.encoded(view, progress, last4=pooling == "sum-last4")
    if pooling == "sum-last4":
        vec = p.pooled(layers="last4", how="sum")
    elif pooling == "mean":
        vec = p.pooled()
    else:
        vec = p.window_first.mean(0)
    return (vec / (np.linalg.norm(vec) + 1e-12)).astype(np.float32)


@dataclass
class SimilarityResult(ModelRun):
    pooling: str = "mean"
    cosine: float = 0.0
    other: dict = field(default_factory=dict)  # the second document's ModelRun fields


def compare(
    a: DocumentReader,
    b: DocumentReader,
    pooling: str = "mean",
    views: Sequence[str] = VIEWS,
    progress: Progress | None = None,
) -> dict[str, SimilarityResult]:
    """Cosine similarity of two documents' embeddings with each view."""
    _check_pooling(pooling)
    results = {}
    for view in views:
        t0 = time.perf_counter()
        cached = a.has_pass(view) and b.has_pass(view)
        va = document_embedding(a, view, pooling, progress)
        vb = document_embedding(b, view, pooling, progress)
        seconds = time.perf_counter() - t0
        run = model_run(a, view, 0.0 if not cached else seconds, 0.0 if cached else seconds)
        results[view] = SimilarityResult(
            **run, pooling=pooling, cosine=float(va @ vb), other=model_run(b, view, 0.0)
        )
    return results


def passages(
    reader: DocumentReader, target_tokens: int = PASSAGE_TOKENS, max_passages: int = MAX_PASSAGES
) -> list[tuple[int, int]]:
    """Character spans of passages: consecutive paragraphs grouped to about `target_tokens` tokens.

    Long documents get longer passages so there are at most `max_passages`.
    """
    tokens = reader.long_tokens
    target = max(target_tokens, -(-len(tokens) // max_passages))
    spans: list[tuple[int, int]] = []
    start = None
    for pa, pb in reader.paragraphs:
        start = pa if start is None else start
        t0, t1 = tokens.tokens_in(start, pb)
        if t1 - t0 >= target:
            spans.extend(_split_span(tokens, start, pb, target))
            start = None
    if start is not None:
        spans.append((start, reader.paragraphs[-1][1]))
    return spans or [(0, len(reader.document.text))]


def _split_span(tokens, a: int, b: int, target: int) -> list[tuple[int, int]]:
    """Split a character span that is much longer than `target` tokens into pieces of about `target`."""
    t0, t1 = tokens.tokens_in(a, b)
    if t1 - t0 < 2 * target:
        return [(a, b)]
    cuts = list(range(t0, t1, target))
    pieces = [tokens.char_span(c, min(c + target, t1)) for c in cuts]
    return [(max(a, s), min(b, e)) for s, e in pieces]


@dataclass
class PassageMatrix:
    """Cosine similarity between the passages of two documents under one view and pooling."""

    view: str
    pooling: str
    passages_a: list[Located]
    passages_b: list[Located]
    matrix: np.ndarray  # (len(passages_a), len(passages_b)); NaN where the view did not read a passage
    seconds: float

    def best_pairs(self, k: int = 5) -> list[tuple[int, int, float]]:
        """The k most similar (i, j, cosine) pairs."""
        m = np.nan_to_num(self.matrix, nan=-2.0)
        flat = np.argsort(-m, axis=None)[:k]
        return [(int(i), int(j), float(m[i, j])) for i, j in zip(*np.unravel_index(flat, m.shape))]


def passage_matrix(
    a: DocumentReader, b: DocumentReader, view: str = "longformer", pooling: str = "mean"
) -> PassageMatrix:
    """Passage-by-passage similarity of two documents from one view's token states."""
    _check_pooling(pooling)
    t0 = time.perf_counter()
    layers = "last4" if pooling == "sum-last4" else "last"
    spans_a, spans_b = passages(a), passages(b)
    va, seen_a = a.pool_spans(view, spans_a, layers)
    vb, seen_b = b.pool_spans(view, spans_b, layers)
    m = va @ vb.T
    m[~seen_a, :] = np.nan
    m[:, ~seen_b] = np.nan
    return PassageMatrix(
        view=view,
        pooling=pooling,
        passages_a=[Located.of(a.document, s) for s in spans_a],
        passages_b=[Located.of(b.document, s) for s in spans_b],
        matrix=m.astype(np.float32),
        seconds=time.perf_counter() - t0,
    )
