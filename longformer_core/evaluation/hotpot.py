"""HotpotQA (distractor setting) evaluation: truncated vs chunked vs Longformer on multi-hop questions.

Input: the official HotpotQA format, a JSON list of `{"_id", "question", "answer", "supporting_facts":
[[title, sentence index], ...], "context": [[title, [sentences]], ...], "type"}`. Each question's document
is its paragraphs in the given order, each as a title line followed by its sentences joined as given,
with a blank line between paragraphs (the layout of the shared `hotpotqa-dev-distractor.squad.json`).

Two ways of reading are scored, each with the three views:
- **retrieve-then-read** (`qa.ask`, what the app does): truncated reads its first 512 tokens; chunked reads
  regions of 300 tokens around the passages its hybrid retrieval ranked best, and so does the Longformer, unless
  it has a long reader: then one pass over the whole document or its best passages with their neighbours.
- **one-pass** (`one_pass`): the Longformer reads the whole document in one pass with the question
  global (retrieved regions of >= 2,048 tokens when it does not fit in 4,096); chunked reads every
  512-token chunk, best span wins; truncated reads the first chunk.

For each view: answer EM / F1 with the official normalisation (yes/no included: a view that cannot say
yes or no scores 0 on those), the same split by question `type` and by the distance between the two gold
paragraphs (document tokens from the start of the first to the end of the second, bucketed), the share
of questions whose two gold paragraphs the view held together in one forward pass, and seconds per
question (everything the view computed for it, the document's encoding included).

The fixed split shared with QA-head training: a dev question is HELD OUT (never trained on) iff
`int(sha256(_id), 16) % 2 == 0` (`is_heldout`): 205 of the 381 questions of `hotpotqa-dev-distractor.json` and
272 of the 539 of `hotpotqa-dev-distractor.more.json` (give both files to score the 477 together); the others
may be trained on (`finetune` and `finetune-long` train only on those, and on the train file whole).
"""

from __future__ import annotations

import argparse
import collections
import hashlib
import json
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from longformer_core.documents import text_document
from longformer_core.evaluation.squad import exact_match, f1_score
from longformer_core.model.qa_head import load_answer_type_head
from longformer_core.model.registry import ModelPair
from longformer_core.qa.one_pass import SpanModel, read_chunks, read_one_pass
from longformer_core.reading.encoding import VIEWS, tokenize

METHODS = ("retrieve-then-read", "one-pass")
DISTANCE_BUCKETS = ((0, 512), (512, 1024), (1024, 2048), (2048, None))


def is_heldout(qid: str) -> bool:
    """Whether a HotpotQA question is held out for evaluation (never trained on): sha256(_id) is even.

    The rule is fixed and shared by every training and evaluation command of the project; do not change it.
    """
    return int(hashlib.sha256(qid.encode("utf-8")).hexdigest(), 16) % 2 == 0


@dataclass
class HotpotQuestion:
    """One HotpotQA question with its document built as the module docstring says."""

    id: str
    question: str
    answer: str
    type: str  # "bridge" | "comparison" (the shared file also has "bridge/comparison-unknown")
    text: str  # the document: title line + text per paragraph, blank line between
    paragraphs: list[tuple[int, int]]  # char span of each paragraph (title line included)
    titles: list[str]
    gold: list[int]  # indices of the supporting paragraphs

    @property
    def yes_no(self) -> bool:
        return self.answer.strip().lower() in ("yes", "no")


def build_document(context: Sequence[Sequence]) -> tuple[str, list[tuple[int, int]]]:
    """HotpotQA context [[title, [sentences]], ...] -> (document text, char span of each paragraph)."""
    pieces, spans, pos = [], [], 0
    for title, sentences in context:
        body = "".join(sentences).strip()
        piece = f"{str(title).strip()}\n{body}"
        if pieces:
            pos += 2  # the blank line
        spans.append((pos, pos + len(piece)))
        pieces.append(piece)
        pos += len(piece)
    return "\n\n".join(pieces), spans


