"""Evidence for an answer (longformer_core.qa.evidence): time at 4,096 tokens, and quality on SQuAD articles.

    # time for the evidence of one answer (one gradient pass at 4,096 tokens), next to one plain forward pass
    .venv/bin/python bench/explain.py time --repeat 3
    LONGDOC_DTYPE=fp32 .venv/bin/python bench/explain.py time --repeat 3   # without bf16 autocast
    # quality: for questions the Longformer answers exactly (EM), is the gold answer's sentence in the top 3
    # evidence passages, and do occlusion and gradients agree on the top passage? (held-out articles)
    .venv/bin/python bench/explain.py quality --limit 24 --occlusion 2

Prints one JSON object. Timings on a shared machine are upper bounds; the ratio to one forward pass
measured in the same run is the stable number.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np
import torch

from longformer_core.documents import text_document
from longformer_core.evaluation.squad import exact_match, load_squad_articles
from longformer_core.model.registry import embedded_qa_head, load_embedded
from longformer_core.qa.answering import ask
from longformer_core.qa.evidence import EXPLAIN_TOKENS, explain_answer
from longformer_core.reading.document_reading import DocumentReader
from longformer_core.reading.encoding import build_input, model_kwargs
from longformer_core.reading.results import Located

SQUAD = Path(os.environ.get("LONGDOC_DATA_DIR", "../shared/data")) / "squad" / "squad-v1.1-dev.articles.json"


def cpu_name() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
        return next(
            line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Model name")
        )
    except (OSError, StopIteration):
        return platform.processor() or "unknown"


def longest_article(path: Path) -> dict:
    return max(load_squad_articles(path), key=lambda a: len(a["context"]))


def bench_time(repeat: int) -> dict:
    """Evidence for one answer at EXPLAIN_TOKENS tokens vs one inference forward pass of the same input.

    Both run in the model's arithmetic (`LONGDOC_DTYPE`: bf16 autocast where the CPU has it natively).
    CPU seconds (this process, all threads) are reported next to wall seconds: on a shared machine the
    wall time is inflated by other work, the CPU time much less.
    """
    pair = load_embedded()
    article = longest_article(SQUAD)
    reader = DocumentReader(pair, text_document(article["context"], article["title"]), "question")
    tokens = reader.long_tokens
    if len(tokens) < EXPLAIN_TOKENS:
        raise SystemExit(f"the longest article has only {len(tokens)} tokens")
    qa = article["qas"][len(article["qas"]) // 2]
    a = qa["answers"][0]["answer_start"]
    answer = Located.of(reader.document, (a, a + len(qa["answers"][0]["text"])))
    model = pair.longformer
    q_ids = model.tokenizer(qa["question"], add_special_tokens=False)["input_ids"]
    explain_answer(reader, "longformer", qa["question"], answer)  # warm-up
    forward, evidence, evidence_cpu = [], [], []
    for _ in range(repeat):
        c0 = time.process_time()
        ex = explain_answer(reader, "longformer", qa["question"], answer)
        evidence_cpu.append(time.process_time() - c0)
        lo, hi = ex.window_tokens
        win = build_input(
            model.tokenizer,
            tokens,
            (lo, hi),
            question_ids=q_ids,
            doc_global=reader.plan.doc_mask,
            global_first=True,
            global_question=True,
        )
        t0 = time.perf_counter()
        with torch.inference_mode(), model.autocast():
            model.span_model(**model_kwargs(model, win))
        forward.append(time.perf_counter() - t0)
        evidence.append(ex.seconds)
    n_input = int(win.input_ids.shape[1])
    return {
        "input_tokens": n_input,
        "dtype": str(model.dtype).removeprefix("torch."),
        "evidence_seconds_median": round(float(np.median(evidence)), 2),
        "evidence_cpu_seconds_median": round(float(np.median(evidence_cpu)), 2),
        "forward_seconds_median": round(float(np.median(forward)), 2),
        "evidence_over_forward": round(float(np.median(evidence) / np.median(forward)), 2),
        "target_seconds": 10.0,
        "top5_passages": [e.char_span for e in ex.top(5)],
        "repeat": repeat,
        "threads": torch.get_num_threads(),
        "cpu": cpu_name(),
        "load_average": os.getloadavg(),
    }


def bench_quality(limit: int, occlusion: int, aggregate: str) -> dict:
    """Evidence quality on the held-out SQuAD articles (the QA head never trained on them)."""
    pair = load_embedded()
    head = embedded_qa_head()
    titles = (
        set(json.loads((head / "adapter.json").read_text(encoding="utf-8"))["val_articles"]) if head else None
    )
    articles = [a for a in load_squad_articles(SQUAD) if titles is None or a["title"] in titles]
    per_article = max(1, -(-limit // len(articles)))
    rng = np.random.default_rng(0)
    rows = []
    t_start = time.perf_counter()
    for article in articles:
        reader = DocumentReader(pair, text_document(article["context"], article["title"]), "question")
        qas = article["qas"]
        correct = 0
        for i in rng.permutation(len(qas)):
            if correct >= per_article or len(rows) >= limit:
                break
            qa = qas[i]
            golds = [g["text"] for g in qa["answers"]]
            best = ask(reader, qa["question"], views=("longformer",), n_best=1)["longformer"].best
            if best is None or not max(exact_match(best.text, g) for g in golds):
                continue
            correct += 1
            ex = explain_answer(
                reader, "longformer", qa["question"], best, occlusion=occlusion, aggregate=aggregate
            )
            gold_starts = [g["answer_start"] for g in qa["answers"]]

            def holds_gold(e) -> bool:
                return any(e.char_span[0] <= s < e.char_span[1] for s in gold_starts)  # noqa: B023

            rank = next((r for r, e in enumerate(ex.evidence) if holds_gold(e)), None)
            rows.append(
                {
                    "title": article["title"],
                    "question": qa["question"],
                    "answer": best.text,
                    "gold_rank": rank,
                    "passages": len(ex.evidence),
                    "seconds": round(ex.seconds, 2),
                    "occlusion_agrees": ex.occlusion_agrees,
                    "answer_token": int(reader.long_tokens.token_at(best.char_span[0])),
                }
            )
            print(
                f"{len(rows)}/{limit} {article['title']}: gold rank {rank} of {len(ex.evidence)}, "
                f"agree={ex.occlusion_agrees} ({time.perf_counter() - t_start:.0f} s)",
                file=sys.stderr,
                flush=True,
            )
    ranks = [r["gold_rank"] for r in rows]
    agree = [r["occlusion_agrees"] for r in rows if r["occlusion_agrees"] is not None]
    return {
        "questions": len(rows),
        "aggregate": aggregate,
        "dtype": str(pair.longformer.dtype).removeprefix("torch."),
        "gold_in_top3": round(float(np.mean([r is not None and r < 3 for r in ranks])), 4) if rows else None,
        "gold_top1": round(float(np.mean([r == 0 for r in ranks])), 4) if rows else None,
        "occlusion_agrees_top1": round(float(np.mean(agree)), 4) if agree else None,
        "occlusion_per_answer": occlusion,
        "answers_beyond_512": sum(r["answer_token"] >= 512 for r in rows),
        "gradient_seconds_median": round(float(np.median([r["seconds"] for r in rows])), 2) if rows else None,
        "cpu": cpu_name(),
        "rows": rows,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="what", required=True)
    t = sub.add_parser("time")
    t.add_argument("--repeat", type=int, default=3)
    q = sub.add_parser("quality")
    q.add_argument("--limit", type=int, default=24, help="correctly answered questions to explain")
    q.add_argument("--occlusion", type=int, default=2, help="top-k + k random passages occluded per answer")
    q.add_argument("--aggregate", default="absolute", choices=["signed", "absolute"])
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    report = (
        bench_time(args.repeat)
        if args.what == "time"
        else bench_quality(args.limit, args.occlusion, args.aggregate)
    )
    print(json.dumps(report))


if __name__ == "__main__":
    main()
