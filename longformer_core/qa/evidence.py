"""Why this answer: a score per passage of how much it supported a view's answer.

Method (what we chose and why):

* **Gradient x input on the input embeddings.** One forward + backward pass of the view's QA model over the
  window around the answer: `[CLS] question [SEP] doc[lo:hi] [SEP]`, at most `EXPLAIN_TOKENS` (4,096)
  tokens for the Longformer (question tokens global, plus the reader's strategy mask, as when answering),
  the view's own 512-token window for the truncated/chunked baselines; a long-window answer
  (`QAResult.read_ranges`) on the same stretches of the document its one pass read, back to back. The
  target is the answer's **start logit + end logit** (not its probability: the softmax saturates, so a confident answer would
  get near-zero gradients everywhere). Each token's score is `sum_d grad_d * embedding_d` over the word
  embedding of that token (before positions and LayerNorm): a first-order estimate of the change in the
  target when the token is removed (embedding -> 0). A passage's score is, by default, the **sum of
  the magnitudes** over its tokens (`aggregate="absolute"`): how much the passage mattered. The sign
  of gradient x input at the embedding layer flips from token to token (punctuation and function words
  carry large values of either sign), so signed sums cancel inside the very sentence that holds the
  answer: on the first held-out SQuAD question we measured, the answer's own sentence ranked last of 100
  by signed sum (docs/results.md). `aggregate="signed"` keeps the sign (positive: pushed towards this
  answer) for those who want it. Scores are reported as a share of the total absolute attribution over
  the passages the pass read, so they lie in [-1, 1] ([0, 1] for "absolute").
* **Occlusion as a check** (`occlusion=k`): the top-k passages by gradient plus k others drawn at random
  from the window have their tokens replaced by the mask token, one forward pass each (no gradient), and
  the drop of the start+end logit is that passage's occlusion score. Occlusion measures what gradients
  only approximate (the model is not linear: saturation hides a passage whose removal matters, and two
  redundant passages each look unimportant to occlusion while gradients credit both). Masking keeps
  positions fixed; deleting tokens would shift every position after the passage. A passage holding the
  answer itself scores high under both methods: its tokens are where the logits are read.
* Passages default to `reader.passages` (the units retrieval ranks: sentences, and for PDFs layout-aware
  entries, list items, table rows); pass any list of character spans (sentences, paragraphs). Passages
  outside the explained window get no score.

The pass runs outside `torch.inference_mode` with gradients only for the input embeddings
(`torch.autograd.grad`; the weights are frozen for its duration, so the shared model gets no `.grad` and
autograd keeps no activations for weight gradients). It runs in the model's arithmetic (bf16 autocast where
the hardware has it, `LONGDOC_DTYPE`) with the Longformer's attention swapped for an all-blocks-at-once
kernel whose backward is a few fused ops (`grad_attention.py`; the inference kernel's per-block writes
made the backward ~30x slower): 4,096 tokens in ~4 s of CPU on 2 cores (docs/results.md, "Evidence time").
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from longformer_core.model.grad_attention import autograd_attention
from longformer_core.model.registry import LoadedModel
from longformer_core.qa.answering import QAResult, answering_mask, ask
from longformer_core.qa.one_pass import sub_mask, sub_tokens
from longformer_core.reading.document_reading import DocumentReader
from longformer_core.reading.encoding import (
    VIEWS,
    DocumentTokens,
    WindowInput,
    build_input,
    model_kwargs,
    window_capacity,
)
from longformer_core.reading.results import Located, _plain

EXPLAIN_TOKENS = 4096  # longest input (question and special tokens included) of the explanation pass
DEFAULT_OCCLUSION = 0  # passages occluded per answer by default (each costs one forward pass)
OCCLUSION_BATCH = 4  # occluded copies per forward pass
AGGREGATES = ("signed", "absolute")
_GRADIENT_LOCK = (
    threading.Lock()
)  # one gradient pass at a time: it swaps the attention kernel of a shared model


@dataclass
class Evidence(Located):
    """One passage and how much it supported the answer."""

    score: float = (
        0.0  # share of the absolute gradient x input over the window's passages ([-1, 1] if signed)
    )
    occlusion: float | None = (
        None  # drop of start+end logit when the passage is masked (sampled passages only)
    )


@dataclass
class Explanation:
    """The evidence for one view's top answer."""

    view: str
    question: str
    answer: Located
    evidence: list[Evidence]  # every passage the pass read, best first
    window_tokens: tuple[int, int]  # document tokens [lo, hi) the explanation pass read (first to last range)
    window_chars: tuple[int, int]
    target_logit: float  # start + end logit of the answer in the explanation pass
    seconds: float  # gradient pass
    occlusion_seconds: float = 0.0
    occlusion_agrees: bool | None = None  # occlusion's best sampled passage == the gradient's best
    notes: list[str] = field(default_factory=list)
    window_ranges: list[tuple[int, int]] = field(default_factory=list)  # the document-token ranges it read

    def top(self, k: int = 5) -> list[Evidence]:
        return self.evidence[:k]

    def to_dict(self, max_evidence: int | None = None) -> dict:
        """JSON-ready: {"answer", "page", "evidence": [{"text", "page", "char_span", "score", ...}], ...}."""
        ev = self.evidence if max_evidence is None else self.evidence[:max_evidence]
        return _plain(
            {
                "answer": self.answer.text,
                "page": self.answer.page,
                "char_span": self.answer.char_span,
                "evidence": [asdict(e) for e in ev],
                "window_tokens": self.window_tokens,
                "window_chars": self.window_chars,
                "window_ranges": self.window_ranges,
                "target_logit": round(self.target_logit, 4),
                "seconds": round(self.seconds, 3),
                "occlusion_seconds": round(self.occlusion_seconds, 3),
                "occlusion_agrees": self.occlusion_agrees,
                "notes": self.notes,
            }
        )


