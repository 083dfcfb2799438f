"""The training commands: `finetune` (QA or classification with transformers.Trainer, or a sweep), `finetune-long`
(the long-context readers, `training/long.py`) and `export-head` (a training checkpoint as a QA head folder)."""

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
    _checkpoint_arguments(ft, "at this step")
    ft.add_argument(
        "--sweep", action="store_true", help="grid over --sweep-lr x --sweep-batch; writes sweep.csv/html"
    )
    ft.add_argument("--sweep-lr", type=float, nargs="+", default=[1e-4, 3e-4, 1e-3])
    ft.add_argument("--sweep-batch", type=int, nargs="+", default=[8, 16])
    ft.add_argument("--json", action="store_true", help="print the report as one JSON line")
    ft.set_defaults(func=_finetune)


def _finetune(args: argparse.Namespace) -> int:
    from pathlib import Path

    from longformer_core.machine import keep_freed_memory
    from longformer_core.settings import checkpoints_dir
    from longformer_core.training import finetune as ft

    keep_freed_memory()  # far less time in page faults on glibc (longformer_core.machine)
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


def finetune_long_parser(sub: argparse._SubParsersAction) -> None:
    """The finetune-long command: the one-pass Longformer reader and its chunked twin (resumable)."""
    fl = sub.add_parser(
        "finetune-long",
        help="train the long-context readers (Longformer one-pass and chunked twin) on SQuAD articles + HotpotQA",
    )
    _long_arguments(fl)
    fl.set_defaults(func=_finetune_long)


def _long_arguments(p: argparse.ArgumentParser) -> None:
    """The options of `finetune-long` (see `training/long.py`)."""
    from longformer_core.settings import data_dir
    from longformer_core.training.long_data import CHUNK_TOKENS, DOC_GLOBALS, WINDOW_TOKENS

    hotpot = (
        "hotpotqa-train-distractor.json",
        "hotpotqa-dev-distractor.json",
        "hotpotqa-dev-distractor.more.json",
    )
    p.add_argument("--out", required=True, help="folder for long/, chunked/ and report.json")
    p.add_argument("--model", default=EMBEDDED, help="'embedded' or a folder of a Longformer QA checkpoint")
    p.add_argument(
        "--baseline", default=None, help="the chunked reader's model (default: MiniLM for embedded)"
    )
    p.add_argument(
        "--squad",
        nargs="*",
        default=[str(data_dir() / "squad" / "squad-v1.1-train.paragraphs.json")],
        help="SQuAD files (paragraph format: each article's paragraphs are joined; or article level)",
    )
    p.add_argument(
        "--hotpot",
        nargs="*",
        default=[str(data_dir() / "hotpotqa" / name) for name in hotpot],
        help="HotpotQA files: a train file whole, a dev file's trainable half (hotpot.is_heldout)",
    )
    p.add_argument("--squad-questions", type=int, default=None, help="a seeded sample of N SQuAD questions")
    p.add_argument("--window-tokens", type=int, default=WINDOW_TOKENS)
    p.add_argument("--chunk-tokens", type=int, default=CHUNK_TOKENS)
    p.add_argument("--readers", nargs="+", default=["long", "chunked"], choices=["long", "chunked"])
    p.add_argument(
        "--doc-global",
        default="question",
        choices=DOC_GLOBALS,
        help="the Longformer reader's document tokens global besides [CLS] and the question "
        "('paragraphs': each paragraph's first token, the paper's HotpotQA choice; read with --strategy paragraphs)",
    )
    p.add_argument(
        "--init-head",
        default="default",
        help="head folder or finetune checkpoint to start from ('default': assets/qa_head; 'none')",
    )
    p.add_argument("--lora-rank", type=int, default=None, help="adapter rank (default: the starting head's)")
    p.add_argument("--epochs", type=float, default=1.0)
    p.add_argument("--lr", type=float, default=2e-4)
    p.add_argument(
        "--type-lr-scale",
        type=float,
        default=25.0,
        help="the span/yes/no classifier's learning rate as a multiple of --lr (it starts from random weights)",
    )
    p.add_argument("--batch-size", type=int, default=8, help="windows per optimizer step")
    p.add_argument("--max-steps", type=int, default=-1)
    p.add_argument("--precision", default="auto", choices=["auto", "bf16", "fp32"])
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--seed", type=int, default=0)
    _checkpoint_arguments(p, "when a reader reaches this step")
    p.add_argument("--json", action="store_true", help="print the report as one JSON line")


