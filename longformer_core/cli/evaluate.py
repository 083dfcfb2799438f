"""The evaluate commands: SQuAD articles and paragraphs, PDF questions, Hyperpartisan/BBC heads, BBC clusters,
HotpotQA, WikiHop."""

from __future__ import annotations

import argparse
import json
import sys

from longformer_core.cli.common import (
    RESUMABLE,
    add_model_args,
    with_models,
)
from longformer_core.documents import load_path
from longformer_core.model.registry import EMBEDDED, ModelPair, embedded_qa_head
from longformer_core.reading.encoding import VIEWS


def evaluate_parser(sub: argparse._SubParsersAction) -> None:
    """The evaluate command with one subcommand per dataset."""
    ev = sub.add_parser("evaluate", help="evaluate on a shared dataset")
    ev_sub = ev.add_subparsers(dest="dataset", required=True)
    _squad_parser(ev_sub)
    _paragraphs_parser(ev_sub)
    _pdf_questions_parser(ev_sub)
    for dataset, what in (
        ("hyperpartisan", "Hyperpartisan news (SemEval-2019, by article)"),
        ("bbc", "BBC News topics"),
    ):
        _corpus_parser(ev_sub, dataset, what)
    _clusters_parser(ev_sub)
    _hotpot_parser(ev_sub)
    _wikihop_parser(ev_sub)


def _wikihop_parser(ev_sub: argparse._SubParsersAction) -> None:
    from longformer_core.evaluation import wikihop

    wh = ev_sub.add_parser(
        "wikihop", help="WikiHop candidate selection by the reader's span scores, per view (a taste)"
    )
    wikihop.add_arguments(wh)
    add_model_args(wh, "qa")
    wh.set_defaults(func=with_models(wikihop.run_command))


def _hotpot_parser(ev_sub: argparse._SubParsersAction) -> None:
    from longformer_core.evaluation import hotpot

    hp = ev_sub.add_parser(
        "hotpotqa", help="HotpotQA (official format): retrieve-then-read vs one-pass, per view"
    )
    hotpot.add_arguments(hp)
    add_model_args(hp, "qa")
    hp.set_defaults(func=with_models(hotpot.run_command))


def _squad_parser(ev_sub: argparse._SubParsersAction) -> None:
    sq = ev_sub.add_parser("squad-articles", help="SQuAD with whole articles as contexts")
    sq.add_argument("path")
    sq.add_argument("--limit", type=int, default=None, help="at most N questions, spread over the articles")
    sq.add_argument("--articles", type=int, default=None, help="use only the first N articles")
    sq.add_argument("--seed", type=int, default=0)
    sq.add_argument(
        "--heldout",
        action="store_true",
        help="only the articles the embedded QA head kept aside for validation (never trained on)",
    )
    add_model_args(sq, "qa")
    sq.set_defaults(func=with_models(_evaluate_squad))


def _paragraphs_parser(ev_sub: argparse._SubParsersAction) -> None:
    sp = ev_sub.add_parser(
        "squad-paragraphs",
        help="a QA head alone on SQuAD paragraphs: official EM/F1 per view (as finetune reports)",
    )
    sp.add_argument("path", help="SQuAD-format JSON with paragraph contexts")
    sp.add_argument("--limit", type=int, default=None, help="a seeded sample of N questions")
    sp.add_argument("--seed", type=int, default=0)
    sp.add_argument(
        "--titles-from",
        default=None,
        metavar="HEAD_DIR",
        help="only the articles this head kept aside (its adapter.json's val_articles), e.g. assets/qa_head",
    )
    sp.add_argument(
        "--qa-head",
        default="default",
        help="a head folder or a training checkpoint (default: LONGDOC_QA_HEAD or assets/qa_head)",
    )
    sp.add_argument("--model", default=EMBEDDED, help="'embedded' or a folder of a QA checkpoint")
    sp.add_argument(
        "--views",
        nargs="+",
        default=None,
        choices=["chunked", "longformer"],
        help="embedded: which views (both)",
    )
    sp.add_argument(
        "--max-length", type=int, default=None, help="tokens per window (embedded: 257, else 384)"
    )
    sp.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    sp.add_argument("--json", action="store_true", help="print machine-readable JSON")
    sp.set_defaults(func=_evaluate_paragraphs)


