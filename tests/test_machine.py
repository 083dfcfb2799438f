"""longformer_core.machine: the facts a measurement records, and the malloc setting of training processes."""

from __future__ import annotations

import ast
import ctypes
import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

from longformer_core import machine

REPO_ROOT = Path(__file__).resolve().parent.parent


def test_machine_info_names_the_cpu_and_the_software() -> None:
    info = machine.machine_info("end")
    assert info["cpu"] and info["cores"] >= 1 and info["torch_threads"] >= 1
    assert "load_average_at_end" in info and set(info["bf16_hardware"]) <= machine.BF16_FLAGS


def test_training_keeps_freed_memory_where_malloc_is_glibc() -> None:
    glibc = sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"
    assert machine.keep_freed_memory() is glibc
    assert machine.keep_freed_memory() is glibc and machine.keeps_freed_memory() is glibc  # once is enough


def _rss_mb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS"):
            return int(line.split()[1]) // 1024
    return 0


@pytest.mark.skipif(
    not (sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"), reason="glibc's malloc_trim"
)
def test_a_reading_hands_freed_memory_back(monkeypatch: pytest.MonkeyPatch) -> None:
    """Memory freed in holes of malloc's heap stays resident until a trim gives it back (what a reading leaves)."""
    monkeypatch.setattr(machine, "_kept", False)  # another test may have asked this process to keep it
    libc = ctypes.CDLL("libc.so.6")
    libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, (ctypes.c_size_t,)
    libc.free.argtypes = (ctypes.c_void_p,)
    blocks = [libc.malloc(16384) for _ in range(12000)]  # ~190 MB in blocks malloc keeps in its heap
    for block in blocks:
        ctypes.memset(block, 1, 16384)
    for block in blocks[::2]:  # half of it freed, in holes between blocks still in use
        libc.free(block)
    before = _rss_mb()
    assert machine.return_freed_memory()
    after = _rss_mb()
    for block in blocks[1::2]:
        libc.free(block)
    assert before - after >= 40, (before, after)
    monkeypatch.setattr(machine, "_kept", True)
    assert not machine.return_freed_memory()  # a training process keeps what it frees


def test_the_server_lets_threads_take_the_interpreter_every_quarter_millisecond():
    before = sys.getswitchinterval()  # tests that ran the app set it already
    try:
        sys.setswitchinterval(0.005)  # Python's default
        machine.share_the_interpreter_finely()
        assert sys.getswitchinterval() == pytest.approx(0.00025)
    finally:
        sys.setswitchinterval(before)


_IN_A_FRESH_PROCESS = """
import os, sys
from longformer_core import machine
applied = machine.let_idle_torch_threads_sleep()
policy = os.environ.get("OMP_WAIT_POLICY")
import torch
print(applied, policy, machine.let_idle_torch_threads_sleep())
"""


@pytest.mark.parametrize(
    ("asked", "printed"), [(None, "True PASSIVE False"), ("ACTIVE", "False ACTIVE False")]
)
def test_the_server_has_torch_threads_sleep_between_ops_unless_told_otherwise(asked, printed) -> None:
    """Set before torch loads OpenMP (it reads the environment then), kept when whoever started it chose."""
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    if asked:
        env["OMP_WAIT_POLICY"] = asked
    run = subprocess.run(
        [sys.executable, "-c", _IN_A_FRESH_PROCESS],
        check=False,
        env=env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == printed.split()


def test_the_app_sets_the_wait_policy_before_its_first_import_that_reaches_torch() -> None:
    tree = ast.parse((REPO_ROOT / "app.py").read_text())
    statements = [
        s for s in tree.body if not isinstance(s, ast.Expr) or not isinstance(s.value, ast.Constant)
    ]
    call = next(
        i
        for i, s in enumerate(statements)
        if isinstance(s, ast.Expr) and getattr(s.value.func, "id", "") == "let_idle_torch_threads_sleep"
    )
    before = [s for s in statements[:call] if isinstance(s, ast.ImportFrom)]
    assert {s.module for s in before} <= {"__future__", "longformer_core.machine"}
    assert not [s for s in statements[:call] if isinstance(s, ast.Import)]
