"""The training loop: transformers.Trainer with progress on stderr, resumable checkpoints, data-parallel checks,
and sweeps.

Under torchrun every process trains a replica; `run_trainer` gathers each rank's weight digest after the first
update and at the end, so the report shows that the replicas stayed equal.

Checkpoints (issue 25): a run writes one in `TrainSettings.checkpoint_dir` (outside the repository, by default
under LONGDOC_CACHE) every `checkpoint_minutes`, on SIGTERM, at `stop_after_steps` and at the end, keeping the
latest only. A checkpoint is the Trainer's own: the *trainable* weights (`model.safetensors`: for a LoRA head a few
MB, not the frozen base; a LoRA QA head's card beside it as `adapter.json`, so the checkpoint reads like a head
folder), the optimizer and scheduler state dicts, the random states and `trainer_state.json`
(the step, hence the data position: the Trainer skips the batches already seen). None of it pickles a project
class, so a checkpoint survives a module move. `TrainSettings.resume` continues from one; the resumed run ends
with the same weights as one that never stopped (tests/test_finetune.py).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from longformer_core.training.checkpoints import (  # latest_checkpoint re-exported: finetune's callers use it
    CheckpointClock,
    StepRate,
    latest_checkpoint,
    sigterm_sets,
)


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
    bf16: bool | None = (
        None  # bf16 autocast; None: where the CPU or GPU does bf16 natively (detected at run time)
    )
    max_steps: int = -1  # length of the run in optimizer steps (-1: from `epochs`)
    checkpoint_dir: str | None = None  # where checkpoints go (None: no checkpoints)
    checkpoint_minutes: float = 15.0  # a checkpoint at least this often
    stop_after_steps: int = 0  # save a checkpoint and stop at this step, to resume later (0: run to the end)
    resume: str | None = None  # a checkpoint (or a checkpoint_dir holding several) to continue from


def use_bf16(requested: bool | None) -> bool:
    """bf16 autocast for training: as requested, else where the hardware does bf16 natively."""
    if requested is not None:
        return requested
    if torch.cuda.is_available():
        return torch.cuda.is_bf16_supported()
    from longformer_core.model.registry import cpu_has_native_bf16

    return cpu_has_native_bf16()


def run_trainer(
    model: nn.Module,
    train_ds,
    eval_ds,
    collator,
    settings: TrainSettings,
    out_dir: Path,
    compute_metrics: Callable | None = None,
) -> dict:
    """Train with transformers.Trainer (checkpointed and resumable, see the module docstring).

    Returns:
        {"train_loss", "train_seconds", "samples_per_second", "steps", "log", "eval_loss"?}; a run that
        stopped before its end (SIGTERM, `stop_after_steps`) instead says {"stopped": True, "checkpoint", ...}
        and is not evaluated: resume it with `TrainSettings.resume`.
    """
    from transformers import PrinterCallback, set_seed

    set_seed(settings.seed)
    _, world_size = distributed_rank()
    collator = _CountingCollator(collator)
    trainer = _trainer_class()(
        model=model,
        args=_training_arguments(settings, out_dir, world_size),
        train_dataset=train_ds,
        eval_dataset=eval_ds,
        data_collator=collator,
        compute_metrics=compute_metrics,
    )
    trainer.remove_callback(PrinterCallback)
    trainer.add_callback(_progress_callback())
    checkpoints = _checkpoint_callback(settings)
    trainer.add_callback(checkpoints)
    replicas = _replica_digests(model, world_size)
    if world_size > 1:
        trainer.add_callback(replicas)
    resume = str(latest_checkpoint(settings.resume)) if settings.resume else None
    t0 = time.perf_counter()
    # Without a checkpoint folder SIGTERM kills as usual: a stopped run could not be resumed.
    on_sigterm = sigterm_sets(checkpoints) if settings.checkpoint_dir else contextlib.nullcontext()
    with on_sigterm:
        result = trainer.train(resume_from_checkpoint=resume)
    report = {
        "train_loss": round(float(result.training_loss), 4),
        "train_seconds": round(time.perf_counter() - t0, 1),
        "train_rows": len(train_ds),
        "samples_per_second": round(float(result.metrics.get("train_samples_per_second", 0.0)), 2),
        "steps": int(result.global_step),
        "log": [h for h in trainer.state.log_history if "loss" in h],
        "bf16": bool(trainer.args.bf16),
    }
    if resume:
        report["resumed_from"] = resume
    if settings.checkpoint_dir:
        report["checkpoint"] = str(latest_checkpoint(settings.checkpoint_dir))
    if result.global_step < trainer.state.max_steps:  # stopped on purpose or by SIGTERM: resume later
        report["stopped"] = True
        print(
            f"stopped at step {result.global_step}/{trainer.state.max_steps}; continue with "
            f"--resume {report.get('checkpoint', '(no checkpoint_dir)')}",
            file=sys.stderr,
            flush=True,
        )
        return report
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
    """The Trainer's arguments: checkpoints only when `_checkpoint_callback` asks for one (the latest kept), no
    reporters, the CPU unless a GPU is there, gloo across CPUs."""
    from transformers import TrainingArguments

    cuda = torch.cuda.is_available()
    return TrainingArguments(
        output_dir=str(settings.checkpoint_dir or out_dir),
        per_device_train_batch_size=settings.batch_size,
        per_device_eval_batch_size=settings.batch_size * 2,
        learning_rate=settings.learning_rate,
        num_train_epochs=settings.epochs,
        max_steps=settings.max_steps,
        warmup_steps=settings.warmup,
        logging_steps=20,
        save_strategy="steps" if settings.checkpoint_dir else "no",
        save_steps=10**9,  # never by count: `_checkpoint_callback` decides (time, SIGTERM, stop, end)
        save_total_limit=1,
        report_to=[],
        seed=settings.seed,
        use_cpu=not cuda,
        bf16=use_bf16(settings.bf16),
        dataloader_num_workers=0,
        train_sampling_strategy="group_by_length",
        disable_tqdm=True,
        ddp_backend=None if cuda or world_size == 1 else "gloo",  # NCCL (the default) needs GPUs
    )


def _progress_callback():
    """A TrainerCallback printing one line per logging step on stderr (loss, steps/s, ETA), so stdout stays the
    report."""
    from transformers import TrainerCallback

    class _Progress(TrainerCallback):
        def on_train_begin(self, args, state, control, **kwargs):
            self.rate = StepRate(state.global_step)  # a resumed run starts mid-way

        def on_log(self, args, state, control, logs=None, **kwargs):
            if logs and "loss" in logs and state.is_world_process_zero:
                line = self.rate.line(state.global_step, state.max_steps, logs["loss"])
                print(line, file=sys.stderr, flush=True)

    return _Progress()


def _trainer_class():
    """transformers.Trainer whose checkpoints hold only the trainable weights (a LoRA head: a few MB) and, for a
    model with a `_head_card` (finetune_qa's LoRA heads), that card as adapter.json: `model.qa_head.read_qa_head`
    then reads the checkpoint like a head folder.

    The Trainer loads a checkpoint's weights non-strictly, so the frozen base comes from where it always does.
    """
    from safetensors.torch import save_file
    from transformers import Trainer

    class _TrainableWeightsTrainer(Trainer):
        def _save(self, output_dir: str | None = None, state_dict: dict | None = None) -> None:
            if not self.args.should_save:
                return
            folder = Path(output_dir or self.args.output_dir)
            folder.mkdir(parents=True, exist_ok=True)
            trainable = {
                name: param.detach().cpu().clone().contiguous()
                for name, param in self.model.named_parameters()
                if param.requires_grad
            }
            save_file(trainable, str(folder / "model.safetensors"), metadata={"format": "pt"})
            card = getattr(
                self.model, "_head_card", None
            )  # a LoRA head's config and split: export_head reads it
            if card is not None:
                (folder / "adapter.json").write_text(json.dumps(card, indent=2), encoding="utf-8")

    return _TrainableWeightsTrainer


def _checkpoint_callback(settings: TrainSettings):
    """A TrainerCallback asking for a checkpoint every `checkpoint_minutes`, at `stop_after_steps` (then stopping)
    and after SIGTERM (then stopping); `sigterm_sets` points the signal at its `interrupted` flag."""
    from transformers import TrainerCallback

    class _Checkpoints(TrainerCallback):
        def __init__(self) -> None:
            self.interrupted = False
            self.clock = CheckpointClock(settings.checkpoint_minutes)

        def on_step_end(self, args, state, control, **kwargs):
            if not settings.checkpoint_dir:
                return
            stop = self.interrupted or state.global_step == settings.stop_after_steps
            if stop or self.clock.due():
                control.should_save = True
                self.clock.saved()
            if stop:
                control.should_training_stop = True

    return _Checkpoints()


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
            name = f"lr{lr:g}-bs{bs}"
            checkpoints = str(Path(base.checkpoint_dir) / name) if base.checkpoint_dir else None
            settings = TrainSettings(
                **{**vars(base), "learning_rate": lr, "batch_size": bs, "checkpoint_dir": checkpoints}
            )
            report = run(settings, out_dir / name)
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