def _evaluate_paragraphs(args: argparse.Namespace) -> int:
    from longformer_core.evaluation.paragraphs import held_out_titles, squad_paragraphs

    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    report = squad_paragraphs(
        args.path,
        model=args.model,
        head=args.qa_head,
        titles=held_out_titles(args.titles_from) if args.titles_from else None,
        limit=args.limit,
        seed=args.seed,
        views=args.views,
        max_length=args.max_length,
        progress=lambda msg: print(msg, file=sys.stderr, flush=True),
    )
    print(json.dumps(report, indent=None if args.json else 2))
    return 0


def _pdf_questions_parser(ev_sub: argparse._SubParsersAction) -> None:
    pq = ev_sub.add_parser("pdf-questions", help="questions about one PDF with their answer pages")
    pq.add_argument("path", help="the PDF (or text) file")
    pq.add_argument("questions", help="JSON list of {question, answer, pages}")
    pq.add_argument("--rows", action="store_true", help="include each question's answers in the JSON")
    add_model_args(pq, "qa")
    pq.set_defaults(func=with_models(_evaluate_pdf))


def _evaluate_pdf(args: argparse.Namespace, pair: ModelPair) -> int:
    from longformer_core.evaluation.squad import load_pdf_questions, pdf_questions

    report = pdf_questions(
        pair,
        load_path(args.path),
        load_pdf_questions(args.questions),
        strategy=args.strategy,
        progress=lambda msg: print(msg, file=sys.stderr),
    )
    if not args.rows:
        report.pop("rows")
    print(json.dumps(report, indent=None if args.json else 2))
    return 0


def _corpus_parser(ev_sub: argparse._SubParsersAction, dataset: str, what: str) -> None:
    d = ev_sub.add_parser(
        dataset, help=f"{what}: linear heads on embeddings, truncated vs chunked vs Longformer"
    )
    d.add_argument("path", help="the dataset's CSV")
    d.add_argument("--cache", default=None, help="parquet of embeddings (default: ~/.cache/longdoc/corpus/)")
    d.add_argument("--limit", type=int, default=None, help="a seeded stratified subset of N rows")
    d.add_argument("--folds", type=int, default=5)
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--views", nargs="+", default=list(VIEWS), choices=list(VIEWS))
    d.add_argument(
        "--poolings", nargs="+", default=["sum-last4", "mean", "cls"], choices=["sum-last4", "mean", "cls"]
    )
    d.add_argument(
        "--write-heads",
        default=None,
        metavar="DIR",
        help="also fit each view's best head on all rows and save it in DIR (e.g. assets/heads)",
    )
    d.add_argument(
        "--model-head",
        nargs="+",
        default=None,
        metavar="HEAD",
        help="instead of cross-validating, score saved head file(s) on these rows",
    )
    d.add_argument(
        "--C",
        type=float,
        default=None,
        dest="c",
        help="fix the logistic regression's C instead of an inner search (ten times faster)",
    )
    d.add_argument(
        "--embedded-only",
        action="store_true",
        help="embed nothing: use the rows an earlier (maybe interrupted) embed run left in --cache",
    )
    d.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    add_model_args(d, "classify")
    d.set_defaults(func=with_models(_evaluate_corpus), interrupted=RESUMABLE)


def _clusters_parser(ev_sub: argparse._SubParsersAction) -> None:
    bc = ev_sub.add_parser(
        "bbc-clusters", help="BBC News: k-NN topic accuracy and k-means purity/NMI per view"
    )
    bc.add_argument("path", help="the BBC CSV (columns category, text)")
    bc.add_argument("--cache", default=None, help="parquet of embeddings (default: ~/.cache/longdoc/corpus/)")
    bc.add_argument("--limit", type=int, default=None, help="a seeded stratified subset of N rows")
    bc.add_argument("--clusters", type=int, default=None, help="k for k-means (default: number of topics)")
    bc.add_argument("--seed", type=int, default=0)
    bc.add_argument("--views", nargs="+", default=list(VIEWS), choices=list(VIEWS))
    bc.add_argument("--embedded-only", action="store_true", help="use only the rows already in --cache")
    bc.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    add_model_args(bc, "similarity")
    bc.set_defaults(func=with_models(_evaluate_clusters), interrupted=RESUMABLE)


