"""WikiHop (QAngaroo) candidate selection, a taste: truncated vs chunked vs Longformer reading the supports.

Input: a JSON list of records `{"id", "query", "candidates", "answer", "supports"}` (the official format; the
shared `wikihop-dev.first28.json` and `wikihop-train.first22.json`). The query "relation subject" (e.g.
"country_of_citizenship frédéric chopin") becomes the question "frédéric chopin: country of citizenship?"; the
document is the supports joined with blank lines.

Candidates are chosen with the QA span reader as it is (nothing trained for WikiHop; the paper trains a candidate
head): every case-insensitive whole-word mention of a candidate in the text a view read is scored by the reader's
start logit at its first token plus the end logit at its last (the span score of `best_spans`); a candidate
scores its best mention, and the best candidate is the answer (a view that read no mention of any candidate
answers nothing, which counts wrong).

Views: truncated reads the baseline's first 512-token chunk; chunked every 512-token chunk (a score from any
chunk competes, as the chunked view's best span wins); longformer the whole document in one pass with [CLS] and
the question global (`read_one_pass`'s regions when longer than 4,096 tokens). Reported per view: accuracy,
`answer_read` (the share of records whose answer had a mention in what the view read: the most it could get) and
seconds per record, with `chance` (the mean of 1 / number of candidates). 50 shared records are a taste of the
format, not a score to tune.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from longformer_core.model.registry import ModelPair
from longformer_core.qa.one_pass import (
    ONE_PASS_TOKENS,
    SpanModel,
    select_regions,
    sub_tokens,
    window_logits,
)
from longformer_core.reading.encoding import (
    VIEWS,
    DocumentTokens,
    tokenize,
    tokenizer_call,
    view_windows,
    window_capacity,
)


@dataclass
class WikiHopRecord:
    id: str
    question: str  # built from the query (see the module docstring)
    candidates: list[str]
    answer: str
    text: str  # the supports, blank line between


def question_of(query: str) -> str:
    """ "country_of_citizenship frédéric chopin" -> "frédéric chopin: country of citizenship?"."""
    relation, _, subject = query.strip().partition(" ")
    return f"{subject}: {relation.replace('_', ' ')}?" if subject else f"{relation.replace('_', ' ')}?"


def load_wikihop(path: str | Path) -> list[WikiHopRecord]:
    """Read WikiHop records (see the module docstring).

    Raises:
        ValueError: the file is missing, not JSON, or not in the WikiHop format (the message says what lacks).
    """
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"Could not read WikiHop file {path}: {exc}") from exc
    if not isinstance(data, list) or not data:
        raise ValueError(f"{path} holds no WikiHop records (expected a JSON list).")
    out = []
    for i, r in enumerate(data):
        missing = [k for k in ("query", "candidates", "answer", "supports") if k not in r]
        if missing:
            raise ValueError(
                f"{path}: record {i} lacks {', '.join(missing)}: is it the WikiHop (QAngaroo) format?"
            )
        text = "\n\n".join(str(s).strip() for s in r["supports"])
        out.append(
            WikiHopRecord(
                str(r.get("id", i)), question_of(r["query"]), list(r["candidates"]), r["answer"], text
            )
        )
    return out


def mentions(text: str, candidate: str) -> list[tuple[int, int]]:
    """Char spans of the case-insensitive, whole-word occurrences of `candidate` in `text`."""
    pattern = r"(?<!\w)" + re.escape(candidate.strip()) + r"(?!\w)"
    return [m.span() for m in re.finditer(pattern, text, flags=re.IGNORECASE)] if candidate.strip() else []


def mention_tokens(tokens: DocumentTokens, spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """[first, last] token of each char span `tokens` holds whole (a span outside the read regions is dropped)."""
    out = []
    for a, b in spans:
        t0, t1 = tokens.tokens_in(a, b)
        if t1 > t0 and tokens.offsets[t0, 0] <= a and tokens.offsets[t1 - 1, 1] >= b:
            out.append((t0, t1 - 1))
    return out


def score_candidates(
    start: np.ndarray,
    end: np.ndarray,
    window: tuple[int, int],
    candidate_mentions: dict[str, list[tuple[int, int]]],
    scores: dict[str, float],
) -> None:
    """Raise each candidate's score to its best mention inside `window` in one pass's logits.

    Args:
        start, end: (e - s,) start and end logits of the window's tokens.
        window: the token range [s, e) the logits cover.
        candidate_mentions: {candidate: [(first, last) token]} in the same token space.
        scores: {candidate: best score so far}, updated in place.
    """
    s, e = window
    for candidate, spans in candidate_mentions.items():
        for a, b in spans:
            if s <= a and b < e:
                scores[candidate] = max(scores.get(candidate, -np.inf), float(start[a - s] + end[b - s]))


def _view_scores(
    reader: SpanModel, tokens: DocumentTokens, record: WikiHopRecord, view: str
) -> dict[str, float]:
    """{candidate: score} for the candidates with a mention in what `view` read (see the module docstring)."""
    model = reader.model
    q_ids = tokenizer_call(model.tokenizer, record.question, add_special_tokens=False)["input_ids"]
    if view == "longformer":
        capacity = window_capacity(
            model.limited_to(min(ONE_PASS_TOKENS, model.max_tokens)), model.tokenizer, len(q_ids)
        )
        ranges = select_regions(tokens, record.text, record.question, capacity)
        space = sub_tokens(tokens, ranges) if ranges != [(0, len(tokens))] else tokens
        windows = [(0, len(space))]
    else:
        space, windows = tokens, view_windows(model, model.tokenizer, len(tokens), view, len(q_ids))
    found = {c: mention_tokens(space, mentions(record.text, c)) for c in record.candidates}
    scores: dict[str, float] = {}
    for window in windows:
        start, end, _ = window_logits(reader, space, window, q_ids)
        score_candidates(start, end, window, found, scores)
    return scores


@torch.inference_mode()
def evaluate_wikihop(
    pair: ModelPair,
    path: str | Path,
    limit: int | None = None,
    long_head: str | Path | None = None,
    chunk_head: str | Path | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict:
    """Candidate accuracy per view on WikiHop records (see the module docstring).

    Args:
        pair: the models (the embedded default with its QA head, or a Longformer QA checkpoint).
        path: WikiHop JSON.
        limit: the first N records.
        long_head, chunk_head: trained heads for the Longformer and the 512-token reader (`finetune-long`).
        progress: called with a line every 10 records.
    Returns:
        {"records", "chance", "candidates_median", "tokens_median", "tokens_max", "question_form",
         view: {"accuracy", "answer_read", "seconds_per_record"}}.
    """
    from longformer_core.evaluation.hotpot import one_pass_readers

    records = load_wikihop(path)[:limit]
    readers = one_pass_readers(pair, long_head, chunk_head)
    rows, t_start = [], time.perf_counter()
    for n, record in enumerate(records):
        long_tokens = tokenize(pair.longformer.tokenizer, record.text)
        base_tokens = long_tokens if pair.same_tokenizer else tokenize(pair.baseline.tokenizer, record.text)
        row = {"tokens": len(long_tokens), "candidates": len(record.candidates)}
        for view in VIEWS:
            t0 = time.perf_counter()
            reader = readers["longformer" if view == "longformer" else "chunked"]
            scores = _view_scores(reader, long_tokens if view == "longformer" else base_tokens, record, view)
            prediction = max(scores, key=scores.get) if scores else ""
            row[view] = {
                "right": float(prediction == record.answer),
                "answer_read": float(record.answer in scores),
                "seconds": time.perf_counter() - t0,
            }
        rows.append(row)
        if progress and ((n + 1) % 10 == 0 or n + 1 == len(records)):
            progress(f"{n + 1}/{len(records)} records, {time.perf_counter() - t_start:.0f} s")
    return _summary(rows, records)


def _summary(rows: list[dict], records: list[WikiHopRecord]) -> dict:
    report: dict = {
        "records": len(rows),
        "chance": round(float(np.mean([1 / max(1, len(r.candidates)) for r in records])), 4) if rows else 0.0,
        "candidates_median": float(np.median([r["candidates"] for r in rows])) if rows else 0.0,
        "tokens_median": int(np.median([r["tokens"] for r in rows])) if rows else 0,
        "tokens_max": max((r["tokens"] for r in rows), default=0),
        "question_form": "<subject>: <relation words>?",
    }
    for view in VIEWS:
        report[view] = {
            "accuracy": round(float(np.mean([r[view]["right"] for r in rows])), 4) if rows else 0.0,
            "answer_read": round(float(np.mean([r[view]["answer_read"] for r in rows])), 4) if rows else 0.0,
            "seconds_per_record": round(float(np.mean([r[view]["seconds"] for r in rows])), 3)
            if rows
            else 0.0,
        }
    return report


# --------------------------------------------------------------------------------------------------
# Command line: python -m longformer_core evaluate wikihop FILE ...


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The options of `evaluate wikihop` (the model options come from cli/evaluate.py)."""
    p.add_argument("path", help="WikiHop JSON (a list of {query, candidates, answer, supports})")
    p.add_argument("--limit", type=int, default=None, help="only the first N records")
    p.add_argument("--long-head", default=None, help="a head trained for the Longformer (finetune-long)")
    p.add_argument("--chunk-head", default=None, help="a head trained for the chunked reader")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")


def run_command(args: argparse.Namespace, pair: ModelPair) -> int:
    """Run `evaluate wikihop` and print the report (JSON) on stdout; progress goes to stderr."""
    if args.threads:
        torch.set_num_threads(args.threads)
    report = evaluate_wikihop(
        pair,
        args.path,
        limit=args.limit,
        long_head=args.long_head,
        chunk_head=args.chunk_head,
        progress=lambda msg: print(msg, file=sys.stderr, flush=True),
    )
    print(json.dumps(report, indent=None if args.json else 2))
    return 0
