"""BM25 libraries compared on one document's passages: index time and per-question scoring time, same tokens.

    .venv/bin/python bench/lexical.py [--pdf ../shared/data/pdfs/nist_sp800-61r2.pdf] [--json]

Prints the time of `bm25s` (what longformer_core.reading.retrieval uses) and `rank-bm25` (if installed) to index the
passages and to score every passage for each question of the NIST question set, and the ratio between them.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from longformer_core.documents import load_path
from longformer_core.documents.passages import passages
from longformer_core.reading.retrieval import words


def main() -> None:
    data = Path(os.environ.get("LONGDOC_DATA_DIR", "../shared/data"))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pdf", default=str(data / "pdfs" / "nist_sp800-61r2.pdf"))
    parser.add_argument("--questions", default=str(data / "pdfs" / "nist_sp800-61r2.questions.json"))
    parser.add_argument("--repeats", type=int, default=20, help="scoring rounds over all questions")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    document = load_path(args.pdf, page_time_budget_s=60.0)
    texts = [document.text[a:b] for a, b in passages(document).spans]
    corpus = [words(t) or ["\u2400"] for t in texts]
    questions = [words(q["question"]) for q in json.loads(Path(args.questions).read_text())]
    report: dict = {"passages": len(texts), "questions": len(questions)}

    import bm25s

    t0 = time.perf_counter()
    index = bm25s.BM25()
    index.index(corpus, show_progress=False)
    report["bm25s_index_ms"] = round(1000 * (time.perf_counter() - t0), 2)
    t0 = time.perf_counter()
    for _ in range(args.repeats):
        first = [index.get_scores([w for w in q if w in index.vocab_dict]) for q in questions]
    report["bm25s_ms_per_question"] = round(
        1000 * (time.perf_counter() - t0) / (args.repeats * len(questions)), 4
    )
    try:
        from rank_bm25 import BM25Okapi
    except ImportError:
        report["rank_bm25"] = "not installed (pip install rank-bm25 to compare)"
    else:
        t0 = time.perf_counter()
        okapi = BM25Okapi(corpus)
        report["rank_bm25_index_ms"] = round(1000 * (time.perf_counter() - t0), 2)
        t0 = time.perf_counter()
        for _ in range(args.repeats):
            second = [okapi.get_scores(q) for q in questions]
        report["rank_bm25_ms_per_question"] = round(
            1000 * (time.perf_counter() - t0) / (args.repeats * len(questions)), 4
        )
        report["scoring_speedup_bm25s"] = round(
            report["rank_bm25_ms_per_question"] / report["bm25s_ms_per_question"], 1
        )
        same_top = np.mean([int(np.argmax(a)) == int(np.argmax(b)) for a, b in zip(first, second)])
        report["same_top_passage"] = round(float(same_top), 3)
    print(json.dumps(report, indent=None if args.json else 2))


if __name__ == "__main__":
    main()
