"""The embed command: a corpus (CSV or folder) into parquet, locally or on Ray; resumable."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import TYPE_CHECKING

from longformer_core.cli.common import (
    RESUMABLE,
    add_model_args,
    with_models,
)
from longformer_core.model.registry import ModelPair
from longformer_core.reading.encoding import VIEWS, Progress

if TYPE_CHECKING:
    from longformer_core.corpus.embed import Corpus, EmbedReport


def embed_parser(sub: argparse._SubParsersAction) -> None:
    """The embed command and its local / Ray options."""
    em = sub.add_parser("embed", help="embed a corpus (CSV or folder) into parquet; resumable")
    em.add_argument("corpus", help="a CSV file (one document per row) or a folder of PDF/text files")
    em.add_argument("--text-column", default=None, help="CSV column holding the text")
    em.add_argument("--id-column", default=None, help="CSV column of document ids (default: row number)")
    em.add_argument("--label-column", default=None, help="CSV column kept as each document's label")
    em.add_argument("--title-column", default=None, help="CSV column kept as each document's title")
    em.add_argument("--pooling", default="all", choices=["all", "sum-last4", "mean", "cls"])
    em.add_argument("--views", nargs="+", default=list(VIEWS), choices=list(VIEWS))
    em.add_argument(
        "--chunk-size", type=int, default=16, help="documents per part file (at most lost on kill -9)"
    )
    em.add_argument("--out", required=True, help="parquet file; rerunning continues an interrupted run")
    em.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch CPU threads (1 is fastest when other jobs share the cores)",
    )
    em.add_argument(
        "--engine",
        default="local",
        choices=["local", "ray"],
        help="local: this process; ray: Ray Data workers on a Ray cluster (pip install 'ray[data]')",
    )
    em.add_argument(
        "--workers", type=int, default=None, help="ray: workers (default: one per free CPU or GPU)"
    )
    em.add_argument(
        "--ray-address",
        default=None,
        help="ray: a running cluster ('auto', 'host:6379', 'ray://host:10001'); default: start one here",
    )
    em.add_argument("--gpus-per-worker", type=float, default=0.0, help="ray: GPUs each worker reserves")
    em.add_argument(
        "--threads-per-worker", type=int, default=1, help="ray: torch threads (and CPUs) per worker"
    )
    add_model_args(em, "classify")
    em.set_defaults(func=with_models(_embed), interrupted=RESUMABLE)


def _embed(args: argparse.Namespace, pair: ModelPair) -> int:
    from longformer_core.corpus.embed import read_any
    from longformer_core.similarity import POOLINGS

    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    corpus = read_any(args.corpus, args.text_column, args.id_column, args.label_column, args.title_column)
    for note in corpus.notes:
        print(f"note: {note}", file=sys.stderr)
    if corpus.skipped:
        print(f"note: {corpus.skipped_summary()}", file=sys.stderr)
    poolings = list(POOLINGS) if args.pooling == "all" else [args.pooling]
    report = _run_engine(args, pair, corpus, poolings, _progress_lines())
    print(
        f"{report.documents} documents: {report.computed} computed, {report.reused} already in {args.out} "
        f"({report.seconds:.1f} s)",
        file=sys.stderr,
    )
    for view, stats in report.throughput.items():
        print("throughput " + stats.line(view), file=sys.stderr)
    print(json.dumps(_summary(report, corpus), indent=None if args.json else 2))
    return 0


def _progress_lines() -> Progress:
    """A progress callback printing to stderr at most every 5 s (and at the end): logs stay short."""
    started = time.perf_counter()
    last = [0.0]

    def progress(fraction: float, message: str) -> None:
        now = time.perf_counter()
        if now - last[0] >= 5 or fraction >= 1:
            last[0] = now
            print(f"{message} ({fraction:.0%}, {now - started:.0f} s)", file=sys.stderr, flush=True)

    return progress


def _run_engine(
    args: argparse.Namespace, pair: ModelPair, corpus: Corpus, poolings: list[str], progress: Progress
) -> EmbedReport:
    """`embed_corpus` in this process, or `embed_corpus_ray` on Ray workers (--engine)."""
    from longformer_core.corpus.embed import embed_corpus

    if args.engine == "ray":
        from longformer_core.corpus.ray_engine import RayOptions, embed_corpus_ray

        options = RayOptions(args.workers, args.ray_address, args.gpus_per_worker, args.threads_per_worker)
        return embed_corpus_ray(
            pair,
            corpus,
            args.out,
            model=args.model,
            baseline=args.baseline,
            views=args.views,
            poolings=poolings,
            strategy=args.strategy,
            chunk_size=args.chunk_size,
            progress=progress,
            options=options,
        )
    return embed_corpus(
        pair,
        corpus,
        args.out,
        views=args.views,
        poolings=poolings,
        strategy=args.strategy,
        chunk_size=args.chunk_size,
        progress=progress,
    )


def _summary(report: EmbedReport, corpus: Corpus) -> dict:
    """The JSON the command prints: counts, time, engine and per-view throughput."""
    return {
        "out": report.out,
        "corpus": report.corpus,
        "model": report.model,
        "documents": report.documents,
        "computed": report.computed,
        "reused": report.reused,
        "skipped": len(corpus.skipped),
        "seconds": round(report.seconds, 2),
        "engine": report.engine,
        "workers": report.workers,
        "throughput": {
            v: {
                "documents": t.documents,
                "tokens": t.tokens,
                "seconds": round(t.seconds, 2),
                "docs_per_s": round(t.documents / t.seconds, 3) if t.seconds else None,
                "tokens_per_s": round(t.tokens / t.seconds, 1) if t.seconds else None,
            }
            for v, t in report.throughput.items()
        },
    }
