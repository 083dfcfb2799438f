"""longformer_core.machine: the facts a measurement records, and the malloc setting of training processes."""

from __future__ import annotations

import platform
import sys

from longformer_core import machine


def test_machine_info_names_the_cpu_and_the_software() -> None:
    info = machine.machine_info("end")
    assert info["cpu"] and info["cores"] >= 1 and info["torch_threads"] >= 1
    assert "load_average_at_end" in info and set(info["bf16_hardware"]) <= machine.BF16_FLAGS


def test_training_keeps_freed_memory_where_malloc_is_glibc() -> None:
    glibc = sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"
    assert machine.keep_freed_memory() is glibc
    assert machine.keep_freed_memory() is glibc and machine.keeps_freed_memory() is glibc  # once is enough
