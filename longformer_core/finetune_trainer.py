"""The training loop: transformers.Trainer with progress on stderr, data-parallel checks, and sweeps.

Under torchrun every process trains a replica; `run_trainer` gathers each rank's weight digest after the first
update and at the end, so the report shows that the replicas stayed equal.
"""

from __future__ import annotations

import hashlib
import math
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn


def distributed_rank() -> tuple[int, int]:
    """(rank, world size) of this process: from torch.distributed once initialised, else torchrun's variables."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))


def is_main_process() -> bool:
    """Whether this process writes files and prints reports (rank 0, or the only process)."""
    return distributed_rank()[0] == 0


def finish_distributed() -> None:
    """Leave the process group (torchrun warns about one left open); nothing when not distributed."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


def weights_digest(model: nn.Module, trainable_only: bool = True) -> str:
    """Short sha256 of the model's parameters (names and float32 bytes, on the CPU): equal digests, equal weights."""
    h = hashlib.sha256()
    for name, param in sorted(model.named_parameters()):
        if param.requires_grad or not trainable_only:
            h.update(name.encode() + b"\0")
            h.update(param.detach().float().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


class _CountingCollator:
    """Wraps a collator to count the rows this process trained on and fingerprint its first batch."""

    def __init__(self, collator: Callable) -> None:
        self.collator, self.rows, self.first_batch = collator, 0, ""

    def __call__(self, rows: list[dict]) -> dict[str, torch.Tensor]:
        batch = self.collator(rows)
        self.rows += len(rows)
        if not self.first_batch:
            self.first_batch = hashlib.sha256(batch["input_ids"].numpy().tobytes()).hexdigest()[:16]
        return batch


@dataclass
class TrainSettings:
    epochs: float = 2.0
    learning_rate: float = 5e-5
    batch_size: int = 16
    seed: int = 0
    warmup: float = 0.1  # fraction of steps
    bf16: bool = False  # bf16 autocast (on by itself on a GPU that supports it)
    max_steps: int = -1  # stop early (tests, quick checks)


def run_trainer(
    model: nn.Module,
    train_ds,
    eval_ds,
    collator,
    settings: TrainSettings,
    out_dir: Path,
    compute_metrics: Callable | None = None,
) -> dict:
    """Train with transformers.Trainer; {"train_loss", "train_seconds", "samples_per_second", "eval_loss"?}."""
    from transformers import PrinterCallback, Trainer, set_seed

    set_seed(settings.seed)
    _, world_size = distributed_rank()
    collator = _CountingCollator(collator)
    trainer = Trainer(
        model=model,
        args=_training_arguments(settings, out_dir, world_size),
        train_dataset=train_ds,
        eval_dataset=eval_ds,
        data_collator=collator,
        compute_metrics=compute_metrics,
    )
    trainer.remove_callback(PrinterCallback)
    trainer.add_callback(_progress_callback())
    replicas = _replica_digests(model, world_size)
    if world_size > 1:
        trainer.add_callback(replicas)
    t0 = time.perf_counter()
    result = trainer.train()
    report = {
        "train_loss": round(float(result.training_loss), 4),
        "train_seconds": round(time.perf_counter() - t0, 1),
        "train_rows": len(train_ds),
        "samples_per_second": round(float(result.metrics.get("train_samples_per_second", 0.0)), 2),
        "steps": int(result.global_step),
        "log": [h for h in trainer.state.log_history if "loss" in h],
    }
    if world_size > 1:
        report["distributed"] = _distributed_report(collator, replicas, world_size)
    if eval_ds is not None:
        metrics = trainer.evaluate()
        report["eval_loss"] = round(float(metrics["eval_loss"]), 4)
        report.update(
            {
                k: round(float(metrics[f"eval_{k}"]), 4)
                for k in ("accuracy", "macro_f1")
                if f"eval_{k}" in metrics
            }
        )
    return report


def _training_arguments(settings: TrainSettings, out_dir: Path, world_size: int):
    """The Trainer's arguments: no checkpoints or reporters, the CPU unless a GPU is there, gloo across CPUs."""
    from transformers import TrainingArguments

    cuda = torch.cuda.is_available()
    return TrainingArguments(
        output_dir=str(out_dir),
        per_device_train_batch_size=settings.batch_size,
        per_device_eval_batch_size=settings.batch_size * 2,
        learning_rate=settings.learning_rate,
        num_train_epochs=settings.epochs,
        max_steps=settings.max_steps,
        warmup_steps=settings.warmup,
        logging_steps=20,
        save_strategy="no",
        report_to=[],
        seed=settings.seed,
        use_cpu=not cuda,
        bf16=settings.bf16 or (cuda and torch.cuda.is_bf16_supported()),
        dataloader_num_workers=0,
        train_sampling_strategy="group_by_length",
        disable_tqdm=True,
        ddp_backend=None if cuda or world_size == 1 else "gloo",  # NCCL (the default) needs GPUs
    )


def _progress_callback():
    """A TrainerCallback printing one line per logging step on stderr, so stdout stays the report."""
    from transformers import TrainerCallback

    class _Progress(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            if logs and "loss" in logs and state.is_world_process_zero:
                print(
                    f"step {state.global_step}/{state.max_steps}  loss {logs['loss']:.4f}",
                    file=sys.stderr,
                    flush=True,
                )

    return _Progress()


def _replica_digests(model: nn.Module, world_size: int):
    """A TrainerCallback gathering every rank's weight digest after the first step that changed the weights
    (warm-up starts at a learning rate of 0) and at the end; all ranks reach these points together (they are
    collectives), so it is added only when `world_size` > 1."""
    from transformers import TrainerCallback

    class _ReplicaDigests(TrainerCallback):
        def __init__(self) -> None:
            self.first_update_step = 0
            self.after_first_update: list[str] = []
            self.at_end: list[str] = []

        def _gather(self) -> list[str]:
            digests: list[str] = [""] * world_size
            torch.distributed.all_gather_object(digests, weights_digest(model))
            return digests

        def on_step_begin(self, args, state, control, lr_scheduler=None, **kwargs):
            if not self.first_update_step and lr_scheduler is not None and lr_scheduler.get_last_lr()[0] > 0:
                self.first_update_step = state.global_step + 1

        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step == self.first_update_step:
                self.after_first_update = self._gather()

        def on_train_end(self, args, state, control, **kwargs):
            self.at_end = self._gather()

    return _ReplicaDigests()


def _distributed_report(collator: _CountingCollator, replicas, world_size: int) -> dict:
    """What each rank did (its own rows, its first batch) and its weight digests: the replicas must be equal."""
    ranks: list[dict] = [{}] * world_size
    mine = {"rank": distributed_rank()[0], "rows": collator.rows, "first_batch": collator.first_batch}
    torch.distributed.all_gather_object(ranks, mine)
    for r in ranks:
        r["weights_after_first_update"] = (
            replicas.after_first_update[r["rank"]] if replicas.after_first_update else None
        )
        r["weights_at_end"] = replicas.at_end[r["rank"]]
    return {
        "world_size": world_size,
        "backend": str(torch.distributed.get_backend()),
        "ranks": ranks,
        "first_update_step": replicas.first_update_step,
        "replicas_equal": len({r["weights_at_end"] for r in ranks}) == 1,
    }


def sweep(
    run: Callable[[TrainSettings, Path], dict],
    base: TrainSettings,
    learning_rates: Sequence[float],
    batch_sizes: Sequence[int],
    out_dir: str | Path,
    metric: str,
) -> list[dict]:
    """Grid over learning rate x batch size; writes sweep.csv and sweep.html (a heatmap of `metric`)."""
    import pandas as pd
    import plotly.express as px

    out_dir = Path(out_dir)
    rows = []
    for lr in learning_rates:
        for bs in batch_sizes:
            settings = TrainSettings(**{**vars(base), "learning_rate": lr, "batch_size": bs})
            report = run(settings, out_dir / f"lr{lr:g}-bs{bs}")
            rows.append(
                {
                    "learning_rate": lr,
                    "batch_size": bs,
                    **{
                        k: report.get(k, math.nan)
                        for k in (metric, "eval_loss", "train_loss", "train_seconds", "samples_per_second")
                    },
                }
            )
    if not is_main_process():
        return rows
    table = pd.DataFrame(rows)
    table.to_csv(out_dir / "sweep.csv", index=False)
    grid = table.pivot(index="batch_size", columns="learning_rate", values=metric)
    fig = px.imshow(
        grid,
        text_auto=True,
        aspect="auto",
        labels={"color": metric},
        title=f"{metric} by learning rate and batch size",
    )
    fig.write_html(out_dir / "sweep.html", include_plotlyjs="cdn")
    return rows
