"""Global-attention strategies: which tokens see (and are seen by) the whole document.

In Longformer every token attends to a window of neighbours (512 tokens for the embedded default);
a few *global* tokens attend to every token and every token attends to them. The paper puts global
attention on [CLS] for classification and on the question tokens for QA. A strategy turns a document
into a `GlobalPlan` that `encoding.build_input` applies to each window.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from longformer_core.documents import Document, paragraph_spans, sentence_spans
from longformer_core.reading.encoding import DocumentTokens

MAX_GLOBAL_TOKENS = 512  # global rows cost O(n) each; beyond a few hundred they dominate the pass
DEFAULT_EVERY_K = 512


@dataclass(frozen=True)
class Strategy:
    key: str
    label: str
    explanation: str  # one sentence for someone who has never heard of attention


STRATEGIES: dict[str, Strategy] = {
    s.key: s
    for s in (
        Strategy(
            "none",
            "Local only",
            "Every word looks only at its neighbours (256 words either side); nothing links distant parts.",
        ),
        Strategy(
            "cls",
            "First token",
            "One summary token reads the whole document and every word can consult it (the paper's choice for classification).",
        ),
        Strategy(
            "question",
            "Question words",
            "The words of your question read the whole document and every word can consult them (the paper's choice for question answering).",
        ),
        Strategy(
            "sentences",
            "Sentence starts",
            "The first word of every sentence reads the whole document, linking sentences far apart.",
        ),
        Strategy(
            "paragraphs",
            "Paragraph starts",
            "The first word of every paragraph reads the whole document, linking sections far apart.",
        ),
        Strategy(
            "pages",
            "Page starts",
            "The first word of every page reads the whole document, one link per page.",
        ),
        Strategy(
            "every_k",
            "Every k-th token",
            "Evenly spaced tokens read the whole document, like signposts every k words.",
        ),
        Strategy(
            "keywords",
            "Your keywords",
            "Every place where one of your keywords appears reads the whole document.",
        ),
    )
}
DEFAULT_FOR_TASK = {"qa": "question", "classify": "cls", "similarity": "cls"}


@dataclass(frozen=True)
class GlobalPlan:
    """Global attention for one document: a mask over document tokens plus the first/question flags."""

    strategy: str
    doc_mask: np.ndarray  # (n_tokens,) bool
    global_first: bool
    global_question: bool
    dropped: int = 0  # positions left out because of MAX_GLOBAL_TOKENS

    @property
    def n_doc_global(self) -> int:
        return int(self.doc_mask.sum())

    @property
    def key(self) -> str:
        """Cache key part: the strategy plus a digest of the mask (question flag excluded: it is per-question)."""
        positions = np.flatnonzero(self.doc_mask)
        return f"{self.strategy}:{self.global_first}:{hash(positions.tobytes()) & 0xFFFFFFFF:08x}"


def _starts(tokens: DocumentTokens, spans: Sequence[tuple[int, int]]) -> list[int]:
    return [tokens.token_at(a) for a, _ in spans]


def _keyword_positions(text: str, tokens: DocumentTokens, terms: Sequence[str]) -> list[int]:
    positions: list[int] = []
    for term in (t.strip() for t in terms):
        if not term:
            continue
        for m in re.finditer(r"(?<!\w)" + re.escape(term) + r"(?!\w)", text, flags=re.IGNORECASE):
            t0, t1 = tokens.tokens_in(m.start(), m.end())
            positions.extend(range(t0, t1))
    return positions


def _cap(positions: Sequence[int], limit: int) -> tuple[list[int], int]:
    """Keep at most `limit` positions, evenly spread over the document."""
    unique = sorted(set(positions))
    if len(unique) <= limit:
        return unique, 0
    keep = np.linspace(0, len(unique) - 1, limit).round().astype(int)
    return [unique[i] for i in keep], len(unique) - limit


def plan_global(
    strategy: str,
    document: Document,
    tokens: DocumentTokens,
    *,
    every_k: int = DEFAULT_EVERY_K,
    keywords: Sequence[str] = (),
    max_global: int = MAX_GLOBAL_TOKENS,
) -> GlobalPlan:
    """Turn a strategy into a global-attention plan for one document.

    Args:
        strategy: a key of STRATEGIES.
        document: the document (its text, pages).
        tokens: the document's tokens (`encoding.tokenize` of `document.text`).
        every_k: spacing for "every_k".
        keywords: user terms for "keywords" (whole-word, case-insensitive).
        max_global: at most this many global document tokens (evenly thinned beyond it).
    Raises:
        ValueError: unknown strategy, or "keywords" without terms, with a message for the user.
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"Unknown strategy '{strategy}': choose one of {', '.join(STRATEGIES)}.")
    text = document.text
    positions: list[int] = []
    if strategy == "sentences":
        positions = _starts(tokens, sentence_spans(text))
    elif strategy == "paragraphs":
        positions = _starts(tokens, paragraph_spans(text))
    elif strategy == "pages":
        positions = _starts(tokens, [(p.start, p.end) for p in document.pages if p.end > p.start])
    elif strategy == "every_k":
        if every_k < 1:
            raise ValueError("k must be at least 1.")
        positions = list(range(0, len(tokens), every_k))
    elif strategy == "keywords":
        if not any(t.strip() for t in keywords):
            raise ValueError("Type at least one keyword for the keyword strategy.")
        positions = _keyword_positions(text, tokens, keywords)
    kept, dropped = _cap([p for p in positions if 0 <= p < len(tokens)], max_global)
    mask = np.zeros(len(tokens), dtype=bool)
    mask[kept] = True
    return GlobalPlan(
        strategy=strategy,
        doc_mask=mask,
        global_first=strategy != "none",
        global_question=strategy == "question",
        dropped=dropped,
    )
