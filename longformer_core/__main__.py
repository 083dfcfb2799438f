"""Command line: python -m longformer_core {qa,explain,classify,similar,embed,evaluate,finetune,finetune-long,
export-head} ... (--help on each)."""

from __future__ import annotations

import argparse
import sys

from longformer_core.cli import documents, embed, evaluate, finetune
from longformer_core.documents import DocumentError
from longformer_core.model.registry import ModelLoadError

# One small function per subcommand's parser (in longformer_core/cli/, one module per command group); each
# sets `func` (what runs) and, when the command can be resumed after Ctrl-C, `interrupted` (what to say then).
PARSERS = (
    documents.qa_parser,
    documents.explain_parser,
    documents.classify_parser,
    documents.similar_parser,
    embed.embed_parser,
    evaluate.evaluate_parser,
    finetune.finetune_parser,
    finetune.finetune_long_parser,
    finetune.export_head_parser,
)


def build_parser() -> argparse.ArgumentParser:
    """The parser of every subcommand (see PARSERS)."""
    parser = argparse.ArgumentParser(prog="python -m longformer_core", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for add in PARSERS:
        add(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command; returns the exit status (2: bad input, with a message; 130: Ctrl-C)."""
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
