"""What a measurement records about the machine it ran on: the CPU model as `lscpu` names it (CPUs of the same
kind differ, some with bf16 matrix units and some without), cores, memory, the software and the load."""

from __future__ import annotations

import os
import platform
from pathlib import Path

BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16", "amx_tile"})


def _cpuinfo_lines() -> list[str]:
    try:
        return Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:  # not Linux
        return []


def cpu_model_name() -> str:
    """The CPU's model name, as `lscpu` shows it ("Intel(R) Xeon(R) Processor"); the architecture elsewhere."""
    for line in _cpuinfo_lines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def machine_info(when: str = "start") -> dict[str, object]:
    """The machine facts every benchmark prints next to its timings.

    Args:
        when: "start" or "end": names the load-average key (`load_average_at_start` / `_at_end`).
    Returns:
        {"cpu", "cores", "memory_gb", "bf16_hardware", "torch_threads", "torch", "python", "load_average_at_*"}.
    """
    import torch

    flags: set[str] = set()
    for line in _cpuinfo_lines():
        if line.startswith("flags"):
            flags = set(line.split(":", 1)[1].split())
            break
    return {
        "cpu": cpu_model_name(),
        "cores": os.cpu_count(),
        "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "bf16_hardware": sorted(flags & BF16_FLAGS),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        f"load_average_at_{when}": [round(x, 2) for x in os.getloadavg()],
    }
