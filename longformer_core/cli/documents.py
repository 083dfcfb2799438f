"""Commands on one document (or two): qa, explain, classify, similar."""

from __future__ import annotations

import argparse
import json

from longformer_core.cli.common import (
    add_model_args,
    load_pair,
    print_results,
    reader_for,
)
from longformer_core.documents import load_path
from longformer_core.reading.document_reading import DocumentReader
from longformer_core.reading.encoding import VIEWS


def qa_parser(sub: argparse._SubParsersAction) -> None:
    """The qa command: answer a question about a document with each view."""
    qa = sub.add_parser("qa", help="answer a question about a document (truncated vs chunked vs Longformer)")
    qa.add_argument("file")
    qa.add_argument("--question", "-q", required=True)
    qa.add_argument("--n-best", type=int, default=3)
    add_model_args(qa, "qa", extra_strategies=("all",))
    qa.set_defaults(func=_qa)


def explain_parser(sub: argparse._SubParsersAction) -> None:
    """The explain command: which passages each view's answer relied on."""
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
    add_model_args(ex, "qa")
    ex.set_defaults(func=_explain)


def classify_parser(sub: argparse._SubParsersAction) -> None:
    """The classify command: a document against labels typed on the command line."""
    cl = sub.add_parser("classify", help="classify a document against your labels")
    cl.add_argument("file")
    cl.add_argument("--labels", nargs="+", default=[], help="labels, each 'name' or 'name: description'")
    add_model_args(cl, "classify")
    cl.set_defaults(func=_classify)


def similar_parser(sub: argparse._SubParsersAction) -> None:
    """The similar command: how alike two documents are, per view."""
    si = sub.add_parser("similar", help="similarity of two documents")
    si.add_argument("file1")
    si.add_argument("file2")
    si.add_argument("--pooling", default="mean", choices=["sum-last4", "mean", "cls"])
    add_model_args(si, "similarity")
    si.set_defaults(func=_similar)


def _similar(args: argparse.Namespace) -> int:
    from longformer_core.similarity import compare

    pair = load_pair(args)
    a = DocumentReader(pair, load_path(args.file1), args.strategy, args.keywords)
    b = DocumentReader(pair, load_path(args.file2), args.strategy, args.keywords)
    results = compare(a, b, args.pooling)
    return print_results(args, results, lambda r: f"cosine similarity ({r.pooling}): {r.cosine:.3f}")


def _explain(args: argparse.Namespace) -> int:
    from longformer_core.qa.evidence import explain

    explanations = explain(
        reader_for(args),
        args.question,
        views=args.views,
        max_tokens=args.max_tokens,
        occlusion=args.occlusion,
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
    from longformer_core.qa.strategy_effect import try_strategies

    pair = load_pair(args)
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
    from longformer_core.qa.answering import ask

    if args.strategy == "all":
        return _strategy_table(args)

    results = ask(reader_for(args), args.question, n_best=args.n_best)
    return print_results(
        args,
        results,
        lambda r: (
            "\n".join(f"{a.score:5.1%}  p.{a.page_label}: {a.text[:300]}" for a in r.answers) or "(no answer)"
        ),
    )


def _classify(args: argparse.Namespace) -> int:
    from longformer_core.classify import classify, parse_labels

    reader = reader_for(args)
    labels = parse_labels(args.labels) if args.labels else []
    results = classify(reader, labels)
    return print_results(
        args,
        results,
        lambda r: "\n".join(
            f"{p:5.1%}  {name}" for name, p in sorted(r.scores.items(), key=lambda kv: -kv[1])
        ),
    )
