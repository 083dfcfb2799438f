"""What a measurement records about the machine it ran on: the CPU model as `lscpu` names it (CPUs of the same
kind differ, some with bf16 matrix units and some without), cores, memory, the software and the load; how a
training process asks glibc's malloc to keep the memory it frees (`keep_freed_memory`), and how a reading hands
it back (`return_freed_memory`); how the app's server shares the cores among sessions
(`let_idle_torch_threads_sleep`, `share_the_interpreter_finely`)."""

from __future__ import annotations

import ctypes
import os
import platform
import sys
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


# mallopt parameters (glibc's malloc.h) and the values training sets
_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_THRESHOLD = -1, -2, -3
_KEEP = ((_M_MMAP_THRESHOLD, 32 * 2**20), (_M_TRIM_THRESHOLD, 2**31 - 1), (_M_TOP_PAD, 2**30))
_kept = False


def keep_freed_memory() -> bool:
    """Ask glibc's malloc to keep freed memory for the next allocation instead of handing it back to the kernel.

    A training step allocates and frees activations and gradients of megabytes each, layer after layer. By
    default glibc gives blocks that large back to the kernel (fresh mappings, a shrinking heap) and every reuse
    faults them in again, zeroed, 4 kB at a time: on the 2-core VM a long-reader training spent 15-20 % of its
    CPU time in the kernel, ~200,000 page faults a second. Blocks under 32 MB now come from a heap that never
    shrinks: 6-9x fewer faults, kernel time from 11-17 s to ~2 s in a 3-step run, ~1.1x faster steps, and the
    process keeps its peak memory (docs/results.md, "Long-context fine-tuning"). Meant for training processes
    (the fine-tuning commands call it), not for the app, whose memory should go back when a document is dropped.

    Returns:
        True where it applied (glibc), False elsewhere (nothing changes).
    """
    global _kept
    if _kept:
        return True
    if not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc":
        return False
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    _kept = all(mallopt(param, value) == 1 for param, value in _KEEP)
    return _kept


def keeps_freed_memory() -> bool:
    """Whether `keep_freed_memory` applied in this process."""
    return _kept


def return_freed_memory() -> bool:
    """Hand the memory glibc's malloc holds free back to the kernel (`malloc_trim(0)`, ~0.1 s).

    A reading allocates and frees activations of many sizes from several threads; glibc keeps what they free in its
    heaps. On the 1,221-page manual the passage embeddings left ~0.9 GB resident that nothing used (RSS 1,751 MB
    -> 828 MB after a trim) and the chunked pass ~0.3 GB more (docs/results.md, "Books"). Readings call this
    between steps and every few seconds of a step (`longformer_core.reading.background`). Not after
    `keep_freed_memory` (training wants the opposite).

    Returns:
        True where it ran (glibc, and not in a process that keeps freed memory), False elsewhere.
    """
    if _kept or not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc":
        return False
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        return False
    return True


SERVER_SWITCH_INTERVAL_S = 0.00025  # Python's default is 0.005


def share_the_interpreter_finely() -> None:
    """Let a thread that wants Python's GIL take it after 0.25 ms instead of 5 ms (`sys.setswitchinterval`).

    For the app's server, where every session's questions share one interpreter. A question runs hundreds of
    torch ops and takes the GIL back after each; beside a thread that runs plain Python (another session
    tokenizing or indexing a book it just uploaded), each of those takes waited up to the whole interval. Three
    sessions' later questions while a fourth prepared a book: the slowest 2.30 s with 5 ms, 1.78 s with 1 ms,
    1.46 s with 0.25 ms, and none slower without the book (`bench/switch_interval.py`; docs/results.md, "Books").
    """
    sys.setswitchinterval(SERVER_SWITCH_INTERVAL_S)


def let_idle_torch_threads_sleep() -> bool:
    """Have torch's OpenMP threads sleep as soon as an op is done (`OMP_WAIT_POLICY=PASSIVE`), not spin.

    For the app's server, where the cores are shared: every session's questions, other sessions' readings, the
    PDF workers and, on a demo machine, the browsers. By default GNU OpenMP (the one torch's wheel ships) keeps
    each intra-op thread spinning for a while after every op, waiting for the next; beside other busy threads
    that burns the cores they need, and an op whose thread was descheduled waits for it. One person in a browser
    on the 2-core VM, the browser beside the server: a later question p50 0.88 / 0.99 s from click to answers with
    the default, 0.70 / 0.78 s with PASSIVE (`bench/browser_question.py`); the NIST guide's first answer in one
    process no slower (docs/results.md, "Books").

    Must run before torch is first imported: OpenMP reads the environment once, when it loads. A value of
    `OMP_WAIT_POLICY` set by whoever started the server is kept.

    Returns:
        True where it applies (torch not imported yet, and no other policy asked for), False otherwise.
    """
    if "torch" in sys.modules:
        return False
    return os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE").upper() == "PASSIVE"