def load_hotpot(path: str | Path) -> list[HotpotQuestion]:
    """Read a HotpotQA file in the official format (a JSON list of questions; see the module docstring).

    Raises:
        ValueError: the file is missing, not JSON, or not in the official format.
    """
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"Could not read HotpotQA file {path}: {exc}") from exc
    if isinstance(data, dict) and "data" in data:
        raise ValueError(
            f"{path} is in SQuAD format; give the official HotpotQA file (a JSON list of questions "
            "with _id, question, answer, supporting_facts, context)."
        )
    if not isinstance(data, list) or not data:
        raise ValueError(f"{path} holds no HotpotQA questions (expected a JSON list).")
    out = []
    for i, q in enumerate(data):
        missing = [k for k in ("_id", "question", "answer", "supporting_facts", "context") if k not in q]
        if missing:
            raise ValueError(
                f"{path}: question {i} lacks {', '.join(missing)}: is it the official HotpotQA format?"
            )
        text, spans = build_document(q["context"])
        titles = [str(t).strip() for t, _ in q["context"]]
        gold = sorted(
            {titles.index(str(t).strip()) for t, _ in q["supporting_facts"] if str(t).strip() in titles}
        )
        out.append(
            HotpotQuestion(
                q["_id"], q["question"], str(q["answer"]), q.get("type", "unknown"), text, spans, titles, gold
            )
        )
    return out


def distance_bucket(tokens: int) -> str:
    for lo, hi in DISTANCE_BUCKETS:
        if hi is None or tokens < hi:
            return f"{lo}-{hi}" if hi is not None else f"{lo}+"
    raise AssertionError("unreachable")


def _answer_scores(prediction: str, gold: str) -> dict[str, float]:
    return {"em": exact_match(prediction, gold), "f1": f1_score(prediction, gold)}


def _retrieve_then_read(pair: ModelPair, q: HotpotQuestion, strategy: str) -> dict[str, dict]:
    """Today's app path (`qa.ask`) for the three views: answer, windows read, seconds."""
    from longformer_core.qa.answering import (
        ask,
        candidate_regions,
        long_window_capacity,
        long_window_ranges,
        rank_passages,
    )
    from longformer_core.reading.document_reading import DocumentReader
    from longformer_core.reading.encoding import view_windows

    reader = DocumentReader(pair, text_document(q.text, q.id), strategy=strategy)
    out = {}
    for view, result in ask(reader, q.question, n_best=1).items():
        model = reader.model_for(view)
        n_q = len(model.tokenizer(q.question, add_special_tokens=False)["input_ids"])
        if result.method == "retrieve-then-read":
            # the same regions `ask` read: the ranking is deterministic and the passes are cached
            passes = [[r] for r in candidate_regions(reader, rank_passages(reader, q.question, view), view)]
        elif result.method == "long-window":  # one pass over these ranges
            ranking = rank_passages(reader, q.question, view)
            passes = [long_window_ranges(reader, ranking, view, long_window_capacity(model, n_q))]
        elif result.method == "span" or view == "truncated":
            passes = [
                [w] for w in view_windows(model, model.tokenizer, len(reader.tokens_for(view)), view, n_q)
            ]
        else:  # sentences picked from the view's pass over the document
            passes = [[w] for w in reader.encoded(view).windows]
        best = result.best
        out[view] = {
            "answer": best.text if best else "",
            "passes": passes,
            "seconds": result.seconds + result.encode_seconds,
        }
    return out


def _one_pass(
    readers: dict[str, SpanModel], pair: ModelPair, q: HotpotQuestion, strategy: str
) -> dict[str, dict]:
    """The one-pass reader for the Longformer (the question global, and the document tokens `strategy` marks);
    every chunk (chunked) and the first chunk (truncated)."""
    from longformer_core.reading.strategies import plan_global

    out = {}
    t0 = time.perf_counter()
    long_tokens = tokenize(pair.longformer.tokenizer, q.text)
    document = text_document(q.text, q.id)
    doc_global = plan_global(strategy, document, long_tokens).doc_mask
    trained = readers["longformer"].reader_globals  # what the long reader saw global in training stays global
    if trained != "question":
        doc_global = doc_global | plan_global(trained, document, long_tokens).doc_mask
    t_tok = time.perf_counter() - t0
    base_tokens = long_tokens if pair.same_tokenizer else tokenize(pair.baseline.tokenizer, q.text)
    for view in VIEWS:
        if view == "longformer":
            result = read_one_pass(
                readers["longformer"], long_tokens, q.text, q.question, doc_global=doc_global
            )
        else:
            result = read_chunks(
                readers["chunked"], base_tokens, q.text, q.question, truncated=view == "truncated"
            )
        out[view] = {
            "answer": result.text,
            "passes": result.passes,
            "seconds": result.seconds + t_tok,
            "kind": result.kind,
        }
    return out


