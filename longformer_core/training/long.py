"""Long-context fine-tuning of the one-pass reader (LoRA on the real converted Longformer) and of its chunked twin.

The shipped QA head (`assets/qa_head`) was trained on the MiniLM twin with 257-token windows: it never saw
a long input, a multi-hop question or a yes/no answer. This trains the reader `one_pass.read_one_pass`
uses, at its length:

- **Longformer reader**: the converted Longformer itself (not the MiniLM twin; beyond 257 tokens the two
  differ), LoRA as the shipped head (`lora.py`, started from the shipped adapter and span layer), windows
  of `window_tokens` (default 2,048) tokens `[CLS] question [SEP] document [SEP]` with [CLS] and the
  question global, ONE softmax over all start (end) positions of the window; the loss is
  -log sum p(start) over every gold start (every occurrence of a HotpotQA answer; the paper's multi-span
  loss), the same for ends, plus the cross-entropy of the span/yes/no classifier (`AnswerTypeHead`).
- **Chunked reader** (same data and budget, so the comparison is fair): the MiniLM baseline with the same
  LoRA start, reading the same windows as 512-token chunks (the chunked view's windows), one step per
  window like the Longformer; a chunk without the answer points at [CLS] (the SQuAD convention); every
  chunk carries the question's answer type.

Data: whole SQuAD articles (`squad-v1.1-dev.articles.json` without the 6 articles the shipped head kept
aside, plus `squad-v1.1-train.first12.articles.json`), each question in a window that holds its gold
paragraph at a seeded random place; and the HotpotQA questions `hotpot.is_heldout` leaves for training
(176 of the shared 381), each window holding both gold paragraphs when they fit.

Precision: bf16 autocast where the hardware has native bf16 (CUDA with bf16, or a CPU whose flags show
avx512_bf16 / amx_bf16; detected at run time), else fp32. Weights and optimizer state stay fp32.

    python -m longformer_core.training.long --out artifacts/long-head --window-tokens 2048 --squad-questions 1500 \
        --epochs 1 --seed 0
    python -m longformer_core evaluate hotpotqa ../shared/data/hotpotqa/hotpotqa-dev-distractor.json --heldout \
        --long-head artifacts/long-head/long --chunk-head artifacts/long-head/chunked

The data and its windows are in `finetune_long_data.py`, the readers, their loss and the precision in
`finetune_long_model.py` (both re-exported here); this module holds the training loop, saving the heads and
the command line.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from longformer_core.machine import cpu_model_name
from longformer_core.model.lora import LoraConfig, adapter_state
from longformer_core.model.registry import EMBEDDED, QA_HEAD_DIR
from longformer_core.qa.one_pass import AnswerTypeHead
from longformer_core.training.long_data import (  # re-exported: bench/ and tests import the data API from here
    CHUNK_TOKENS,
    WINDOW_TOKENS,
    LongExample,
    TrainWindow,
    build_windows,
    chunk_windows,
    hotpot_train_examples,
    squad_article_examples,
)
from longformer_core.training.long_model import (  # re-exported: bench/ and tests import these from here
    init_from_head,
    native_bf16,
    reader_for_training,
    reader_loss,
)

__all__ = [
    "CHUNK_TOKENS",
    "WINDOW_TOKENS",
    "LongExample",
    "LongTrainSettings",
    "TrainLog",
    "TrainWindow",
    "build_windows",
    "chunk_windows",
    "cpu_model_name",
    "finetune_long",
    "hotpot_train_examples",
    "init_from_head",
    "native_bf16",
    "reader_for_training",
    "reader_loss",
    "save_head",
    "squad_article_examples",
    "train",
]


# --------------------------------------------------------------------------------------------------
# Training


@dataclass
class LongTrainSettings:
    epochs: float = 1.0
    learning_rate: float = 2e-4
    batch_size: int = 8  # windows per optimizer step (gradient accumulation, one window per forward)
    seed: int = 0
    warmup: float = 0.1  # fraction of steps
    max_steps: int = -1  # stop early (throughput checks, tests)
    precision: str = "auto"  # "auto" (bf16 where native) | "bf16" | "fp32"
    threads: int | None = None  # torch CPU threads


@dataclass
class TrainLog:
    losses: list[float] = field(default_factory=list)  # per optimizer step
    seconds: float = 0.0
    windows: int = 0
    tokens: int = 0
    steps: int = 0
    precision: str = "fp32"


def train(
    module: nn.Module,
    type_head: nn.Module,
    batches: Sequence[Sequence[TrainWindow]],
    settings: LongTrainSettings,
    longformer: bool,
    pad_id: int,
    device: torch.device,
    progress: Callable[[str], None] | None = None,
) -> TrainLog:
    """AdamW with linear warm-up and decay over `batches` (each a list of windows run in one forward).

    One optimizer step per `settings.batch_size` items of `batches`; an item is one Longformer window, or
    the chunks of one window for the chunked reader (so both get the same number of steps on the same text).
    """
    torch.manual_seed(settings.seed)
    use_bf16 = settings.precision == "bf16" or (settings.precision == "auto" and native_bf16(device))
    params = [p for p in list(module.parameters()) + list(type_head.parameters()) if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=settings.learning_rate, weight_decay=0.0)
    order = np.random.default_rng(settings.seed).permutation(len(batches))
    n_items = math.ceil(len(batches) * settings.epochs)
    steps = math.ceil(n_items / settings.batch_size)
    if settings.max_steps > 0:
        steps = min(steps, settings.max_steps)
    warm = max(1, int(settings.warmup * steps))
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min((s + 1) / warm, max(0.0, (steps - s) / max(1, steps - warm)))
    )
    module.train().to(device)
    type_head.train().to(device)
    log = TrainLog(precision="bf16" if use_bf16 else "fp32")
    t0 = time.perf_counter()
    item = 0
    for step in range(steps):
        step_loss = 0.0
        for _ in range(settings.batch_size):
            rows = batches[int(order[item % len(batches)])]
            item += 1
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_bf16):
                loss = reader_loss(module, type_head, rows, longformer, pad_id, device)
            (loss / settings.batch_size).backward()
            step_loss += float(loss.detach()) / settings.batch_size
            log.windows += 1
            log.tokens += sum(len(r.input_ids) for r in rows)
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad(set_to_none=True)
        log.losses.append(round(step_loss, 5))
        log.steps = step + 1
        if progress:
            progress(f"step {step + 1}/{steps}  loss {step_loss:.4f}  {time.perf_counter() - t0:.0f} s")
    log.seconds = time.perf_counter() - t0
    module.eval()
    type_head.eval()
    return log


def save_head(
    module: nn.Module, adapters: dict, type_head: AnswerTypeHead, lora: LoraConfig, out_dir: Path, card: dict
) -> Path:
    """Write adapter.safetensors (LoRA + span layer + answer-type classifier, fp16) and adapter.json (the card).

    The folder loads like the shipped head (`models.load_span_model`) and gives `one_pass` its classifier.
    """
    from safetensors.torch import save_file

    out_dir.mkdir(parents=True, exist_ok=True)
    state = adapter_state(adapters)
    state["qa_outputs.weight"] = module.qa_outputs.weight.detach().clone()
    state["qa_outputs.bias"] = module.qa_outputs.bias.detach().clone()
    state["answer_type.weight"] = type_head.classifier.weight.detach().clone()
    state["answer_type.bias"] = type_head.classifier.bias.detach().clone()
    save_file(
        {k: v.float().half().contiguous() for k, v in state.items()}, str(out_dir / "adapter.safetensors")
    )
    (out_dir / "adapter.json").write_text(json.dumps({"lora": lora.to_dict(), **card}, indent=2))
    return out_dir


def finetune_long(
    out_dir: str | Path,
    *,
    model: str = EMBEDDED,
    baseline: str | None = None,
    squad_paths: Sequence[str | Path] = (),
    hotpot_path: str | Path | None = None,
    squad_questions: int | None = None,
    window_tokens: int = WINDOW_TOKENS,
    chunk_tokens: int = CHUNK_TOKENS,
    readers: Sequence[str] = ("long", "chunked"),
    settings: LongTrainSettings | None = None,
    init_head: str | Path | None = "default",
    lora_rank: int = 16,
    progress: Callable[[str], None] | None = None,
) -> dict:
    """Train the Longformer one-pass reader and/or its chunked twin on the same windows; save both heads.

    Args:
        out_dir: the heads go to out_dir/long and out_dir/chunked, the report to out_dir/report.json.
        model: "embedded" (the converted MiniLM-Longformer) or a folder of a Longformer QA checkpoint.
        baseline: the chunked reader's model (default: MiniLM for "embedded", else `model` itself).
        squad_paths: article-level SQuAD files; the shipped head's held-out articles are never used.
        hotpot_path: HotpotQA file; only the questions `hotpot.is_heldout` leaves for training are used.
        squad_questions: a seeded sample of this many SQuAD questions (None: all).
        window_tokens: Longformer window, special tokens and question included (>= 2,048 for real runs).
        chunk_tokens: the chunked reader's chunk length.
        readers: which to train: "long", "chunked".
        settings: optimisation and precision.
        init_head: start the adapters from this head folder ("default": the shipped one; None: from zero).
        lora_rank: adapter rank (must equal the init head's).
        progress: called with a line of text per step.
    Returns:
        the report (also in out_dir/report.json).
    """
    from transformers import AutoTokenizer

    settings = settings or LongTrainSettings()
    if settings.threads:
        torch.set_num_threads(settings.threads)
    out_dir = Path(out_dir)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    head_dir = QA_HEAD_DIR if init_head == "default" else (Path(init_head) if init_head else None)
    heldout_titles = _heldout_titles(head_dir)
    squad, hot = _training_examples(squad_paths, hotpot_path, squad_questions, heldout_titles, settings.seed)
    examples = squad + hot
    sources = _reader_sources(model, baseline)
    lora = LoraConfig(rank=lora_rank, alpha=2.0 * lora_rank)
    report: dict = {
        **_data_report(model, squad_paths, hotpot_path, heldout_titles, len(squad), len(hot)),
        "window_tokens": window_tokens,
        "chunk_tokens": chunk_tokens,
        "init_head": str(head_dir) if head_dir else None,
        **_run_environment(settings, device),
    }
    long_windows: list[TrainWindow] | None = None
    for which in readers:
        source = sources["long" if which == "long" else "chunked"]
        module, adapters, type_head = reader_for_training(source, lora, head_dir)
        tokenizer = AutoTokenizer.from_pretrained(str(source))
        if long_windows is None:  # both readers read the same document ranges
            long_windows = build_windows(tokenizer, examples, window_tokens, settings.seed)
        if which == "long":
            batches = [[w] for w in long_windows]
        else:
            batches = chunk_windows(tokenizer, examples, long_windows, chunk_tokens)
        pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        say = (lambda msg, w=which: progress(f"{w}: {msg}")) if progress else None
        longformer = module.config.model_type == "longformer" and which == "long"
        log = train(module, type_head, batches, settings, longformer, pad_id, device, say)
        stats = {**_log_stats(log), "train_windows": len(long_windows), "source": str(source)}
        report[which] = stats
        card = {**{k: v for k, v in report.items() if k not in ("long", "chunked")}, "reader": which, **stats}
        save_head(module, adapters, type_head, lora, out_dir / which, card)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "report.json").write_text(json.dumps(report, indent=2))
    return report


def _reader_sources(model: str, baseline: str | None) -> dict[str, Path]:
    """{"long": the Longformer's folder, "chunked": the baseline's} (MiniLM for "embedded", else `model`)."""
    from longformer_core.model.convert import embedded_longformer_dir, embedded_source_dir

    long_source = embedded_longformer_dir() if model == EMBEDDED else Path(model)
    chunk_source = (
        (embedded_source_dir() if model == EMBEDDED else Path(model)) if baseline is None else Path(baseline)
    )
    return {"long": long_source, "chunked": chunk_source}


def _heldout_titles(head_dir: Path | None) -> list[str]:
    """The SQuAD articles the starting head kept aside for validation (never trained on here either)."""
    if head_dir is None or not (head_dir / "adapter.json").is_file():
        return []
    return json.loads((head_dir / "adapter.json").read_text(encoding="utf-8")).get("val_articles") or []


def _training_examples(
    squad_paths: Sequence[str | Path],
    hotpot_path: str | Path | None,
    squad_questions: int | None,
    heldout_titles: list[str],
    seed: int,
) -> tuple[list[LongExample], list[LongExample]]:
    """(SQuAD questions, HotpotQA questions) to train on; a seeded sample of `squad_questions` SQuAD ones.

    Raises:
        ValueError: neither file gave a question.
    """
    squad = [ex for p in squad_paths for ex in squad_article_examples(p, heldout_titles)]
    if squad_questions is not None and squad_questions < len(squad):
        keep = sorted(np.random.default_rng(seed).permutation(len(squad))[:squad_questions])
        squad = [squad[i] for i in keep]
    hot = hotpot_train_examples(hotpot_path) if hotpot_path else []
    if not squad and not hot:
        raise ValueError("No training questions: give --squad and/or --hotpot files.")
    return squad, hot


def _data_report(
    model: str,
    squad_paths: Sequence[str | Path],
    hotpot_path: str | Path | None,
    heldout_titles: list[str],
    n_squad: int,
    n_hot: int,
) -> dict:
    """What the report records about the model and the data: files, the split kept aside, question counts."""
    return {
        "task": "qa-long",
        "model": model,
        "squad": [str(p) for p in squad_paths],
        "hotpot": str(hotpot_path or ""),
        "split": {
            "squad_excluded_articles": heldout_titles,
            "hotpot": "trained only on questions with "
            "int(sha256(_id), 16) % 2 == 1 (hotpot.is_heldout is False)",
        },
        "squad_questions": n_squad,
        "hotpot_questions": n_hot,
    }


def _run_environment(settings: LongTrainSettings, device: torch.device) -> dict:
    """What the report records about the run: settings, torch, device, CPU, threads, bf16, the command."""
    return {
        "settings": asdict(settings),
        "torch": torch.__version__,
        "device": str(device),
        "cpu": cpu_model_name(),
        "threads": torch.get_num_threads(),
        "bf16_native": native_bf16(device),
        "command": " ".join(sys.argv),
    }


def _log_stats(log: TrainLog) -> dict:
    """A reader's training in the report: steps, windows, tokens, throughput, precision and the losses."""
    return {
        "steps": log.steps,
        "windows": log.windows,
        "tokens": log.tokens,
        "train_seconds": round(log.seconds, 1),
        "windows_per_second": round(log.windows / log.seconds, 3) if log.seconds else None,
        "tokens_per_second": round(log.tokens / log.seconds, 1) if log.seconds else None,
        "precision": log.precision,
        "first_loss": log.losses[0] if log.losses else None,
        "last_loss": log.losses[-1] if log.losses else None,
        "losses": log.losses,
    }


def build_parser() -> argparse.ArgumentParser:
    data = "../shared/data"
    p = argparse.ArgumentParser(
        prog="python -m longformer_core.training.long",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--out", required=True, help="folder for long/, chunked/ and report.json")
    p.add_argument("--model", default=EMBEDDED, help="'embedded' or a folder of a Longformer QA checkpoint")
    p.add_argument("--baseline", default=None, help="the chunked reader's model folder (default: see --help)")
    p.add_argument(
        "--squad",
        nargs="*",
        default=[
            f"{data}/squad/squad-v1.1-dev.articles.json",
            f"{data}/squad/squad-v1.1-train.first12.articles.json",
        ],
    )
    p.add_argument("--hotpot", default=f"{data}/hotpotqa/hotpotqa-dev-distractor.json")
    p.add_argument("--squad-questions", type=int, default=None, help="seeded sample of N SQuAD questions")
    p.add_argument("--window-tokens", type=int, default=WINDOW_TOKENS)
    p.add_argument("--chunk-tokens", type=int, default=CHUNK_TOKENS)
    p.add_argument("--readers", nargs="+", default=["long", "chunked"], choices=["long", "chunked"])
    p.add_argument(
        "--init-head", default="default", help="head to start from ('default': assets/qa_head; 'none')"
    )
    p.add_argument("--epochs", type=float, default=1.0)
    p.add_argument("--lr", type=float, default=2e-4)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--max-steps", type=int, default=-1)
    p.add_argument("--precision", default="auto", choices=["auto", "bf16", "fp32"])
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--seed", type=int, default=0)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    settings = LongTrainSettings(
        epochs=args.epochs,
        learning_rate=args.lr,
        batch_size=args.batch_size,
        seed=args.seed,
        max_steps=args.max_steps,
        precision=args.precision,
        threads=args.threads,
    )
    try:
        report = finetune_long(
            args.out,
            model=args.model,
            baseline=args.baseline,
            squad_paths=args.squad,
            hotpot_path=args.hotpot or None,
            squad_questions=args.squad_questions,
            window_tokens=args.window_tokens,
            chunk_tokens=args.chunk_tokens,
            readers=args.readers,
            settings=settings,
            init_head=None if args.init_head == "none" else args.init_head,
            progress=lambda msg: print(msg, file=sys.stderr, flush=True),
        )
    except (ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(
        json.dumps(
            {
                k: ({kk: vv for kk, vv in v.items() if kk != "losses"} if isinstance(v, dict) else v)
                for k, v in report.items()
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
