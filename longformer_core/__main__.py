"""Command line: python -m longformer_core {qa,classify,similar,evaluate,finetune} ... (--help on each)."""

from __future__ import annotations

import argparse
import json
import sys
import textwrap

from longformer_core.documents import DocumentError, load_path
from longformer_core.encoding import VIEWS
from longformer_core.models import EMBEDDED, ModelLoadError, embedded_qa_head, load_models
from longformer_core.reader import DocumentReader
from longformer_core.strategies import DEFAULT_FOR_TASK, STRATEGIES


def _add_model_args(p: argparse.ArgumentParser, task: str) -> None:
    p.add_argument("--model", default=EMBEDDED, help="'embedded' (offline default), a hub id or a local folder")
    p.add_argument("--baseline", default=None, help="512-token baseline id/folder (default: see README)")
    p.add_argument("--strategy", default=DEFAULT_FOR_TASK[task], choices=list(STRATEGIES), help="global attention")
    p.add_argument("--keywords", nargs="*", default=(), help="terms for --strategy keywords")
    p.add_argument("--json", action="store_true", help="print machine-readable JSON")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m longformer_core", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    qa = sub.add_parser("qa", help="answer a question about a document (truncated vs chunked vs Longformer)")
    qa.add_argument("file")
    qa.add_argument("--question", "-q", required=True)
    qa.add_argument("--n-best", type=int, default=3)
    _add_model_args(qa, "qa")
    cl = sub.add_parser("classify", help="classify a document against your labels")
    cl.add_argument("file")
    cl.add_argument("--labels", nargs="+", default=[], help="labels, each 'name' or 'name: description'")
    _add_model_args(cl, "classify")
    si = sub.add_parser("similar", help="similarity of two documents")
    si.add_argument("file1")
    si.add_argument("file2")
    si.add_argument("--pooling", default="mean", choices=["sum-last4", "mean", "cls"])
    _add_model_args(si, "similarity")
    ev = sub.add_parser("evaluate", help="evaluate on a shared dataset")
    ev_sub = ev.add_subparsers(dest="dataset", required=True)
    sq = ev_sub.add_parser("squad-articles", help="SQuAD with whole articles as contexts")
    sq.add_argument("path")
    sq.add_argument("--limit", type=int, default=None, help="at most N questions, spread over the articles")
    sq.add_argument("--articles", type=int, default=None, help="use only the first N articles")
    sq.add_argument("--seed", type=int, default=0)
    sq.add_argument("--heldout", action="store_true",
                    help="only the articles the embedded QA head kept aside for validation (never trained on)")
    _add_model_args(sq, "qa")
    ft = sub.add_parser("finetune", help="fine-tune a model with transformers.Trainer (QA or classification)")
    ft.add_argument("--task", required=True, choices=["qa", "classify"])
    ft.add_argument("--model", default=EMBEDDED, help="'embedded' (trains a small LoRA QA head), a hub id or a folder")
    ft.add_argument("--train", required=True, help="SQuAD-format JSON (qa) or CSV (classify)")
    ft.add_argument("--eval", default=None, help="a file of the same format to evaluate on")
    ft.add_argument("--val-articles", type=int, default=0, help="qa: keep N articles of --train aside for evaluation")
    ft.add_argument("--out", required=True, help="folder for the checkpoint (or the embedded QA head) and report.json")
    ft.add_argument("--epochs", type=float, default=2.0)
    ft.add_argument("--lr", type=float, default=None, help="learning rate (default 5e-4 with LoRA, else 5e-5)")
    ft.add_argument("--batch-size", type=int, default=16)
    ft.add_argument("--max-steps", type=int, default=-1, help="stop after N steps (quick checks)")
    ft.add_argument("--max-length", type=int, default=None, help="tokens per window/document")
    ft.add_argument("--lora-rank", type=int, default=None, help="qa: train a LoRA adapter of this rank (embedded: 16)")
    ft.add_argument("--text-column", default="text")
    ft.add_argument("--label-column", default="label")
    ft.add_argument("--seed", type=int, default=0)
    ft.add_argument("--bf16", action="store_true", help="bf16 autocast (automatic on a GPU that supports it)")
    ft.add_argument("--sweep", action="store_true", help="grid over --sweep-lr x --sweep-batch; writes sweep.csv/html")
    ft.add_argument("--sweep-lr", type=float, nargs="+", default=[1e-4, 3e-4, 1e-3])
    ft.add_argument("--sweep-batch", type=int, nargs="+", default=[8, 16])
    ft.add_argument("--json", action="store_true", help="print the report as one JSON line")
    return parser