def page_strip(n_pages: int, evidence: Sequence[Evidence]) -> np.ndarray:
    """Positive evidence summed per page: where in the document the support for the answer lies.

    Args:
        n_pages: pages in the document.
        evidence: scored passages.
    Returns:
        (n_pages,) float, non-negative (passages that argued against the answer are left out).
    """
    strip = np.zeros(n_pages, dtype=np.float64)
    for e in evidence:
        if e.score > 0:
            strip[e.page - 1] += e.score
    return strip


def _qa_module(model: LoadedModel) -> torch.nn.Module:
    if model.head == "qa":
        return model.model
    if model.span_model is not None:
        return model.span_model
    raise ValueError(
        f"'{model.name}' has no question-answering head, so its answers are whole sentences picked by "
        "similarity and there are no answer logits to explain. Load a QA model or the embedded default "
        "with its QA head (assets/qa_head)."
    )


def explanation_window(
    reader: DocumentReader,
    view: str,
    answer_span: tuple[int, int],
    n_question: int,
    max_tokens: int = EXPLAIN_TOKENS,
) -> tuple[int, int]:
    """Document-token range [lo, hi) the explanation pass reads: the view's window around the answer.

    The truncated view reads its first window (all it ever saw, `max_tokens` aside); the others a window
    centred on the answer, of at most `max_tokens` input tokens (the model's own limit when smaller, 512 for
    the baselines).
    """
    model = reader.model_for(view)
    tokens = reader.tokens_for(view)
    full = window_capacity(model, model.tokenizer, n_question)
    n = len(tokens)
    if view == "truncated":  # all it ever read, whatever max_tokens says
        return 0, min(n, full)
    capacity = full - max(0, model.max_tokens - max_tokens)
    if capacity < 16:
        raise ValueError(f"max_tokens={max_tokens} leaves no room for the document next to the question.")
    a, b = tokens.tokens_in(*answer_span)
    mid = (a + max(b, a + 1)) // 2
    lo = max(0, mid - capacity // 2)
    hi = min(n, lo + capacity)
    return max(0, hi - capacity), hi


def _forward_target(module: torch.nn.Module, kwargs: dict, start_pos: int, end_pos: int) -> torch.Tensor:
    out = module(**kwargs)
    return out.start_logits[:, start_pos] + out.end_logits[:, end_pos]  # (batch,)


@dataclass
class _ExplanationPass:
    """The input of one explanation pass and where the answer sits in it."""

    model: LoadedModel
    module: torch.nn.Module  # the view's QA model
    ranges: list[tuple[int, int]]  # document tokens read, back to back in the input, in document order
    win: WindowInput
    input_ids: torch.Tensor  # (1, L)
    kwargs: dict[str, torch.Tensor]  # the other forward arguments (attention and global masks, ...)
    answer_positions: tuple[int, int]  # input positions of the answer's first and last token

    @property
    def window(self) -> tuple[int, int]:
        """Document tokens [lo, hi) from the first range read to the end of the last."""
        return self.ranges[0][0], self.ranges[-1][1]

    def input_positions(self, token_range: tuple[int, int]) -> tuple[int, int] | None:
        """Input positions [p0, p1) of document tokens [a, b) clipped to the ranges read (contiguous in the input:
        the ranges sit back to back); None outside them."""
        found, offset = [], self.win.doc_start
        for lo, hi in self.ranges:
            p0, p1 = max(token_range[0], lo), min(token_range[1], hi)
            if p1 > p0:
                found.append((offset + p0 - lo, offset + p1 - lo))
            offset += hi - lo
        return (found[0][0], found[-1][1]) if found else None


def _prepare_pass(
    reader: DocumentReader,
    view: str,
    question: str,
    answer: Located,
    max_tokens: int,
    ranges: Sequence[tuple[int, int]] | None = None,
) -> _ExplanationPass:
    """Build the explanation pass's input, masks as when answering: the document-token `ranges` one pass read
    (a long window), else the view's window around the answer."""
    model = reader.model_for(view)
    module = _qa_module(model)
    tokens = reader.tokens_for(view)
    q_ids = model.tokenizer(question, add_special_tokens=False)["input_ids"]
    ranges = list(ranges or [explanation_window(reader, view, answer.char_span, len(q_ids), max_tokens)])
    read = tokens if len(ranges) == 1 else sub_tokens(tokens, ranges)
    long = model.is_longformer
    mask = answering_mask(reader, model) if long and view == "longformer" else None
    if mask is not None and len(ranges) > 1:
        mask = sub_mask(mask, ranges)
    win = build_input(
        model.tokenizer,
        read,
        ranges[0] if len(ranges) == 1 else (0, len(read)),
        question_ids=q_ids,
        doc_global=mask,
        global_first=reader.plan.global_first and long,
        global_question=long,
    )
    kwargs = model_kwargs(model, win)
    input_ids = kwargs.pop("input_ids")  # (1, L)
    run = _ExplanationPass(model, module, ranges, win, input_ids, kwargs, (0, 0))
    a, b = tokens.tokens_in(*answer.char_span)
    first, last = run.input_positions((a, a + 1)), run.input_positions((max(a, b - 1), max(a, b - 1) + 1))
    if b <= a or first is None or last is None:
        raise ValueError("The answer lies outside the window this view read; nothing to explain.")
    run.answer_positions = (first[0], last[0])
    return run


def _gradient_x_input(run: _ExplanationPass) -> tuple[np.ndarray, float]:
    """One forward + backward pass: d(start + end logit)/d(word embedding) . word embedding per token.

    Runs under the model's arithmetic (bf16 autocast where the CPU or GPU has it natively, see
    `models.compute_dtype`); the embeddings and their gradient stay fp32.

    Returns:
        (token scores (L,) float, signed; the target logit).
    """
    embed = run.module.get_input_embeddings()
    start_pos, end_pos = run.answer_positions
    with (
        _GRADIENT_LOCK,
        autograd_attention(run.module),
        torch.inference_mode(False),
        torch.enable_grad(),
    ):
        emb = embed(run.input_ids).detach().clone().requires_grad_(True)  # (1, L, hidden)
        with run.model.autocast():
            target = _forward_target(run.module, {**run.kwargs, "inputs_embeds": emb}, start_pos, end_pos)[0]
        (grad,) = torch.autograd.grad(target.float(), emb)
        token_scores = (grad * emb).sum(-1)[0].detach().float().cpu().numpy()  # (L,)
    return token_scores, float(target.detach())


def _score_passages(
    run: _ExplanationPass,
    tokens: DocumentTokens,
    spans: Sequence[tuple[int, int]],
    token_scores: np.ndarray,
) -> list[tuple[tuple[int, int], tuple[int, int], float]]:
    """(char span, input positions, summed token score) of every passage inside the window."""
    scored = []
    for a, b in spans:
        pos = run.input_positions(tokens.tokens_in(a, b))
        if pos is not None:
            scored.append(((a, b), pos, float(token_scores[pos[0] : pos[1]].sum())))
    return scored


def explain_answer(
    reader: DocumentReader,
    view: str,
    question: str,
    answer: Located,
    passages: Sequence[tuple[int, int]] | None = None,
    max_tokens: int = EXPLAIN_TOKENS,
    occlusion: int = DEFAULT_OCCLUSION,
    seed: int = 0,
    aggregate: str = "absolute",
    ranges: Sequence[tuple[int, int]] | None = None,
) -> Explanation:
    """Score every passage in the window around one answer by gradient x input (and check with occlusion).

    Args:
        reader: the document, models and strategy (the Longformer's global mask comes from its plan).
        view: "truncated" | "chunked" | "longformer".
        question: the question the answer answers.
        answer: the answer (its char span locates it).
        passages: character spans to score; default `reader.passages.spans`.
        max_tokens: longest input of the pass (question + special tokens + document window).
        occlusion: occlude the top-k passages by gradient and k random others (0: no check).
        seed: which random passages occlusion samples.
        aggregate: "absolute" (sum of the token scores' magnitudes: how much the passage mattered, the
            default; see the module docstring) or "signed" (their sum: positive pushed towards the answer).
        ranges: the document-token ranges the answer's pass read (a long window, `QAResult.read_ranges`): the
            explanation reads the same ones, back to back; None: the window around the answer.
    Returns:
        Explanation with the evidence best first.
    Raises:
        ValueError: the view's model has no QA head, or the answer lies outside what the view read.
    """
    if aggregate not in AGGREGATES:
        raise ValueError(f"Unknown aggregate '{aggregate}': choose one of {', '.join(AGGREGATES)}.")
    run = _prepare_pass(reader, view, question, answer, max_tokens, ranges)
    t0 = time.perf_counter()
    token_scores, target = _gradient_x_input(run)
    seconds = time.perf_counter() - t0
    if aggregate == "absolute":
        token_scores = np.abs(token_scores)
    tokens = reader.tokens_for(view)
    spans = reader.passages.spans if passages is None else passages
    scored = _score_passages(run, tokens, spans, token_scores)
    total = sum(abs(s) for _, _, s in scored) or 1.0
    order = sorted(range(len(scored)), key=lambda i: -scored[i][2])
    lo, hi = run.window
    explanation = Explanation(
        view=view,
        question=question,
        answer=answer,
        evidence=[
            Evidence(**vars(Located.of(reader.document, scored[i][0])), score=scored[i][2] / total)
            for i in order
        ],
        window_tokens=(lo, hi),
        window_chars=tokens.char_span(lo, hi) if hi > lo else (0, 0),
        window_ranges=list(run.ranges),
        target_logit=target,
        seconds=seconds,
    )
    if len(run.ranges) > 1:
        explanation.notes.append(
            f"Explained the same {len(run.ranges)} stretches of the document the reader read in its one pass; "
            "passages between them were not read and get no score."
        )
    if occlusion > 0 and explanation.evidence:
        _occlude(explanation, run, [scored[i][1] for i in order], occlusion, seed)
    return explanation


def _occlude(
    explanation: Explanation,
    run: _ExplanationPass,
    positions: list[tuple[int, int]],
    k: int,
    seed: int,
) -> None:
    """Fill `occlusion` on the top-k and k random other passages; set `occlusion_agrees`.

    Args:
        explanation: the gradient's evidence, best first (`positions[j]` are evidence[j]'s input positions).
        run: the explanation pass (its input, masks and answer positions).
        positions: input positions [p0, p1) of each evidence passage.
        k: top-k by gradient plus k drawn at random from the rest.
        seed: the random draw.
    """
    t0 = time.perf_counter()
    rng = np.random.default_rng(seed)
    n = len(positions)
    rest = np.arange(min(k, n), n)
    sample = list(range(min(k, n))) + sorted(rng.choice(rest, size=min(k, len(rest)), replace=False).tolist())
    tok = run.model.tokenizer
    mask_id = next(t for t in (tok.mask_token_id, tok.unk_token_id, tok.pad_token_id) if t is not None)
    base = explanation.target_logit
    with torch.inference_mode(), run.model.autocast():
        for i in range(0, len(sample), OCCLUSION_BATCH):
            batch = sample[i : i + OCCLUSION_BATCH]
            ids = run.input_ids.repeat(len(batch), 1)  # (b, L)
            for row, j in enumerate(batch):
                p0, p1 = positions[j]
                ids[row, p0:p1] = mask_id
            rep = {key: v.repeat(len(batch), 1) for key, v in run.kwargs.items()}
            logits = _forward_target(run.module, {**rep, "input_ids": ids}, *run.answer_positions)
            for j, d in zip(batch, base - logits.float().cpu().numpy(), strict=True):
                explanation.evidence[j].occlusion = float(d)
    explanation.occlusion_seconds = time.perf_counter() - t0
    best_occluded = max(sample, key=lambda j: explanation.evidence[j].occlusion)
    explanation.occlusion_agrees = best_occluded == 0  # evidence[0] is the gradient's best
    explanation.notes.append(
        f"Occlusion checked {len(sample)} passages (the gradient's top {min(k, n)} and {len(sample) - min(k, n)} "
        f"at random): its strongest passage {'is' if explanation.occlusion_agrees else 'is not'} the gradient's."
    )


def explain(
    reader: DocumentReader,
    question: str,
    results: dict[str, QAResult] | None = None,
    views: Sequence[str] = VIEWS,
    passages: Sequence[tuple[int, int]] | None = None,
    max_tokens: int = EXPLAIN_TOKENS,
    occlusion: int = DEFAULT_OCCLUSION,
) -> dict[str, Explanation]:
    """Evidence for each view's top answer.

    Args:
        reader: the document and models.
        question: the question.
        results: `qa.ask` results to explain (asked here when None).
        views: which views.
        passages: character spans to score (default: the reader's passages).
        max_tokens: longest input of the Longformer's explanation pass.
        occlusion: passages to check by occlusion per answer (see `explain_answer`).
    Returns:
        {view: Explanation} for the views that found an answer and could be explained.
    Raises:
        ValueError: no view could be explained (the last reason, e.g. no QA head).
    """
    if results is None:
        results = ask(reader, question, views=views, n_best=1)
    out: dict[str, Explanation] = {}
    failure: ValueError | None = None
    for view in views:
        result = results.get(view)
        if result is None or result.best is None:
            continue
        try:
            out[view] = explain_answer(
                reader,
                view,
                result.question or question,
                result.best,
                passages=passages,
                max_tokens=max_tokens,
                occlusion=occlusion,
                ranges=result.read_ranges or None,
            )
        except ValueError as exc:  # e.g. a view without a QA head: explain the others
            failure = exc
    if not out and failure is not None:
        raise failure
    return out
