"""Command line: python -m longformer_core {qa,explain,classify,similar,embed,evaluate,finetune} ... (--help on each)."""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
from collections.abc import Callable

from longformer_core.documents import DocumentError, load_path
from longformer_core.encoding import VIEWS
from longformer_core.models import EMBEDDED, ModelLoadError, ModelPair, embedded_qa_head, load_models
from longformer_core.reader import DocumentReader
from longformer_core.strategies import DEFAULT_FOR_TASK, STRATEGIES


def _add_model_args(p: argparse.ArgumentParser, task: str, extra_strategies: tuple[str, ...] = ()) -> None:
    p.add_argument(
        "--model", default=EMBEDDED, help="'embedded' (offline default), a hub id or a local folder"
    )
    p.add_argument("--baseline", default=None, help="512-token baseline id/folder (default: see README)")
    p.add_argument(
        "--strategy",
        default=DEFAULT_FOR_TASK[task],
        choices=[*STRATEGIES, *extra_strategies],
        help="global attention"
        + (" ('all': the Longformer under every strategy, as a table)" if extra_strategies else ""),
    )
    p.add_argument("--keywords", nargs="*", default=(), help="terms for --strategy keywords")
    p.add_argument("--json", action="store_true", help="print machine-readable JSON")


RESUMABLE = "interrupted: finished documents are saved; run the same command again to continue"


def _qa_parser(sub: argparse._SubParsersAction) -> None:
    qa = sub.add_parser("qa", help="answer a question about a document (truncated vs chunked vs Longformer)")
    qa.add_argument("file")
    qa.add_argument("--question", "-q", required=True)
    qa.add_argument("--n-best", type=int, default=3)
    _add_model_args(qa, "qa", extra_strategies=("all",))
    qa.set_defaults(func=_qa)


def _explain_parser(sub: argparse._SubParsersAction) -> None:
    ex = sub.add_parser("explain", help="evidence for each view's answer: which passages supported it")
    ex.add_argument("file")
    ex.add_argument("--question", "-q", required=True)
    ex.add_argument("--views", nargs="+", default=list(VIEWS), choices=list(VIEWS))
    ex.add_argument("--top", type=int, default=10, help="evidence passages to print per view")
    ex.add_argument(
        "--occlusion",
        type=int,
        default=0,
        help="check with occlusion: mask the top-k passages and k random others (2k forward passes)",
    )
    ex.add_argument(
        "--max-tokens", type=int, default=4096, help="longest input of the Longformer's explanation pass"
    )
    _add_model_args(ex, "qa")
    ex.set_defaults(func=_explain)


def _classify_parser(sub: argparse._SubParsersAction) -> None:
    cl = sub.add_parser("classify", help="classify a document against your labels")
    cl.add_argument("file")
    cl.add_argument("--labels", nargs="+", default=[], help="labels, each 'name' or 'name: description'")
    _add_model_args(cl, "classify")
    cl.set_defaults(func=_classify)


def _similar_parser(sub: argparse._SubParsersAction) -> None:
    si = sub.add_parser("similar", help="similarity of two documents")
    si.add_argument("file1")
    si.add_argument("file2")
    si.add_argument("--pooling", default="mean", choices=["sum-last4", "mean", "cls"])
    _add_model_args(si, "similarity")
    si.set_defaults(func=_similar)


def _embed_parser(sub: argparse._SubParsersAction) -> None:
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
    _add_model_args(em, "classify")
    em.set_defaults(func=_with_models(_embed), interrupted=RESUMABLE)


def _evaluate_parser(sub: argparse._SubParsersAction) -> None:
    ev = sub.add_parser("evaluate", help="evaluate on a shared dataset")
    ev_sub = ev.add_subparsers(dest="dataset", required=True)
    _squad_parser(ev_sub)
    _pdf_questions_parser(ev_sub)
    for dataset, what in (
        ("hyperpartisan", "Hyperpartisan news (SemEval-2019, by article)"),
        ("bbc", "BBC News topics"),
    ):
        _corpus_parser(ev_sub, dataset, what)
    _clusters_parser(ev_sub)
    _hotpot_parser(ev_sub)


