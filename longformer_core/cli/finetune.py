"""The finetune command: QA or classification with transformers.Trainer, or a sweep."""

from __future__ import annotations

import argparse
import json

from longformer_core.model.registry import EMBEDDED


def finetune_parser(sub: argparse._SubParsersAction) -> None:
    """The finetune command and its training / sweep options."""
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
    precision = ft.add_mutually_exclusive_group()
    precision.add_argument(
        "--bf16", dest="bf16", action="store_const", const=True, help="force bf16 autocast"
    )
    precision.add_argument("--fp32", dest="bf16", action="store_const", const=False, help="force fp32")
    ft.set_defaults(bf16=None)  # bf16 where the CPU or GPU does it natively (detected at run time)
    ft.add_argument(
        "--checkpoint-dir",
        default=None,
        help="where resumable checkpoints go (default: LONGDOC_CHECKPOINTS/<name of --out>)",
    )
    ft.add_argument("--checkpoint-minutes", type=float, default=15.0, help="a checkpoint at least this often")
    ft.add_argument(
        "--stop-after-steps",
        type=int,
        default=0,
        help="save a checkpoint and stop at this step (continue later with --resume)",
    )
    ft.add_argument(
        "--resume",
        default=None,
        help="continue a stopped run from its checkpoint folder (same data and options as the stopped run)",
    )
    ft.add_argument(
        "--sweep", action="store_true", help="grid over --sweep-lr x --sweep-batch; writes sweep.csv/html"
    )
    ft.add_argument("--sweep-lr", type=float, nargs="+", default=[1e-4, 3e-4, 1e-3])
    ft.add_argument("--sweep-batch", type=int, nargs="+", default=[8, 16])
    ft.add_argument("--json", action="store_true", help="print the report as one JSON line")
    ft.set_defaults(func=_finetune)


def _finetune(args: argparse.Namespace) -> int:
    from pathlib import Path

    from longformer_core.settings import checkpoints_dir
    from longformer_core.training import finetune as ft

    lora = args.task == "qa" and (args.model == EMBEDDED or args.lora_rank)
    settings = ft.TrainSettings(
        epochs=args.epochs,
        learning_rate=args.lr or (5e-4 if lora else 5e-5),
        batch_size=args.batch_size,
        seed=args.seed,
        bf16=args.bf16,
        max_steps=args.max_steps,
        checkpoint_dir=args.checkpoint_dir or str(checkpoints_dir() / Path(args.out).resolve().name),
        checkpoint_minutes=args.checkpoint_minutes,
        stop_after_steps=args.stop_after_steps,
        resume=args.resume,
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