def _finetune(args: argparse.Namespace) -> int:
    from pathlib import Path

    from longformer_core import finetune as ft

    lora = args.task == "qa" and (args.model == EMBEDDED or args.lora_rank)
    settings = ft.TrainSettings(
        epochs=args.epochs, learning_rate=args.lr or (5e-4 if lora else 5e-5), batch_size=args.batch_size,
        seed=args.seed, bf16=args.bf16, max_steps=args.max_steps,
    )

    def run(s: ft.TrainSettings, out: Path) -> dict:
        if args.task == "qa":
            return ft.finetune_qa(args.model, args.train, out, eval_path=args.eval, val_articles=args.val_articles,
                                  settings=s, lora_rank=args.lora_rank, max_length=args.max_length)
        return ft.finetune_classifier(args.model, args.train, out, text_column=args.text_column,
                                      label_column=args.label_column, eval_path=args.eval, settings=s,
                                      max_length=args.max_length)

    if args.sweep:
        metric = "f1" if args.task == "qa" else "macro_f1"
        rows = ft.sweep(run, settings, args.sweep_lr, args.sweep_batch, args.out, metric)
        print(json.dumps(rows, indent=None if args.json else 2))
        return 0
    report = run(settings, Path(args.out))
    report.pop("log", None)
    print(json.dumps(report, indent=None if args.json else 2))
    return 0


def _print_runs(results: dict, line) -> None:
    for view in VIEWS:
        if view in results:
            r = results[view]
            seen = f"read {r.seen_tokens[1]:,} of {r.n_tokens:,} tokens"
            print(f"\n== {view} ({r.model_name}; {seen}; {r.seconds + r.encode_seconds:.2f} s)")
            print(textwrap.indent(line(r), "   "))


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "finetune":
            return _finetune(args)
        pair = load_models(args.model, args.baseline)
        if args.command == "evaluate":
            from longformer_core.evaluate import squad_articles

            titles = None
            if args.heldout:
                head = embedded_qa_head()
                if head is None:
                    raise ValueError("--heldout needs the embedded QA head (assets/qa_head or $LONGDOC_QA_HEAD).")
                titles = json.loads((head / "adapter.json").read_text(encoding="utf-8"))["val_articles"]
            report = squad_articles(
                pair, args.path, limit=args.limit, max_articles=args.articles, strategy=args.strategy,
                seed=args.seed, progress=lambda msg: print(msg, file=sys.stderr),  # stdout stays pure JSON
                titles=titles,
            )
            print(json.dumps(report, indent=None if args.json else 2))
            return 0
        if args.command == "similar":
            from longformer_core.similarity import compare

            a = DocumentReader(pair, load_path(args.file1), args.strategy, args.keywords)
            b = DocumentReader(pair, load_path(args.file2), args.strategy, args.keywords)
            results = compare(a, b, args.pooling)
            if args.json:
                print(json.dumps({v: r.to_dict() for v, r in results.items()}))
            else:
                _print_runs(results, lambda r: f"cosine similarity ({r.pooling}): {r.cosine:.3f}")
            return 0
        reader = DocumentReader(pair, load_path(args.file), args.strategy, args.keywords)
        if args.command == "qa":
            from longformer_core.qa import ask

            results = ask(reader, args.question, n_best=args.n_best)
            line = lambda r: "\n".join(
                f"{a.score:5.1%}  p.{a.page_label}: {a.text[:300]}" for a in r.answers
            ) or "(no answer)"
        else:
            from longformer_core.classify import classify, parse_labels

            labels = parse_labels(args.labels) if args.labels else []
            results = classify(reader, labels)
            line = lambda r: "\n".join(
                f"{p:5.1%}  {name}" for name, p in sorted(r.scores.items(), key=lambda kv: -kv[1])
            )
        if args.json:
            print(json.dumps({v: r.to_dict() for v, r in results.items()}))
        else:
            _print_runs(results, line)
        return 0
    except (DocumentError, ModelLoadError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