def _hotpot_parser(ev_sub: argparse._SubParsersAction) -> None:
    from longformer_core import hotpot

    hp = ev_sub.add_parser(
        "hotpotqa", help="HotpotQA (official format): retrieve-then-read vs one-pass, per view"
    )
    hotpot.add_arguments(hp)
    _add_model_args(hp, "qa")
    hp.set_defaults(func=_with_models(hotpot.run_command))


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
    _add_model_args(sq, "qa")
    sq.set_defaults(func=_with_models(_evaluate_squad))


def _pdf_questions_parser(ev_sub: argparse._SubParsersAction) -> None:
    pq = ev_sub.add_parser("pdf-questions", help="questions about one PDF with their answer pages")
    pq.add_argument("path", help="the PDF (or text) file")
    pq.add_argument("questions", help="JSON list of {question, answer, pages}")
    pq.add_argument("--rows", action="store_true", help="include each question's answers in the JSON")
    _add_model_args(pq, "qa")
    pq.set_defaults(func=_with_models(_evaluate_pdf))


def _evaluate_pdf(args: argparse.Namespace, pair: ModelPair) -> int:
    from longformer_core.evaluate import load_pdf_questions, pdf_questions

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
    _add_model_args(d, "classify")
    d.set_defaults(func=_with_models(_evaluate_corpus), interrupted=RESUMABLE)


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
    _add_model_args(bc, "similarity")
    bc.set_defaults(func=_with_models(_evaluate_clusters), interrupted=RESUMABLE)


def _finetune_parser(sub: argparse._SubParsersAction) -> None:
    ft = sub.add_parser("finetune", help="fine-tune a model with transformers.Trainer (QA or classification)")
    ft.add_argument("--task", required=True, choices=["qa", "classify"])
    ft.add_argument(
        "--model", default=EMBEDDED, help="'embedded' (trains a small LoRA QA head), a hub id or a folder"
    )
    ft.add_argument(
        "--train",
        required=True,
        nargs="+",
        help="SQuAD-format JSON (qa; several files: --val-articles come from the first) or CSV (classify)",
    )
    ft.add_argument("--eval", default=None, help="a file of the same format to evaluate on")
    ft.add_argument(
        "--val-articles", type=int, default=0, help="qa: keep N articles of --train aside for evaluation"
    )
    ft.add_argument(
        "--out", required=True, help="folder for the checkpoint (or the embedded QA head) and report.json"
    )
    ft.add_argument("--epochs", type=float, default=2.0)
    ft.add_argument(
        "--lr", type=float, default=None, help="learning rate (default 5e-4 with LoRA, else 5e-5)"
    )
    ft.add_argument("--batch-size", type=int, default=16)
    ft.add_argument("--max-steps", type=int, default=-1, help="stop after N steps (quick checks)")
    ft.add_argument("--max-length", type=int, default=None, help="tokens per window/document")
    ft.add_argument(
        "--lora-rank", type=int, default=None, help="qa: train a LoRA adapter of this rank (embedded: 16)"
    )
    ft.add_argument("--text-column", default="text")
    ft.add_argument("--label-column", default="label")
    ft.add_argument("--seed", type=int, default=0)
    ft.add_argument("--bf16", action="store_true", help="bf16 autocast (automatic on a GPU that supports it)")
    ft.add_argument(
        "--sweep", action="store_true", help="grid over --sweep-lr x --sweep-batch; writes sweep.csv/html"
    )
    ft.add_argument("--sweep-lr", type=float, nargs="+", default=[1e-4, 3e-4, 1e-3])
    ft.add_argument("--sweep-batch", type=int, nargs="+", default=[8, 16])
    ft.add_argument("--json", action="store_true", help="print the report as one JSON line")
    ft.set_defaults(func=_finetune)


