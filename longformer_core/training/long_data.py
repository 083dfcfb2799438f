"""Training data of the long-context readers: whole SQuAD articles and HotpotQA questions, cut into windows.

- SQuAD: each article's paragraphs joined with a blank line (a paragraph-format file such as the complete
  `squad-v1.1-train.paragraphs.json`; an article-level file, whose one context per article is already joined,
  works too); each question's evidence is its own paragraph.
- HotpotQA: a train file (its name says "train") whole; a dev file only the half `hotpot.is_heldout` leaves for
  training. The evidence is the span from the first to the last gold paragraph.

Each question gets a window of `window_tokens` tokens holding its evidence at a seeded random place within its
own document (`plan_training_windows`); the chunked reader reads the same document ranges as 512-token chunks.
Only the plans (document-token ranges and labels) are kept for the whole set; the windows themselves are built
when the loop asks for them (`TrainingWindows`): 90k windows of 2,048 tokens built up front would take gigabytes.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from longformer_core.qa.one_pass import ANSWER_TYPES, pool_mask_of
from longformer_core.reading.encoding import (
    CHUNK_OVERLAP,
    DocumentTokens,
    build_input,
    plan_windows,
    special_template,
    tokenize,
)

WINDOW_TOKENS = 2048  # the Longformer reader's training window (special tokens and question included)
# what the Longformer reader may see global besides [CLS] and the question: strategies that need no user input
DOC_GLOBALS = ("question", "paragraphs", "sentences")
CHUNK_TOKENS = 512  # the chunked reader's chunk length


@dataclass
class LongExample:
    """One question over a long text, with every gold answer span and the text it must see."""

    id: str
    source: str  # "squad" | "hotpot"
    question: str
    text: str
    kind: str  # "span" | "yes" | "no"
    answers: list[tuple[int, int]]  # char spans of the answer (every occurrence for HotpotQA)
    evidence: tuple[int, int]  # char span the window should hold (gold paragraph(s)), when it fits


def _article_questions(article: dict) -> tuple[str, list[tuple[dict, int, tuple[int, int]]]]:
    """(the article's text, [(qa, char offset of the qa's paragraph in that text, the paragraph's char span)]).

    A paragraph-format article's paragraphs are joined with a blank line; an article-level one (one context whose
    qas carry `paragraph_index`) is already joined: its paragraphs are split at blank lines.
    """
    paragraphs = article["paragraphs"]
    if len(paragraphs) == 1 and any("paragraph_index" in qa for qa in paragraphs[0]["qas"]):
        text = paragraphs[0]["context"]
        starts = [0] + [m.end() for m in re.finditer(r"\n\n", text)]
        bounds = list(zip(starts, [s - 2 for s in starts[1:]] + [len(text)]))
        whole = (0, len(text))
        return text, [
            (qa, 0, bounds[qa["paragraph_index"]] if qa.get("paragraph_index") is not None else whole)
            for qa in paragraphs[0]["qas"]
        ]
    text = "\n\n".join(p["context"] for p in paragraphs)
    found, pos = [], 0
    for p in paragraphs:
        found += [(qa, pos, (pos, pos + len(p["context"]))) for qa in p["qas"]]
        pos += len(p["context"]) + 2
    return text, found


def squad_article_examples(path: str | Path, exclude_titles: Sequence[str] = ()) -> list[LongExample]:
    """Questions over whole SQuAD articles, from a paragraph-format or an article-level file.

    Args:
        path: SQuAD-format JSON.
        exclude_titles: articles never to use (the shipped head's held-out dev articles).
    Returns:
        one example per answerable question, its evidence its own paragraph.
    Raises:
        ValueError: the file cannot be read as SQuAD JSON.
    """
    import json

    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"Could not read SQuAD file {path}: {exc}") from exc
    excluded = set(exclude_titles)
    out = []
    for article in data.get("data", []):
        if article.get("title", "") in excluded or not article.get("paragraphs"):
            continue
        text, questions = _article_questions(article)
        for qa, offset, evidence in questions:
            spans = sorted(
                {
                    (offset + a["answer_start"], offset + a["answer_start"] + len(a["text"]))
                    for a in qa.get("answers", [])
                }
            )
            if spans:
                out.append(LongExample(qa["id"], "squad", qa["question"], text, "span", spans, evidence))
    return out


def hotpot_train_examples(path: str | Path, whole: bool | None = None) -> list[LongExample]:
    """The HotpotQA questions to train on, answers found in the text.

    Args:
        path: a HotpotQA file in the official format.
        whole: train on every question (None: when the file's name says "train", the rule `load_squad_examples`
            follows); else only those `hotpot.is_heldout` leaves for training.
    """
    from longformer_core.evaluation.hotpot import is_heldout, load_hotpot

    whole = "train" in Path(path).name if whole is None else whole
    out = []
    for q in load_hotpot(path):
        if not whole and is_heldout(q.id):
            continue
        golds = [q.paragraphs[i] for i in q.gold] or [(0, len(q.text))]
        evidence = (min(a for a, _ in golds), max(b for _, b in golds))
        answer = q.answer.strip()
        if answer.lower() in ("yes", "no"):
            out.append(LongExample(q.id, "hotpot", q.question, q.text, answer.lower(), [], evidence))
            continue
        spans = [m.span() for m in re.finditer(re.escape(answer), q.text)] or [
            m.span() for m in re.finditer(re.escape(answer), q.text, flags=re.IGNORECASE)
        ]
        if spans:
            out.append(LongExample(q.id, "hotpot", q.question, q.text, "span", spans, evidence))
    return out


@dataclass
class TrainWindow:
    """One training input and its labels (positions in the input)."""

    input_ids: list[int]
    token_type_ids: list[int]
    global_attention_mask: list[int]
    pool_mask: list[int]  # [CLS] + question: what the answer-type head pools
    starts: list[int]  # gold start positions (empty for yes/no)
    ends: list[int]
    answer_type: int  # index in ANSWER_TYPES
    doc_range: tuple[int, int]  # document tokens in the window
    example: int  # index of the example


@dataclass
class WindowPlan:
    """What one question's training window holds, in document tokens (a few numbers, not the window)."""

    example: int  # index of the example
    doc_range: tuple[int, int]  # document tokens [start, end) in the window
    gold: list[tuple[int, int]]  # answer token spans inside the range, [first, last] inclusive
    answer_type: int  # index in ANSWER_TYPES


def _window_range(
    n: int, capacity: int, must: tuple[int, int], fallback: tuple[int, int], rng: np.random.Generator
) -> tuple[int, int]:
    """A document-token range of `capacity` tokens holding `must` (else `fallback`) at a random place."""
    if n <= capacity:
        return 0, n
    a, b = must if must[1] - must[0] <= capacity else fallback
    lo, hi = max(0, b - capacity), min(a, n - capacity)
    s = int(rng.integers(lo, hi + 1)) if hi >= lo else max(0, min(a, n - capacity))
    return s, s + capacity


def _n_special(tokenizer) -> int:
    t = special_template(tokenizer)
    return len(t.pair_prefix) + len(t.pair_middle) + len(t.pair_suffix)


def _window(
    tokenizer,
    tokens: DocumentTokens,
    q_ids: list[int],
    doc_range: tuple[int, int],
    gold: Sequence[tuple[int, int]],
    answer_type: int,
    example: int,
    longformer: bool,
    cls_when_outside: bool,
    doc_global: np.ndarray | None = None,
) -> TrainWindow:
    """The TrainWindow of one document range: the gold spans inside it labelled; a span question whose answer is
    outside points at [CLS] when `cls_when_outside` (the chunked reader's SQuAD convention).

    Args:
        tokenizer: the reader's tokenizer.
        tokens: the document's tokens.
        q_ids: question token ids (no special tokens).
        doc_range: document tokens [start, end) the window holds.
        gold: answer token spans [first, last] in the document.
        answer_type: index in ANSWER_TYPES.
        example: index of the example.
        longformer: [CLS] and the question global.
        cls_when_outside: see above.
        doc_global: (len(tokens),) bool, document tokens global as well (Longformer only), or None.
    """
    s, e = doc_range
    win = build_input(
        tokenizer,
        tokens,
        doc_range,
        question_ids=q_ids,
        doc_global=doc_global if longformer else None,
        global_first=longformer,
        global_question=longformer,
    )
    inside = [(a, b) for a, b in gold if s <= a and b < e]
    fallback = [0] if cls_when_outside and answer_type == ANSWER_TYPES.index("span") else []
    return TrainWindow(
        input_ids=win.input_ids[0].tolist(),
        token_type_ids=win.token_type_ids[0].tolist(),
        global_attention_mask=win.global_attention_mask[0].tolist(),
        pool_mask=pool_mask_of(win)[0].tolist(),
        starts=[win.doc_start + a - s for a, _ in inside] or fallback,
        ends=[win.doc_start + b - s for _, b in inside] or fallback,
        answer_type=answer_type,
        doc_range=(s, e),
        example=example,
    )


class WindowPlans:
    """Every question's window plan, with the tokens of every document and question (`plan_training_windows`)."""

    def __init__(
        self, tokenizer, examples: Sequence[LongExample], window_tokens: int, doc_global: str = "question"
    ) -> None:
        self.tokenizer, self.examples, self.window_tokens = tokenizer, examples, window_tokens
        self.doc_global = doc_global  # a strategy whose document tokens the Longformer reader sees global too
        self.plans: list[WindowPlan] = []
        self.tokens: dict[str, DocumentTokens] = {}  # by document text
        self.question_ids: list[np.ndarray] = []  # by example
        self._global_masks: dict[str, np.ndarray | None] = {}  # by document text

    def global_mask(self, text: str) -> np.ndarray | None:
        """The document tokens of `text` that `doc_global` makes global (None when it marks none: "question")."""
        if text not in self._global_masks:
            from longformer_core.documents.loading import text_document
            from longformer_core.reading.strategies import plan_global

            mask = plan_global(self.doc_global, text_document(text), self.tokens[text]).doc_mask
            self._global_masks[text] = mask if mask.any() else None
        return self._global_masks[text]

    def long_window(self, i: int, longformer: bool = True) -> TrainWindow:
        """Plan i's window for the Longformer reader ([CLS], the question and `doc_global`'s document tokens
        global when `longformer`)."""
        plan = self.plans[i]
        ex = self.examples[plan.example]
        q_ids = self.question_ids[plan.example][: self.window_tokens // 4].tolist()
        return _window(
            self.tokenizer,
            self.tokens[ex.text],
            q_ids,
            plan.doc_range,
            plan.gold,
            plan.answer_type,
            plan.example,
            longformer,
            False,
            self.global_mask(ex.text) if longformer else None,
        )

    def chunks(self, i: int, chunk_tokens: int = CHUNK_TOKENS) -> list[TrainWindow]:
        """Plan i's document range cut into the chunked view's windows; a chunk without the answer labels [CLS]
        (position 0) as start and end; every chunk carries the answer type."""
        plan = self.plans[i]
        ex = self.examples[plan.example]
        q_ids = self.question_ids[plan.example][: chunk_tokens // 4].tolist()
        s0, e0 = plan.doc_range
        capacity = chunk_tokens - _n_special(self.tokenizer) - len(q_ids)
        return [
            _window(
                self.tokenizer,
                self.tokens[ex.text],
                q_ids,
                (s0 + cs, s0 + ce),
                plan.gold,
                plan.answer_type,
                plan.example,
                False,
                True,
            )
            for cs, ce in plan_windows(e0 - s0, capacity, CHUNK_OVERLAP)
        ]


def plan_training_windows(
    tokenizer,
    examples: Sequence[LongExample],
    window_tokens: int,
    seed: int = 0,
    doc_global: str = "question",
) -> WindowPlans:
    """One window plan of at most `window_tokens` per example, holding its evidence (or first answer) at a seeded
    random place; examples whose answer cannot be placed are left out.

    Args:
        tokenizer: the readers' tokenizer (both readers must share it: the plans are in its tokens).
        examples: the questions.
        window_tokens: input length, special tokens and question included.
        seed: where in the window the evidence lands.
        doc_global: a global-attention strategy (`reading.strategies`) whose document tokens the Longformer reader
            sees global besides [CLS] and the question ("question": none; "paragraphs": the paper's HotpotQA
            choice, every paragraph's first token).
    """
    if doc_global not in DOC_GLOBALS:
        raise ValueError(f"Unknown document globals '{doc_global}': choose one of {', '.join(DOC_GLOBALS)}.")
    rng = np.random.default_rng(seed)
    out = WindowPlans(tokenizer, examples, window_tokens, doc_global)
    questions = (
        tokenizer([ex.question for ex in examples], add_special_tokens=False)["input_ids"] if examples else []
    )
    out.question_ids = [np.asarray(q, dtype=np.int32) for q in questions]
    n_special = _n_special(tokenizer)
    for i, ex in enumerate(examples):
        if ex.text not in out.tokens:
            out.tokens[ex.text] = tokenize(tokenizer, ex.text)
        tokens = out.tokens[ex.text]
        capacity = window_tokens - n_special - min(len(out.question_ids[i]), window_tokens // 4)
        gold = [tokens.tokens_in(a, b) for a, b in ex.answers]
        gold = [(a, b - 1) for a, b in gold if b > a]
        if ex.kind == "span" and not gold:
            continue
        evidence = tokens.tokens_in(*ex.evidence)
        first = (gold[0][0], gold[0][1] + 1) if gold else evidence
        s, e = _window_range(len(tokens), capacity, evidence, first, rng)
        inside = [(a, b) for a, b in gold if s <= a and b < e]
        if ex.kind == "span" and not inside:
            continue
        out.plans.append(WindowPlan(i, (s, e), inside, ANSWER_TYPES.index(ex.kind)))
    return out


class TrainingWindows(Sequence):
    """The items one reader trains on, built when asked for: item i is [plan i's window] for the Longformer
    reader, or plan i's chunks for the chunked reader (`chunk_tokens` set), so both take the same steps."""

    def __init__(self, plans: WindowPlans, chunk_tokens: int | None = None, longformer: bool = True) -> None:
        self.plans, self.chunk_tokens, self.longformer = plans, chunk_tokens, longformer

    def __len__(self) -> int:
        return len(self.plans.plans)

    def __getitem__(self, i: int) -> list[TrainWindow]:
        if not 0 <= i < len(self):
            raise IndexError(i)
        if self.chunk_tokens is None:
            return [self.plans.long_window(i, self.longformer)]
        return self.plans.chunks(i, self.chunk_tokens)

    def __iter__(self) -> Iterator[list[TrainWindow]]:
        return (self[i] for i in range(len(self)))


def build_windows(
    tokenizer,
    examples: Sequence[LongExample],
    window_tokens: int,
    seed: int = 0,
    longformer: bool = True,
    doc_global: str = "question",
) -> list[TrainWindow]:
    """Every example's Longformer window, built now (tests and benchmarks; training builds them as it goes)."""
    plans = plan_training_windows(tokenizer, examples, window_tokens, seed, doc_global)
    return [plans.long_window(i, longformer) for i in range(len(plans.plans))]