def one_pass_readers(
    pair: ModelPair, long_head: str | Path | None = None, chunk_head: str | Path | None = None
) -> dict[str, SpanModel]:
    """SpanReaders for the one-pass method: the pair's QA readers, or the given trained heads.

    Args:
        pair: the models (the embedded default with its QA head, or a Longformer QA checkpoint).
        long_head: folder of a head trained for the Longformer (`finetune-long` writes `long/`), or None.
        chunk_head: folder of a head trained for the 512-token baseline (`finetune-long` writes `chunked/`).
    """
    from longformer_core.model.registry import EMBEDDED, embedded_qa_head, load_span_model

    readers = {}
    for key, model, head in (
        ("longformer", pair.longformer, long_head),
        ("chunked", pair.baseline, chunk_head),
    ):
        module = None
        if head is not None:
            if pair.longformer.name != EMBEDDED:
                raise ValueError(
                    "--long-head / --chunk-head are heads for the embedded default; use --model embedded."
                )
            from longformer_core.model.convert import embedded_longformer_dir, embedded_source_dir

            source = embedded_longformer_dir() if key == "longformer" else embedded_source_dir()
            module = load_span_model(source, Path(head), model.device, fast_attention=key == "longformer")
        head_dir = (
            Path(head)
            if head is not None
            else (embedded_qa_head() if pair.longformer.name == EMBEDDED else None)
        )
        hidden = model.encoder.config.hidden_size
        answer_type = load_answer_type_head(head_dir, hidden) if head_dir is not None else None
        readers[key] = SpanModel.of(model, answer_type=answer_type, module=module)
        if head is not None and key == "longformer":
            from longformer_core.model.qa_head import read_qa_head

            readers[key].reader_globals = str(read_qa_head(head).card.get("doc_global", "question"))
        if answer_type is not None:
            answer_type.to(model.device)
    return readers


def _questions_of(paths: list[str | Path], heldout: bool, limit: int | None) -> list[HotpotQuestion]:
    """The questions of every file, only the held-out ones when `heldout`, the first `limit`.

    Raises:
        ValueError: `heldout` with a train file (trained on whole: nothing in it is held out).
    """
    if heldout and any("train" in Path(p).name for p in paths):
        raise ValueError(
            "--heldout keeps aside half of the dev files; a train file is trained on whole, so none of its questions "
            "is held out: give the dev files (hotpotqa-dev-distractor.json, hotpotqa-dev-distractor.more.json)."
        )
    questions = [q for p in paths for q in load_hotpot(p)]
    if heldout:
        questions = [q for q in questions if is_heldout(q.id)]
    return questions[:limit] if limit is not None else questions


def evaluate_hotpot(
    pair: ModelPair,
    path: str | Path | Sequence[str | Path],
    limit: int | None = None,
    heldout: bool = False,
    methods: Sequence[str] = METHODS,
    strategy: str = "question",
    long_head: str | Path | None = None,
    chunk_head: str | Path | None = None,
    progress: Callable[[str], None] | None = None,
    rows_out: str | Path | None = None,
) -> dict:
    """Score the views on HotpotQA questions (see the module docstring).

    Args:
        pair: the models.
        path: HotpotQA file(s) in the official format (several are scored as one set, e.g. both shared dev files).
        limit: the first N questions (after the held-out filter).
        heldout: only the questions `is_heldout` keeps aside (never trained on); refused for a train file (its
            name says "train"), which training uses whole.
        methods: "retrieve-then-read" and/or "one-pass".
        strategy: the Longformer's global-attention strategy (one-pass: the document tokens it marks are global
            besides the question and those the long reader saw global in training, `finetune-long --doc-global`).
        long_head, chunk_head: trained heads for the one-pass readers (default: the pair's QA readers).
        progress: called with a line of text every few questions.
        rows_out: append each question's row to this JSON-lines file as soon as it is scored (a run
            stopped early can still be summarised: `summarise(rows, methods)`).
    Returns:
        {"files", "heldout", "questions", "by_type_count", method: {view: metrics}} where metrics holds em, f1,
        by_type, by_answer (span / yes-no), by_gold_distance, gold_together, seconds_per_question.
    """
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ValueError(f"Unknown method(s) {', '.join(unknown)}: choose from {', '.join(METHODS)}.")
    paths = [path] if isinstance(path, (str, Path)) else list(path)
    questions = _questions_of(paths, heldout, limit)
    readers = one_pass_readers(pair, long_head, chunk_head) if "one-pass" in methods else {}
    rows = []
    t_start = time.perf_counter()
    for n, q in enumerate(questions):
        tokens = tokenize(pair.longformer.tokenizer, q.text)
        gold_ranges = [tokens.tokens_in(*q.paragraphs[i]) for i in q.gold]
        distance = (max(b for _, b in gold_ranges) - min(a for a, _ in gold_ranges)) if gold_ranges else 0
        row = {
            "id": q.id,
            "type": q.type,
            "answer_kind": "yes/no" if q.yes_no else "span",
            "distance": distance_bucket(distance),
            "tokens": len(tokens),
        }
        for method in methods:
            views = (
                _retrieve_then_read(pair, q, strategy)
                if method == "retrieve-then-read"
                else _one_pass(readers, pair, q, strategy)
            )
            for view, got in views.items():
                together = len(gold_ranges) >= 2 and any(
                    all(any(s <= a and b <= e for s, e in one) for a, b in gold_ranges)
                    for one in got["passes"]
                )
                row[f"{method}/{view}"] = {
                    **_answer_scores(got["answer"], q.answer),
                    "together": float(together),
                    "seconds": got["seconds"],
                    "answer": got["answer"],
                }
        rows.append(row)
        if rows_out is not None:
            with open(rows_out, "a", encoding="utf-8") as f:
                f.write(json.dumps(row) + "\n")
        if progress and ((n + 1) % 10 == 0 or n + 1 == len(questions)):
            progress(f"{n + 1}/{len(questions)} questions, {time.perf_counter() - t_start:.0f} s")
    return {"files": [str(p) for p in paths], "heldout": heldout, **summarise(rows, methods)}