def _evaluate_clusters(args: argparse.Namespace, pair: ModelPair) -> int:
    from longformer_core.corpus.collection import evaluate_collection
    from longformer_core.corpus.embed import default_cache, embed_and_load
    from longformer_core.evaluation.corpus import embedded_rows, load_dataset
    from longformer_core.similarity import POOLINGS

    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    corpus = load_dataset("bbc", args.path, args.limit, args.seed)
    cache = args.cache or default_cache(corpus)
    rows_in_file = len(corpus)
    if args.embedded_only:
        embeddings, corpus = embedded_rows(pair, corpus, cache, args.views, list(POOLINGS), args.strategy)
    else:
        embeddings = embed_and_load(
            pair,
            corpus,
            cache,
            args.views,
            list(POOLINGS),
            args.strategy,
            progress=lambda f, m: print(m, file=sys.stderr) if f >= 1 else None,
        )
    report = evaluate_collection(
        embeddings, corpus.texts, corpus.labels, n_clusters=args.clusters, seed=args.seed
    )
    report["cache"] = str(cache)
    report["rows_in_file"] = rows_in_file
    print(json.dumps(report, indent=None if args.json else 2))
    return 0


def _evaluate_corpus(args: argparse.Namespace, pair: ModelPair) -> int:
    from longformer_core.evaluation import corpus as ec

    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    last = [0.0]

    def progress(fraction: float, message: str) -> None:
        import time

        if time.perf_counter() - last[0] >= 10 or fraction >= 1:
            last[0] = time.perf_counter()
            print(f"{message} ({fraction:.0%})", file=sys.stderr, flush=True)

    if args.model_head:
        report = ec.score_heads(
            pair,
            args.dataset,
            args.path,
            args.model_head,
            cache=args.cache,
            limit=args.limit,
            seed=args.seed,
            progress=progress,
        )
    else:
        report, embeddings, corpus = ec.evaluate_dataset(
            pair,
            args.dataset,
            args.path,
            cache=args.cache,
            views=args.views,
            poolings=args.poolings,
            folds=args.folds,
            seed=args.seed,
            limit=args.limit,
            strategy=args.strategy,
            progress=progress,
            embedded_only=args.embedded_only,
            c=args.c,
        )
        if args.write_heads:
            written = ec.write_heads(
                report, embeddings, corpus, args.write_heads, ec.command_line(), seed=args.seed
            )
            report["heads_written"] = [str(p) for p in written]
    if args.json:
        print(json.dumps(report))
    else:
        print(json.dumps({k: v for k, v in report.items() if k not in ("results", "heads")}, indent=2))
        rows = report.get("results") or {}
        for view, by_pooling in rows.items():
            for pooling, r in by_pooling.items():
                print(
                    f"{view:>10} {pooling:>9}  "
                    + "  ".join(_metric_cells(r[b], b) for b in ("all", "<=512", ">512"))
                )
        for head, r in (report.get("heads") or {}).items():
            print(f"{head}: " + "  ".join(_metric_cells(r[b], b) for b in ("all", "<=512", ">512")))
    return 0


def _metric_cells(m: dict, bucket: str) -> str:
    keys = [k for k in ("accuracy", "macro_f1", "positive_f1") if k in m]
    return f"{bucket} (n={m['n']}): " + " ".join(f"{k}={m[k]:.1f}" for k in keys)


def _evaluate_squad(args: argparse.Namespace, pair: ModelPair) -> int:
    from longformer_core.evaluation.squad import squad_articles

    titles = None
    if args.heldout:
        head = embedded_qa_head()
        if head is None:
            raise ValueError("--heldout needs the embedded QA head (assets/qa_head or $LONGDOC_QA_HEAD).")
        titles = json.loads((head / "adapter.json").read_text(encoding="utf-8"))["val_articles"]
    report = squad_articles(
        pair,
        args.path,
        limit=args.limit,
        max_articles=args.articles,
        strategy=args.strategy,
        seed=args.seed,
        progress=lambda msg: print(msg, file=sys.stderr),  # stdout stays pure JSON
        titles=titles,
    )
    print(json.dumps(report, indent=None if args.json else 2))
    return 0