def _checkpoint_arguments(p: argparse.ArgumentParser, stop_when: str) -> None:
    """--checkpoint-dir, --checkpoint-minutes, --stop-after-steps, --resume (finetune and finetune-long)."""
    p.add_argument(
        "--checkpoint-dir",
        default=None,
        help="where resumable checkpoints go (default: LONGDOC_CHECKPOINTS/<name of --out>)",
    )
    p.add_argument("--checkpoint-minutes", type=float, default=15.0, help="a checkpoint at least this often")
    p.add_argument(
        "--stop-after-steps",
        type=int,
        default=0,
        help=f"save a checkpoint and stop {stop_when} (continue later with --resume)",
    )
    p.add_argument(
        "--resume",
        default=None,
        help="continue a stopped run from its checkpoint folder (same data and options as the stopped run)",
    )


def _finetune_long(args: argparse.Namespace) -> int:
    """Run `finetune-long`; the report (without the per-step losses) goes to stdout, progress to stderr."""
    import sys
    from pathlib import Path

    from longformer_core.machine import keep_freed_memory
    from longformer_core.settings import checkpoints_dir
    from longformer_core.training.long import READERS, LongTrainSettings, finetune_long

    keep_freed_memory()  # far less time in page faults on glibc (longformer_core.machine)
    settings = LongTrainSettings(
        epochs=args.epochs,
        learning_rate=args.lr,
        type_lr_scale=args.type_lr_scale,
        batch_size=args.batch_size,
        seed=args.seed,
        max_steps=args.max_steps,
        precision=args.precision,
        threads=args.threads,
        checkpoint_dir=args.checkpoint_dir or str(checkpoints_dir() / Path(args.out).resolve().name),
        checkpoint_minutes=args.checkpoint_minutes,
        stop_after_steps=args.stop_after_steps,
        resume=args.resume,
    )
    report = finetune_long(
        args.out,
        model=args.model,
        baseline=args.baseline,
        squad_paths=args.squad,
        hotpot_paths=args.hotpot,
        squad_questions=args.squad_questions,
        window_tokens=args.window_tokens,
        chunk_tokens=args.chunk_tokens,
        readers=args.readers,
        doc_global=args.doc_global,
        settings=settings,
        init_head=None if args.init_head == "none" else args.init_head,
        lora_rank=args.lora_rank,
        progress=lambda msg: print(msg, file=sys.stderr, flush=True),
    )
    brief = {
        k: ({kk: vv for kk, vv in v.items() if kk != "losses"} if k in READERS else v)
        for k, v in report.items()
    }
    print(json.dumps(brief, indent=None if args.json else 2))
    return 0


def export_head_parser(sub: argparse._SubParsersAction) -> None:
    """The export-head command: a finetune / finetune-long checkpoint as a head folder."""
    ex = sub.add_parser(
        "export-head",
        help="write a QA head folder (adapter.safetensors + adapter.json) from a training checkpoint",
    )
    ex.add_argument("checkpoint", help="a checkpoint-N folder, or the run's checkpoint folder (latest taken)")
    ex.add_argument(
        "--out", required=True, help="the head folder to write (give it to --qa-head, LONGDOC_QA_HEAD)"
    )
    ex.set_defaults(func=_export_head)


def _export_head(args: argparse.Namespace) -> int:
    from longformer_core.model.qa_head import export_head, read_qa_head

    out = export_head(args.checkpoint, args.out)
    head = read_qa_head(out)
    print(json.dumps({"head": str(out), "lora_rank": head.lora.rank, "step": head.card.get("step")}))
    return 0
