"""Every `LONGDOC_*` environment variable, with its default and what it does, read in one place.

Adding a setting is one line in `SETTINGS` (and one in the README's settings table, which a test checks).
Code reads a setting with `value(NAME)` or one of the typed helpers below, never `os.environ` directly.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Setting:
    """One environment variable: its name, default ("" = unset) and a one-line help."""

    name: str
    default: str
    help: str


SETTINGS: tuple[Setting, ...] = (
    Setting(
        "LONGDOC_DATA_DIR",
        "../shared/data",
        "Shared evaluation data and the NIST sample (relative to the repository's parent).",
    ),
    Setting(
        "LONGDOC_CACHE",
        "~/.cache/longdoc",
        "Where the converted embedded model (and, by default, corpus embeddings) are cached.",
    ),
    Setting(
        "LONGDOC_CORPUS_CACHE",
        "",
        "Where corpus embeddings (parquet) are cached; default: under LONGDOC_CACHE.",
    ),
    Setting(
        "LONGDOC_CHECKPOINTS",
        "",
        "Where fine-tuning runs keep their resumable checkpoints; default: LONGDOC_CACHE/training.",
    ),
    Setting(
        "LONGDOC_QA_HEAD",
        "",
        "Folder of a trained QA head for the embedded model, or 'none'; default assets/qa_head.",
    ),
    Setting(
        "LONGDOC_LONG_HEAD",
        "",
        "Folder of a long reader (finetune-long's long/) for the embedded Longformer, or 'none'; default "
        "assets/long_head when shipped. With one, the Longformer column reads one long window per question.",
    ),
    Setting(
        "LONGDOC_MAX_TOKENS",
        "",
        "Longest document the app and CLI read, in tokens; longer ones are refused. Default: 1500000 (a "
        "1,500-page book) for the embedded models' width, proportionally fewer for wider ones (750000 for "
        "hidden size 768).",
    ),
    Setting("LONGDOC_MAX_UPLOAD_MB", "200", "Largest file accepted, in megabytes."),
    Setting(
        "LONGDOC_CACHE_MB",
        "4096",
        "Memory budget of the app's document cache (token states, vectors, indexes), in megabytes; least recently "
        "used documents nobody is reading are dropped past it. A document whose token states would take more "
        "than half of it keeps the rest in a memory-mapped file under LONGDOC_CACHE/states.",
    ),
    Setting(
        "LONGDOC_PDF_WORKERS",
        "2",
        "PDFs read at once, each in its own worker process (killed when a page or the file takes too long).",
    ),
    Setting(
        "LONGDOC_PDF_WORKER_MB",
        "1024",
        "Memory a PDF worker may use beyond its start-up size, in megabytes; a PDF that needs more is refused.",
    ),
    Setting(
        "LONGDOC_DEVICE",
        "",
        "Torch device for the models ('cpu', 'cuda', 'cuda:1'); default CUDA when present.",
    ),
    Setting(
        "LONGDOC_DTYPE",
        "auto",
        "Inference arithmetic: auto (bf16 where the CPU/GPU does it natively, else fp32), fp32 or bf16.",
    ),
    Setting(
        "LONGDOC_CPU_KERNEL",
        "1",
        "0 turns off the C attention kernel the BERT-family encoders use on the CPU (built on first use with the "
        "machine's C compiler; PyTorch's attention where it cannot be).",
    ),
)
BY_NAME: dict[str, Setting] = {s.name: s for s in SETTINGS}


def value(name: str) -> str:
    """The setting's value: the environment variable when set and not blank, else its default.

    Args:
        name: a name in `SETTINGS` (KeyError otherwise, so a typo fails loudly).
    Returns:
        the raw string, stripped ("" when unset without a default).
    """
    default = BY_NAME[name].default
    raw = os.environ.get(name, "").strip()
    return raw or default


def positive_number(name: str) -> float:
    """A positive number setting; a typo or a non-positive value falls back to the default.

    A typo in the environment must not make every document or upload fail.
    """
    try:
        number = float(value(name))
    except ValueError:
        number = 0.0
    return number if number > 0 else float(BY_NAME[name].default)


def path(name: str) -> Path | None:
    """A folder setting with ~ expanded; None when it is unset and has no default."""
    raw = value(name)
    return Path(raw).expanduser() if raw else None


def data_dir() -> Path:
    """The shared public data folder (LONGDOC_DATA_DIR; the default is relative to the repository's parent)."""
    raw = os.environ.get("LONGDOC_DATA_DIR", "").strip()
    return Path(raw).expanduser() if raw else REPO_ROOT.parent / "shared" / "data"


def cache_dir() -> Path:
    """Where converted models live (LONGDOC_CACHE, default ~/.cache/longdoc)."""
    return path("LONGDOC_CACHE") or Path.home() / ".cache" / "longdoc"


def checkpoints_dir() -> Path:
    """Where fine-tuning runs keep resumable checkpoints (LONGDOC_CHECKPOINTS, default LONGDOC_CACHE/training)."""
    return path("LONGDOC_CHECKPOINTS") or cache_dir() / "training"
