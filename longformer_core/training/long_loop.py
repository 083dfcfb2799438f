"""The training loop of the long-context readers (`finetune_long`): AdamW with warm-up and linear decay,
gradient accumulation, bf16 autocast where native, resumable checkpoints.

Data order: epoch e visits the windows in `default_rng([seed, e]).permutation(n)`; the data position is the number
of windows consumed (epoch = position // n, index = position % n), so a resumed run reads exactly the windows the
stopped one would have read next.

Checkpoints: with `LongTrainSettings.checkpoint_dir` set, the loop writes `checkpoint-N/` there at least every
`checkpoint_minutes`, on SIGTERM, at `stop_after_steps` and at the end (the last one marks the reader done),
keeping the latest only. A checkpoint is plain tensors and JSON (`training/checkpoints.py`), nothing pickled:
- `model.safetensors`: the trainable weights under the model's own names (LoRA `...lora_a/lora_b`,
  `qa_outputs.*`) and the answer-type classifier as `answer_type.*`, with the head's card (`adapter.json`: the
  LoRA config), so `model.qa_head.read_qa_head` reads it as a head (`export-head` makes it a head folder);
- `optimizer.safetensors` (AdamW's moments and step counts) and `rng.safetensors` (torch's generators);
- `state.json`: step, total steps, data position, the optimizer's parameter groups, the scheduler's state,
  numpy's and Python's random states, the settings and the log so far.
`LongTrainSettings.resume` continues from one; the resumed run ends with the weights of a run that never stopped
(tests/test_finetune_long.py).
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from longformer_core.training.checkpoints import (
    LOOP_MARKER,
    CheckpointClock,
    StepRate,
    latest_checkpoint,
    load_optimizer_state,
    optimizer_state,
    rng_state,
    set_rng_state,
    sigterm_sets,
    write_checkpoint,
)
from longformer_core.training.long_data import TrainWindow
from longformer_core.training.long_model import native_bf16, reader_loss

CHECKPOINT_FORMAT = 1  # bump when state.json changes meaning


@dataclass
class LongTrainSettings:
    epochs: float = 1.0
    learning_rate: float = 2e-4
    # The answer-type classifier starts from random weights, the rest from a trained head: at the same learning
    # rate it hardly moved in the first runs (issue 25: its weights ended within 0.5 % of their start), so it
    # learns at this multiple of `learning_rate`.
    type_lr_scale: float = 25.0
    batch_size: int = 8  # windows per optimizer step (gradient accumulation, one window per forward)
    seed: int = 0
    warmup: float = 0.1  # fraction of steps
    max_steps: int = -1  # stop early (throughput checks, tests)
    precision: str = "auto"  # "auto" (bf16 where native) | "bf16" | "fp32"
    threads: int | None = None  # torch CPU threads
    checkpoint_dir: str | None = (
        None  # where checkpoints go (finetune_long: one subfolder per reader); None: none
    )
    checkpoint_minutes: float = 15.0  # a checkpoint at least this often
    stop_after_steps: int = (
        0  # save a checkpoint and stop when a reader reaches this step (0: run to the end)
    )
    resume: str | None = None  # a stopped run's checkpoint folder to continue from


@dataclass
class TrainLog:
    losses: list[float] = field(default_factory=list)  # per optimizer step
    seconds: float = 0.0  # training time, summed over the sessions of a resumed run
    windows: int = 0
    tokens: int = 0
    steps: int = 0
    precision: str = "fp32"
    stopped: bool = False  # stopped before the end (SIGTERM, stop_after_steps): resume it
    checkpoint: str | None = None  # the latest checkpoint written or resumed from
    resumed_from: str | None = None


def schedule_length(n_items: int, settings: LongTrainSettings) -> tuple[int, int]:
    """(optimizer steps, warm-up steps) of a run over `n_items` items."""
    steps = math.ceil(math.ceil(n_items * settings.epochs) / settings.batch_size)
    if settings.max_steps > 0:
        steps = min(steps, settings.max_steps)
    return steps, max(1, int(settings.warmup * steps))


def use_bf16(precision: str, device: torch.device) -> bool:
    """bf16 autocast: "bf16", or "auto" where the hardware does bf16 natively."""
    return precision == "bf16" or (precision == "auto" and native_bf16(device))


class _Interrupt:
    interrupted = False  # set by SIGTERM (`sigterm_sets`)


class LongLoop:
    """One reader's run over `batches`: call `run()`; the weights are trained in place."""

    def __init__(
        self,
        module: nn.Module,
        type_head: nn.Module,
        batches: Sequence[Sequence[TrainWindow]],
        settings: LongTrainSettings,
        longformer: bool,
        pad_id: int,
        device: torch.device,
        head_card: dict | None = None,
    ) -> None:
        self.head_card = head_card  # written as adapter.json beside the weights: read_qa_head reads it
        self.module, self.type_head, self.batches, self.settings = module, type_head, batches, settings
        self.longformer, self.pad_id, self.device = longformer, pad_id, device
        self.bf16 = use_bf16(settings.precision, device)
        torch.manual_seed(settings.seed)
        module.train().to(device)
        type_head.train().to(device)
        self.params = self._trainable()
        lr = settings.learning_rate
        typed = [p for name, p in self.params.items() if name.startswith("answer_type.")]
        rest = [p for name, p in self.params.items() if not name.startswith("answer_type.")]
        groups = [{"params": rest, "lr": lr}, {"params": typed, "lr": lr * settings.type_lr_scale}]
        self.optimizer = torch.optim.AdamW(groups, lr=lr, weight_decay=0.0)
        self.steps, warm = schedule_length(len(batches), settings)
        steps = self.steps
        self.schedule = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda s: min((s + 1) / warm, max(0.0, (steps - s) / max(1, steps - warm)))
        )
        self.step, self.position = 0, 0  # optimizer steps done, windows consumed
        self.log = TrainLog(precision="bf16" if self.bf16 else "fp32")
        self._order: tuple[int, np.ndarray] = (-1, np.zeros(0, dtype=np.int64))

    def _trainable(self) -> dict[str, nn.Parameter]:
        """{checkpoint name: parameter}: the model's trainable weights and the answer-type head as `answer_type.*`."""
        named = {n: p for n, p in self.module.named_parameters() if p.requires_grad}
        for name, p in self.type_head.named_parameters():
            named["answer_type." + name.removeprefix("classifier.")] = p
        return named

    def _item(self, position: int) -> Sequence[TrainWindow]:
        """The windows at a data position: epoch position // n in that epoch's seeded order."""
        n = len(self.batches)
        epoch, index = divmod(position, n)
        if self._order[0] != epoch:
            self._order = (epoch, np.random.default_rng([self.settings.seed, epoch]).permutation(n))
        return self.batches[int(self._order[1][index])]

    def _one_step(self) -> float:
        """Accumulate `batch_size` items' gradients, then one clipped AdamW step; returns the mean loss."""
        step_loss = 0.0
        size = self.settings.batch_size
        for _ in range(size):
            rows = self._item(self.position)
            self.position += 1
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16):
                loss = reader_loss(
                    self.module, self.type_head, rows, self.longformer, self.pad_id, self.device
                )
            (loss / size).backward()
            step_loss += float(loss.detach()) / size
            self.log.windows += 1
            self.log.tokens += sum(len(r.input_ids) for r in rows)
        torch.nn.utils.clip_grad_norm_(list(self.params.values()), 1.0)
        self.optimizer.step()
        self.schedule.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.step += 1
        self.log.steps = self.step
        self.log.losses.append(round(step_loss, 5))
        return step_loss

    def run(self, progress: Callable[[str], None] | None = None) -> TrainLog:
        """Train to the end, or until SIGTERM / `stop_after_steps` (then `log.stopped`), checkpointing as the
        module docstring says; resumes first when `settings.resume` is set."""
        settings = self.settings
        if settings.resume:
            self.restore(latest_checkpoint(settings.resume, LOOP_MARKER))
        saving = bool(settings.checkpoint_dir)  # without a checkpoint folder, SIGTERM kills as usual
        stop_at = settings.stop_after_steps if saving and settings.stop_after_steps > self.step else 0
        rate, clock, interrupt = (
            StepRate(self.step),
            CheckpointClock(settings.checkpoint_minutes),
            _Interrupt(),
        )
        t0 = time.perf_counter() - self.log.seconds
        with sigterm_sets(interrupt) if saving else contextlib.nullcontext():
            while self.step < self.steps:
                loss = self._one_step()
                self.log.seconds = time.perf_counter() - t0
                if progress:
                    progress(rate.line(self.step, self.steps, loss))
                stop = (interrupt.interrupted or self.step == stop_at) and self.step < self.steps
                if saving and (stop or clock.due() or self.step == self.steps):
                    self.log.checkpoint = str(self.save())
                    clock.saved()
                if stop:
                    self.log.stopped = True
                    break
        self.module.eval()
        self.type_head.eval()
        return self.log

    def save(self) -> Path:
        """Write a checkpoint of the current step (see the module docstring)."""
        optimizer_tensors, optimizer_json = optimizer_state(self.optimizer)
        rng_tensors, rng_json = rng_state()
        epoch, index = divmod(self.position, len(self.batches))
        state = {
            "format": CHECKPOINT_FORMAT,
            "step": self.step,
            "steps": self.steps,
            "done": self.step >= self.steps,
            "windows_in_data": len(self.batches),
            "position": self.position,
            "epoch": epoch,
            "index": index,
            "optimizer": optimizer_json,
            "scheduler": self.schedule.state_dict(),
            "rng": rng_json,
            "settings": asdict(self.settings),
            "log": asdict(self.log),
        }
        weights = {n: p.detach().cpu().clone() for n, p in self.params.items()}
        files = {
            "model.safetensors": weights,
            "optimizer.safetensors": optimizer_tensors,
            "rng.safetensors": rng_tensors,
        }
        cards = {LOOP_MARKER: state} | ({"adapter.json": self.head_card} if self.head_card else {})
        return write_checkpoint(Path(self.settings.checkpoint_dir), self.step, files, cards, LOOP_MARKER)

    def restore(self, folder: Path) -> None:
        """Continue from a checkpoint `save` wrote.

        Raises:
            ValueError: it was written by a run over other data or with another length (the message says which).
        """
        import json

        from safetensors.torch import load_file

        state = json.loads((folder / LOOP_MARKER).read_text(encoding="utf-8"))
        if (state.get("windows_in_data"), state.get("steps")) != (len(self.batches), self.steps):
            raise ValueError(
                f"{folder} was written by a run over {state.get('windows_in_data')} windows in {state.get('steps')} "
                f"steps; this run has {len(self.batches)} windows in {self.steps} steps: resume with the same data "
                "and options (--squad, --hotpot, --squad-questions, --window-tokens, --epochs, --batch-size, "
                "--max-steps, --seed) as the stopped run."
            )
        weights = load_file(str(folder / "model.safetensors"))
        with torch.no_grad():
            for name, param in self.params.items():
                param.copy_(weights[name].to(param.device))
        load_optimizer_state(
            self.optimizer, load_file(str(folder / "optimizer.safetensors")), state["optimizer"]
        )
        self.schedule.load_state_dict(state["scheduler"])
        set_rng_state(load_file(str(folder / "rng.safetensors")), state["rng"])
        self.step, self.position = state["step"], state["position"]
        self.log = TrainLog(**{**state["log"], "stopped": False, "resumed_from": str(folder)})
        self.log.checkpoint = str(folder)


def train(
    module: nn.Module,
    type_head: nn.Module,
    batches: Sequence[Sequence[TrainWindow]],
    settings: LongTrainSettings,
    longformer: bool,
    pad_id: int,
    device: torch.device,
    progress: Callable[[str], None] | None = None,
    head_card: dict | None = None,
) -> TrainLog:
    """AdamW with linear warm-up and decay over `batches` (each a list of windows run in one forward).

    One optimizer step per `settings.batch_size` items of `batches`; an item is one Longformer window, or
    the chunks of one window for the chunked reader (so both get the same number of steps on the same text).
    Checkpoints and resuming: see the module docstring; `head_card` (the LoRA config, ...) goes beside the weights
    as adapter.json, so a checkpoint reads as a QA head.
    """
    return LongLoop(module, type_head, batches, settings, longformer, pad_id, device, head_card).run(progress)
