"""The region reader alone at paragraph level: official SQuAD EM/F1 of a QA head on SQuAD paragraphs, per view.

This is the number `finetune --task qa` reports for its held-out articles (the shipped head: EM 49.16 / F1 62.84
on the 6 dev articles in `assets/qa_head/adapter.json`'s `val_articles`), computed the same way (`predict_qa`:
windows of 257 tokens for the embedded model, 384 otherwise, stride 96; the best span over a paragraph's
windows; `squad_scores`), so a new head or a training checkpoint compares to it directly.

Views: for the embedded default the head runs in the 512-token baseline (the MiniLM twin it was trained in:
"chunked") and in the converted Longformer ("longformer", [CLS] and the question global). Within 257-token
windows every token sees every other in both, so the two agree up to float noise; the report's `views_agree`
(the share of questions with the same answer in both) shows it on every run. A folder given as `--model` is
one view (its own type).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from torch import nn

from longformer_core.model.registry import EMBEDDED
from longformer_core.training.finetune import (
    EMBEDDED_QA_TOKENS,
    QAExample,
    load_squad_examples,
    predict_qa,
    squad_scores,
)

VIEW_NOTE = (
    "the embedded views run the same head; within 257-token windows they compute the same function (every token "
    "sees every other), so they agree up to float noise: views_agree is the share of identical answers"
)


@dataclass
class ParagraphReader:
    """One view's QA model for `predict_qa`."""

    module: nn.Module
    tokenizer: object
    longformer: bool  # give [CLS] and the question global attention


def held_out_titles(head_dir: str | Path) -> list[str]:
    """The articles a head (or a checkpoint whose run wrote a card) kept aside: its card's `val_articles`.

    Raises:
        ValueError: the head's card names none (the message says which head to give).
    """
    from longformer_core.model.qa_head import read_qa_head

    titles = read_qa_head(head_dir).card.get("val_articles")
    if not titles:
        raise ValueError(
            f"The head in {head_dir} names no held-out articles (val_articles): give --titles-from a head that "
            "`finetune --val-articles N` trained, e.g. assets/qa_head."
        )
    return list(titles)


def paragraph_readers(
    model: str = EMBEDDED, head: str | Path | None = "default", views: Sequence[str] | None = None
) -> dict[str, ParagraphReader]:
    """{view: reader}: the embedded twin ("chunked") and Longformer ("longformer") with the head merged, or the
    folder `model` (its own QA layer, or `head` merged into it) as its one view.

    Args:
        model: "embedded" or a folder of a QA checkpoint.
        head: a head folder or training checkpoint; "default": the embedded default's (LONGDOC_QA_HEAD or
            assets/qa_head); None: none (a folder model's own QA layer).
        views: which embedded views (default both).
    Raises:
        ValueError: the embedded model without a head, or an unknown view.
    """
    from transformers import AutoTokenizer

    from longformer_core.model.convert import embedded_longformer_dir, embedded_source_dir
    from longformer_core.model.registry import (
        default_device,
        embedded_qa_head,
        load_checkpoint,
        load_span_model,
    )

    device = default_device()
    if head == "default":
        head = embedded_qa_head() if model == EMBEDDED else None
    if model != EMBEDDED:
        if head is None:
            loaded = load_checkpoint(model, device=device, head="qa")
            return {
                _view_of(loaded.is_longformer): ParagraphReader(
                    loaded.model, loaded.tokenizer, loaded.is_longformer
                )
            }
        module = load_span_model(model, Path(head), device, fast_attention=True)
        longformer = module.config.model_type == "longformer"
        return {
            _view_of(longformer): ParagraphReader(module, AutoTokenizer.from_pretrained(model), longformer)
        }
    if head is None:
        raise ValueError("The embedded model has no QA head: give --qa-head (a head folder or a checkpoint).")
    sources = {"chunked": embedded_source_dir(), "longformer": embedded_longformer_dir()}
    unknown = [v for v in views or () if v not in sources]
    if unknown:
        raise ValueError(f"Unknown view(s) {', '.join(unknown)}: choose from {', '.join(sources)}.")
    return {
        view: ParagraphReader(
            load_span_model(sources[view], Path(head), device, fast_attention=view == "longformer"),
            AutoTokenizer.from_pretrained(str(sources[view])),
            view == "longformer",
        )
        for view in views or sources
    }


def _view_of(longformer: bool) -> str:
    return "longformer" if longformer else "chunked"


def sample_questions(examples: list[QAExample], limit: int | None, seed: int) -> list[QAExample]:
    """A seeded sample of `limit` questions in file order (all when `limit` is None or larger)."""
    if limit is None or limit >= len(examples):
        return examples
    keep = sorted(np.random.default_rng(seed).permutation(len(examples))[:limit])
    return [examples[i] for i in keep]


def squad_paragraphs(
    path: str | Path,
    *,
    model: str = EMBEDDED,
    head: str | Path | None = "default",
    titles: Sequence[str] | None = None,
    limit: int | None = None,
    seed: int = 0,
    views: Sequence[str] | None = None,
    max_length: int | None = None,
    stride: int = 96,
    progress: Callable[[str], None] | None = None,
) -> dict:
    """Score a QA head (or a QA checkpoint) on SQuAD paragraphs, per view (see the module docstring).

    Args:
        path: a SQuAD-format file with paragraph contexts.
        model, head, views: see `paragraph_readers`.
        titles: only these articles (e.g. `held_out_titles(head)`).
        limit: a seeded sample of this many questions.
        seed: the sample's seed.
        max_length: tokens per window (default: 257 for the embedded model, else 384: what `finetune` uses).
        stride: overlap of a long paragraph's windows.
        progress: called with a line per view.
    Returns:
        {"questions", "titles", "max_length", "stride", "views": {view: {"em", "f1", "questions", "seconds"}},
         "views_agree" (two views), "note"}.
    Raises:
        ValueError: no question left (the message names the articles asked for).
    """
    try:
        examples = load_squad_examples(path, titles)
    except ValueError:
        if titles is None:
            raise
        raise ValueError(
            f"None of the articles {', '.join(titles)} is in {path}: --titles-from names the articles a head kept "
            "aside from its training file; give that file (e.g. squad-v1.1-dev.paragraphs.json)."
        ) from None
    examples = sample_questions(examples, limit, seed)
    max_length = max_length or (EMBEDDED_QA_TOKENS if model == EMBEDDED else 384)
    readers = paragraph_readers(model, head, views)
    report: dict = {
        "file": str(path),
        "model": model,
        "head": str(head if head != "default" else _default_head(model)),
        "questions": len(examples),
        "titles": list(titles) if titles is not None else None,
        "max_length": max_length,
        "stride": stride,
        "views": {},
    }
    answers = {}
    for view, reader in readers.items():
        t0 = time.perf_counter()
        answers[view] = predict_qa(
            reader.module, reader.tokenizer, examples, reader.longformer, max_length, stride
        )
        seconds = time.perf_counter() - t0
        report["views"][view] = {**squad_scores(answers[view], examples), "seconds": round(seconds, 1)}
        if progress:
            progress(f"{view}: {report['views'][view]}")
    if len(answers) == 2:
        a, b = answers.values()
        report["views_agree"] = round(float(np.mean([x == y for x, y in zip(a, b)])), 4)
        report["note"] = VIEW_NOTE
    return report


def _default_head(model: str) -> str | None:
    from longformer_core.model.registry import embedded_qa_head

    return str(embedded_qa_head()) if model == EMBEDDED else None
