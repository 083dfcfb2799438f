"""What the commands share: the model options, loading the model pair, printing results per view."""

from __future__ import annotations

import argparse
import json
import textwrap
from collections.abc import Callable

from longformer_core.documents import load_path
from longformer_core.model.registry import EMBEDDED, ModelPair, load_models
from longformer_core.reading.document_reading import DocumentReader
from longformer_core.reading.encoding import VIEWS
from longformer_core.reading.strategies import DEFAULT_FOR_TASK, STRATEGIES

# What a resumable command (`interrupted` in its defaults) says on Ctrl-C.
RESUMABLE = "interrupted: finished documents are saved; run the same command again to continue"


def add_model_args(p: argparse.ArgumentParser, task: str, extra_strategies: tuple[str, ...] = ()) -> None:
    """--model, --baseline, --strategy (default: the paper's choice for `task`), --keywords and --json.

    Args:
        p: the subcommand's parser.
        task: a key of `DEFAULT_FOR_TASK` ("qa", "classify", "similarity").
        extra_strategies: choices beyond the strategies (qa's "all": a table over every strategy).
    """
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


def load_pair(args: argparse.Namespace) -> ModelPair:
    """The model pair of --model/--baseline: every command loads its models through here."""
    return load_models(args.model, args.baseline)


def with_models(
    command: Callable[[argparse.Namespace, ModelPair], int],
) -> Callable[[argparse.Namespace], int]:
    """A command that needs the model pair of --model/--baseline, as a func(args)."""
    return lambda args: command(args, load_pair(args))


def reader_for(args: argparse.Namespace) -> DocumentReader:
    """A reader of the document in `args.file` with the chosen models and strategy."""
    return DocumentReader(load_pair(args), load_path(args.file), args.strategy, args.keywords)


def print_runs(results: dict, line: Callable) -> None:
    """Each view's result as a heading (model, tokens read, time) and `line(result)` indented below."""
    for view in VIEWS:
        if view in results:
            r = results[view]
            seen = f"read {r.seen_tokens[1]:,} of {r.n_tokens:,} tokens"
            print(f"\n== {view} ({r.model_name}; {seen}; {r.seconds + r.encode_seconds:.2f} s)")
            print(textwrap.indent(line(r), "   "))


def print_results(args: argparse.Namespace, results: dict, line: Callable) -> int:
    """Results per view as JSON (--json) or readable lines; returns the exit status 0."""
    if args.json:
        print(json.dumps({v: r.to_dict() for v, r in results.items()}))
    else:
        print_runs(results, line)
    return 0
