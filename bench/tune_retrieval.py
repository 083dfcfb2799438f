"""Choose the hybrid-retrieval fusion weights and the reader/retrieval balance on shared data, in one run.

    .venv/bin/python bench/tune_retrieval.py --squad ../shared/data/squad/squad-v1.1-train.first12.articles.json \
        --per-article 12 --pdf ../shared/data/pdfs/nist_sp800-61r2.pdf \
        --questions ../shared/data/pdfs/nist_sp800-61r2.questions.json --json

Stage 1 (signals only): for every question and view (chunked, Longformer), the three raw signals over the
passages; a grid over the lexical and contextual weights (dense fixed at 1) scores the top passage: for SQuAD,
it holds a gold answer inside the gold paragraph; for the PDF, it lies on a gold page. Stage 2 (the reader):
with the best weights, the reader's candidate spans over the retrieved regions; a grid over the retrieval
weight (span score + w x fused score of its passage) scores F1 and sentence hit (SQuAD) or page hit and
answer hit (PDF). Use articles the QA head never trained on only if you accept tuning on them; the shipped
weights were chosen on the SQuAD *train* articles and the NIST guide (docs/results.md).
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from longformer_core.documents import load_path, text_document
from longformer_core.evaluation.squad import (
    _paragraph_range,
    _sentence_text,
    answer_hit,
    f1_score,
    load_pdf_questions,
    load_squad_articles,
    normalize_answer,
)
from longformer_core.model.registry import load_models
from longformer_core.qa import answering as qa
from longformer_core.qa.span_reading import span_candidates
from longformer_core.reading.document_reading import DocumentReader
from longformer_core.reading.retrieval import fuse

VIEWS = ("chunked", "longformer")
LEXICAL = (0.0, 0.25, 0.5, 1.0)
CONTEXT = (0.0, 0.25, 0.5, 1.0)
RETRIEVAL = (0.0, 1.0, 2.0, 2.5, 3.0, 3.5, 4.0, 5.0, 100.0)


def squad_items(pair, path: str, per_article: int, seed: int, articles: int | None = None):
    """(kind, reader, question, judge) for sampled questions; judge(span) -> {"hit", "f1", ...}."""
    rng = np.random.default_rng(seed)
    for art in load_squad_articles(path)[:articles]:
        reader = DocumentReader(pair, text_document(art["context"], art["title"]), strategy="question")
        for i in sorted(rng.permutation(len(art["qas"]))[:per_article]):
            q = art["qas"][i]
            pa, pb = _paragraph_range(art, q)
            golds = [a["text"] for a in q["answers"]]
            norm = [normalize_answer(g) for g in golds]

            def judge(span, reader=reader, pa=pa, pb=pb, golds=golds, norm=norm) -> dict:
                text = reader.document.text[span[0] : span[1]]
                hit = pa <= span[0] < pb and any(
                    g and g in normalize_answer(_sentence_text(reader, span)) for g in norm
                )
                return {"hit": float(hit), "f1": max(f1_score(text, g) for g in golds)}

            yield "squad", reader, q["question"], judge


def pdf_items(pair, pdf: str, questions: str):
    reader = DocumentReader(pair, load_path(pdf, page_time_budget_s=60.0), strategy="question")
    for q in load_pdf_questions(questions):

        def judge(span, reader=reader, q=q) -> dict:
            text = reader.document.text[span[0] : span[1]]
            return {
                "hit": float(reader.document.page_of(span[0]) in q["pages"]),
                "f1": f1_score(text, q["answer"]),
                "answer_hit": answer_hit(text, q["answer"]),
            }

        yield "pdf", reader, q["question"], judge


def fusion_grid(items: list) -> list[dict]:
    """Stage 1: every (lexical, context) weight pair scored by the top passage's hit, best first."""
    rows = []
    for kind, reader, question, judge in items:
        row = {"kind": kind}
        for view in VIEWS:
            qa.prepare(reader, view)
            signals, seen = qa.passage_signals(reader, question, view)
            row[view] = (signals, seen, [judge(span)["hit"] for span in reader.passages.spans])
        rows.append(row)
    grid = []
    for wl, wc in itertools.product(LEXICAL, CONTEXT):
        weights = {"lexical": wl, "dense": 1.0, "context": wc}
        scores = {}
        for kind in sorted({r["kind"] for r in rows}):
            for view in VIEWS:
                hits = [
                    r[view][2][int(fuse(r[view][0], r[view][1], weights).order[0])]
                    for r in rows
                    if r["kind"] == kind
                ]
                scores[f"{kind}:{view}"] = round(float(np.mean(hits)), 4)
        grid.append(
            {
                "weights": weights,
                "top_passage_hit": scores,
                "mean": round(float(np.mean(list(scores.values()))), 4),
            }
        )
    grid.sort(key=lambda g: -g["mean"])
    return grid


def balance_grid(items: list, best: dict[str, float]) -> list[dict]:
    """Stage 2: the reader's candidates with fusion weights `best`, scored for every retrieval weight."""
    cands = []
    for kind, reader, question, judge in items:
        row = {"kind": kind}
        for view in VIEWS:
            ranking = qa.rank_passages(reader, question, view, best)
            regions = qa.candidate_regions(reader, ranking, view)
            located, _, _ = span_candidates(
                reader, question, view, 10, regions=regions, ranking=ranking, retrieval_weight=0.0
            )
            row[view] = [
                (score, float(ranking.fused[p]) if p >= 0 else 0.0, judge(span)) for score, span, p in located
            ]
        cands.append(row)
    balance = []
    for w in RETRIEVAL:
        scores = {}
        for kind in sorted({r["kind"] for r in cands}):
            for view in VIEWS:
                picked = [
                    max(r[view], key=lambda c: c[0] + w * c[1])[2]
                    for r in cands
                    if r["kind"] == kind and r[view]
                ]
                for metric in picked[0] if picked else {}:
                    scores[f"{kind}:{view}:{metric}"] = round(float(np.mean([p[metric] for p in picked])), 4)
        balance.append({"retrieval_weight": w, **scores})
    return balance


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--squad", help="SQuAD-format file with article-level contexts")
    parser.add_argument("--per-article", type=int, default=12)
    parser.add_argument("--articles", type=int, default=None, help="only the first N articles")
    parser.add_argument("--pdf")
    parser.add_argument("--questions")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--weights",
        help="stage 2 with these fusion weights instead of stage 1's best, e.g. lexical=0.25,dense=1,context=0.25",
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    pair = load_models("embedded")
    items = []
    if args.squad:
        items += list(squad_items(pair, args.squad, args.per_article, args.seed, args.articles))
    if args.pdf:
        items += list(pdf_items(pair, args.pdf, args.questions))
    grid = fusion_grid(items)
    best = grid[0]["weights"]
    if args.weights:
        best = {k: float(v) for k, v in (kv.split("=") for kv in args.weights.split(","))}
    balance = balance_grid(items, best)
    report = {
        "questions": {k: sum(item[0] == k for item in items) for k in ("squad", "pdf")},
        "fusion_grid_top10": grid[:10],
        "best_weights": best,
        "retrieval_weight_grid": balance,
    }
    print(json.dumps(report, indent=None if args.json else 2))


if __name__ == "__main__":
    main()