# One small function per subcommand's parser; each sets `func` (what runs) and, when the command can be
# resumed after Ctrl-C, `interrupted` (what to say then).
PARSERS = (
    _qa_parser,
    _explain_parser,
    _classify_parser,
    _similar_parser,
    _embed_parser,
    _evaluate_parser,
    _finetune_parser,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m longformer_core", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for add in PARSERS:
        add(sub)
    return parser


def _finetune(args: argparse.Namespace) -> int:
    from pathlib import Path

    from longformer_core import finetune as ft

    lora = args.task == "qa" and (args.model == EMBEDDED or args.lora_rank)
    settings = ft.TrainSettings(
        epochs=args.epochs,
        learning_rate=args.lr or (5e-4 if lora else 5e-5),
        batch_size=args.batch_size,
        seed=args.seed,
        bf16=args.bf16,
        max_steps=args.max_steps,
    )

    def run(s: ft.TrainSettings, out: Path) -> dict:
        if args.task == "qa":
            return ft.finetune_qa(
                args.model,
                args.train,
                out,
                eval_path=args.eval,
                val_articles=args.val_articles,
                settings=s,
                lora_rank=args.lora_rank,
                max_length=args.max_length,
            )
        return ft.finetune_classifier(
            args.model,
            args.train[0],
            out,
            text_column=args.text_column,
            label_column=args.label_column,
            eval_path=args.eval,
            settings=s,
            max_length=args.max_length,
        )

    try:
        if args.sweep:
            metric = "f1" if args.task == "qa" else "macro_f1"
            result = ft.sweep(run, settings, args.sweep_lr, args.sweep_batch, args.out, metric)
        else:
            result = run(settings, Path(args.out))
            result.pop("log", None)
    finally:
        ft.finish_distributed()
    if ft.is_main_process():  # under torchrun, one report (rank 0's)
        print(json.dumps(result, indent=None if args.json else 2))
    return 0


def _evaluate_clusters(args: argparse.Namespace, pair: ModelPair) -> int:
    from longformer_core.collection import evaluate_collection
    from longformer_core.corpus import default_cache, embed_and_load
    from longformer_core.evaluate_corpus import embedded_rows, load_dataset
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
    from longformer_core import evaluate_corpus as ec

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


def _print_runs(results: dict, line) -> None:
    for view in VIEWS:
        if view in results:
            r = results[view]
            seen = f"read {r.seen_tokens[1]:,} of {r.n_tokens:,} tokens"
            print(f"\n== {view} ({r.model_name}; {seen}; {r.seconds + r.encode_seconds:.2f} s)")
            print(textwrap.indent(line(r), "   "))


def _embed(args: argparse.Namespace, pair: ModelPair) -> int:
    import time

    from longformer_core.corpus import embed_corpus, read_any
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
    started = time.perf_counter()
    last = [0.0]

    def progress(fraction: float, message: str) -> None:
        now = time.perf_counter()
        if now - last[0] >= 5 or fraction >= 1:  # a line every 5 s keeps logs short
            last[0] = now
            print(f"{message} ({fraction:.0%}, {now - started:.0f} s)", file=sys.stderr, flush=True)

    if args.engine == "ray":
        from longformer_core.corpus_ray import RayOptions, embed_corpus_ray

        options = RayOptions(args.workers, args.ray_address, args.gpus_per_worker, args.threads_per_worker)
        report = embed_corpus_ray(
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
    else:
        report = embed_corpus(
            pair,
            corpus,
            args.out,
            views=args.views,
            poolings=poolings,
            strategy=args.strategy,
            chunk_size=args.chunk_size,
            progress=progress,
        )
    print(
        f"{report.documents} documents: {report.computed} computed, {report.reused} already in {args.out} "
        f"({report.seconds:.1f} s)",
        file=sys.stderr,
    )
    for view, stats in report.throughput.items():
        print("throughput " + stats.line(view), file=sys.stderr)
    summary = {
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
    print(json.dumps(summary, indent=None if args.json else 2))
    return 0


def _with_models(
    command: Callable[[argparse.Namespace, ModelPair], int],
) -> Callable[[argparse.Namespace], int]:
    """A command that needs the model pair of --model/--baseline, as a func(args)."""
    return lambda args: command(args, load_models(args.model, args.baseline))


def _evaluate_squad(args: argparse.Namespace, pair: ModelPair) -> int:
    from longformer_core.evaluate import squad_articles

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


def _print_results(args: argparse.Namespace, results: dict, line: Callable) -> int:
    if args.json:
        print(json.dumps({v: r.to_dict() for v, r in results.items()}))
    else:
        _print_runs(results, line)
    return 0


def _similar(args: argparse.Namespace) -> int:
    from longformer_core.similarity import compare

    pair = load_models(args.model, args.baseline)
    a = DocumentReader(pair, load_path(args.file1), args.strategy, args.keywords)
    b = DocumentReader(pair, load_path(args.file2), args.strategy, args.keywords)
    results = compare(a, b, args.pooling)
    return _print_results(args, results, lambda r: f"cosine similarity ({r.pooling}): {r.cosine:.3f}")


def _reader(args: argparse.Namespace) -> DocumentReader:
    pair = load_models(args.model, args.baseline)
    return DocumentReader(pair, load_path(args.file), args.strategy, args.keywords)


def _explain(args: argparse.Namespace) -> int:
    from longformer_core.explain import explain

    explanations = explain(
        _reader(args), args.question, views=args.views, max_tokens=args.max_tokens, occlusion=args.occlusion
    )
    if args.json:
        print(json.dumps({v: e.to_dict(max_evidence=args.top) for v, e in explanations.items()}))
        return 0
    for view, e in explanations.items():
        print(
            f"\n== {view}: {e.answer.text[:200]!r} (p.{e.answer.page_label}; evidence pass over tokens "
            f"{e.window_tokens[0]:,}-{e.window_tokens[1]:,} in {e.seconds:.1f} s)"
        )
        for ev in e.top(args.top):
            occ = f"  occlusion {ev.occlusion:+.2f}" if ev.occlusion is not None else ""
            print(f"   {ev.score:+.3f}  p.{ev.page_label}: {ev.text[:160]}{occ}")
        for note in e.notes:
            print(f"   ({note})")
    return 0


def _strategy_table(args: argparse.Namespace) -> int:
    from longformer_core.strategy_effect import try_strategies

    pair = load_models(args.model, args.baseline)
    rows = try_strategies(pair, load_path(args.file), args.question, keywords=args.keywords)
    if args.json:
        print(json.dumps([r.to_dict() for r in rows]))
        return 0
    print(f"{'strategy':<18} {'page':>4} {'conf':>6} {'time':>7}  differs  answer")
    for r in rows:
        answer = r.error or r.answer[:80]
        print(
            f"{r.label:<18} {r.page or '-':>4} {r.confidence:6.1%} {r.seconds:6.1f}s  "
            f"{'yes' if r.differs else 'no':<7}  {answer}"
        )
    return 0


def _qa(args: argparse.Namespace) -> int:
    from longformer_core.qa import ask

    if args.strategy == "all":
        return _strategy_table(args)

    results = ask(_reader(args), args.question, n_best=args.n_best)
    return _print_results(
        args,
        results,
        lambda r: (
            "\n".join(f"{a.score:5.1%}  p.{a.page_label}: {a.text[:300]}" for a in r.answers) or "(no answer)"
        ),
    )


def _classify(args: argparse.Namespace) -> int:
    from longformer_core.classify import classify, parse_labels

    reader = _reader(args)
    labels = parse_labels(args.labels) if args.labels else []
    results = classify(reader, labels)
    return _print_results(
        args,
        results,
        lambda r: "\n".join(
            f"{p:5.1%}  {name}" for name, p in sorted(r.scores.items(), key=lambda kv: -kv[1])
        ),
    )


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print(getattr(args, "interrupted", "interrupted"), file=sys.stderr)
        return 130
    except (DocumentError, ModelLoadError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