def _metrics(rows: list[dict], key: str) -> dict:
    if not rows:
        return {"questions": 0}
    return {
        "questions": len(rows),
        "em": round(100 * float(np.mean([r[key]["em"] for r in rows])), 2),
        "f1": round(100 * float(np.mean([r[key]["f1"] for r in rows])), 2),
    }


def summarise(rows: list[dict], methods: Sequence[str]) -> dict:
    """The report of `evaluate_hotpot` from its per-question rows."""
    report: dict = {
        "questions": len(rows),
        "by_type_count": dict(collections.Counter(r["type"] for r in rows)),
        "tokens_median": int(np.median([r["tokens"] for r in rows])) if rows else 0,
        "tokens_max": max((r["tokens"] for r in rows), default=0),
    }
    for method in methods:
        report[method] = {}
        for view in VIEWS:
            key = f"{method}/{view}"
            m = _metrics(rows, key)
            m.pop("questions", None)
            for field, name in (
                ("type", "by_type"),
                ("answer_kind", "by_answer"),
                ("distance", "by_gold_distance"),
            ):
                groups = sorted({r[field] for r in rows})
                m[name] = {g: _metrics([r for r in rows if r[field] == g], key) for g in groups}
            m["gold_together"] = round(float(np.mean([r[key]["together"] for r in rows])), 4) if rows else 0.0
            m["seconds_per_question"] = (
                round(float(np.mean([r[key]["seconds"] for r in rows])), 3) if rows else 0.0
            )
            report[method][view] = m
    return report


# --------------------------------------------------------------------------------------------------
# Command line: python -m longformer_core evaluate hotpotqa FILE ...


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The options of `evaluate hotpotqa` (the model options come from __main__)."""
    p.add_argument(
        "path", nargs="+", help="HotpotQA file(s) in the official format (a JSON list of questions each)"
    )
    p.add_argument("--limit", type=int, default=None, help="only the first N questions (after --heldout)")
    p.add_argument(
        "--heldout",
        action="store_true",
        help="only the questions kept aside from training: sha256(_id) even (hotpot.is_heldout)",
    )
    p.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    p.add_argument(
        "--long-head", default=None, help="one-pass: a head trained for the Longformer (finetune_long)"
    )
    p.add_argument("--chunk-head", default=None, help="one-pass: a head trained for the chunked reader")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--rows", default=None, help="also append every question's scores to this JSON-lines file")


def run_command(args: argparse.Namespace, pair: ModelPair) -> int:
    """Run `evaluate hotpotqa` and print the report (JSON) on stdout; progress goes to stderr."""
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    report = evaluate_hotpot(
        pair,
        args.path,
        limit=args.limit,
        heldout=args.heldout,
        methods=args.methods,
        strategy=args.strategy,
        long_head=args.long_head,
        chunk_head=args.chunk_head,
        rows_out=args.rows,
        progress=lambda msg: print(msg, file=sys.stderr, flush=True),
    )
    print(json.dumps(report, indent=None if args.json else 2))
    return 0
