"""What the two training loops share about resumable runs: finding the checkpoint to resume, SIGTERM as a request
to save and stop, the checkpoint clock, the progress line, and state that travels as safetensors + JSON.

`finetune` (transformers.Trainer, `trainer.py`) and `finetune_long` (its own loop, `long_loop.py`) both write
`checkpoint-N` folders and keep the latest; a folder is recognised by its marker file (`trainer_state.json` for
the Trainer's, `state.json` for the long loop's). Nothing here pickles a project class: tensors go to
safetensors, the rest to JSON, so a checkpoint survives a module move.
"""

from __future__ import annotations

import json
import random
import re
import shutil
import signal
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch

TRAINER_MARKER = "trainer_state.json"  # the Trainer's checkpoints
LOOP_MARKER = "state.json"  # the long loop's checkpoints
CHECKPOINT_NAME = re.compile(r"checkpoint-(\d+)")


def latest_checkpoint(path: str | Path, marker: str = TRAINER_MARKER) -> Path:
    """The checkpoint to resume from: `path` itself when it is one, else its `checkpoint-N` with the largest N.

    Args:
        path: a checkpoint folder, or the folder a run wrote its checkpoints in.
        marker: the file that makes a folder a complete checkpoint (written last).
    Raises:
        ValueError: nothing resumable there (the message names the folder).
    """
    path = Path(path)
    if (path / marker).is_file():
        return path
    steps = [
        (int(m.group(1)), p)
        for p in path.glob("checkpoint-*")
        if (m := CHECKPOINT_NAME.fullmatch(p.name)) and (p / marker).is_file()
    ]
    if not steps:
        raise ValueError(
            f"No training checkpoint in {path}: give --resume the folder a stopped run named in its log "
            f"(it holds checkpoint-N folders with a {marker})."
        )
    return max(steps)[1]


class sigterm_sets:
    """Within the block, SIGTERM sets `target.interrupted = True` (the run saves and stops after its current step)
    instead of killing the process; the previous handler comes back after. Only in the main thread (signals
    cannot be caught elsewhere)."""

    def __init__(self, target) -> None:
        self.target, self.previous = target, None

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self.previous = signal.signal(signal.SIGTERM, self._handle)
        return self

    def _handle(self, signum, frame) -> None:
        print("SIGTERM: saving a checkpoint after this step, then stopping", file=sys.stderr, flush=True)
        self.target.interrupted = True

    def __exit__(self, *exc) -> None:
        if self.previous is not None:
            signal.signal(signal.SIGTERM, self.previous)


class CheckpointClock:
    """Says when a checkpoint is due: at least every `minutes` of training."""

    def __init__(self, minutes: float) -> None:
        self.minutes, self.last = minutes, time.monotonic()

    def due(self) -> bool:
        return time.monotonic() - self.last >= 60 * self.minutes

    def saved(self) -> None:
        self.last = time.monotonic()


class StepRate:
    """Steps per second since this process started training (a resumed run starts mid-way) and the ETA."""

    def __init__(self, first_step: int) -> None:
        self.t0, self.step0 = time.perf_counter(), first_step

    def line(self, step: int, total: int, loss: float) -> str:
        """ "step 12/900  loss 1.2345  0.52 steps/s  ETA 29 min" for the progress log."""
        rate = (step - self.step0) / max(time.perf_counter() - self.t0, 1e-9)
        eta = (total - step) / max(rate, 1e-9)
        return f"step {step}/{total}  loss {loss:.4f}  {rate:.2f} steps/s  ETA {eta / 60:.0f} min"


def rng_state() -> tuple[dict[str, torch.Tensor], dict]:
    """(tensors, JSON) of the torch (CPU and CUDA), numpy and Python random states."""
    tensors = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        tensors |= {f"cuda.{i}": s for i, s in enumerate(torch.cuda.get_rng_state_all())}
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    version, internal, gauss = random.getstate()
    return tensors, {
        "numpy": [kind, keys.tolist(), int(pos), int(has_gauss), float(cached)],
        "python": [version, list(internal), gauss],
    }


def set_rng_state(tensors: dict[str, torch.Tensor], saved: dict) -> None:
    """Restore what `rng_state` returned."""
    torch.set_rng_state(tensors["torch"])
    cuda = [
        tensors[k] for k in sorted((k for k in tensors if k.startswith("cuda.")), key=lambda k: int(k[5:]))
    ]
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda)
    kind, keys, pos, has_gauss, cached = saved["numpy"]
    np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    version, internal, gauss = saved["python"]
    random.setstate((version, tuple(internal), gauss))


def optimizer_state(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    """(tensors "<param index>.<name>", JSON of the parameter groups and any non-tensor state) of an optimizer."""
    saved = optimizer.state_dict()
    tensors, scalars = {}, {}
    for index, values in saved["state"].items():
        for name, value in values.items():
            if torch.is_tensor(value):
                tensors[f"{index}.{name}"] = value.detach().cpu().contiguous()
            else:
                scalars[f"{index}.{name}"] = value
    return tensors, {"param_groups": saved["param_groups"], "scalars": scalars}


def load_optimizer_state(
    optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], saved: dict
) -> None:
    """Restore what `optimizer_state` returned (tensors move to the parameters' device)."""
    state: dict[int, dict] = defaultdict(dict)
    for key, value in [*tensors.items(), *saved["scalars"].items()]:
        index, name = key.split(".", 1)
        state[int(index)][name] = value
    groups = [
        {**g, "betas": tuple(g["betas"])} if "betas" in g else g for g in saved["param_groups"]
    ]  # JSON: lists
    optimizer.load_state_dict({"state": dict(state), "param_groups": groups})


def write_checkpoint(
    folder: Path,
    step: int,
    tensor_files: dict[str, dict[str, torch.Tensor]],
    json_files: dict[str, dict],
    marker: str,
) -> Path:
    """Write `folder/checkpoint-<step>` whole or not at all, then remove the older checkpoints there.

    Args:
        folder: the run's checkpoint folder.
        step: the optimizer step the checkpoint holds.
        tensor_files: {file name: tensors} written as safetensors.
        json_files: {file name: JSON}; `marker` among them, written last (a folder without it is incomplete).
        marker: the file that marks a complete checkpoint.
    Returns:
        the checkpoint's folder.
    """
    from safetensors.torch import save_file

    final = folder / f"checkpoint-{step}"
    partial = folder / f".checkpoint-{step}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    for name, tensors in tensor_files.items():
        save_file(
            {k: v.contiguous() for k, v in tensors.items()}, str(partial / name), metadata={"format": "pt"}
        )
    for name in sorted(json_files, key=lambda n: n == marker):
        (partial / name).write_text(json.dumps(json_files[name], indent=1), encoding="utf-8")
    shutil.rmtree(final, ignore_errors=True)
    partial.rename(final)
    for old in folder.glob("checkpoint-*"):
        if old != final and CHECKPOINT_NAME.fullmatch(old.name):
            shutil.rmtree(old, ignore_errors=True)
    return final
