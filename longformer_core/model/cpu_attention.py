"""A faster attention for small heads on the CPU (inference): cpu_attention.c, built on first use with the
machine's C compiler, called through ctypes, and registered as the attention of the BERT-family encoders.

Why: MiniLM's heads are 32 wide. There PyTorch's CPU flash kernel runs at ~140 GFLOP/s while the linear layers
reach ~740, so attention took 47 % of a chunk batch for 18 % of its FLOPs (docs/results.md, issue 27). The C
kernel gathers one (batch, head)'s kept keys once, skips padding instead of masking it, and keeps each row of
scores in L1 for an exact fp32 softmax.

Nothing depends on it: without a C compiler or AVX-512, on another OS, with gradients, dropout, attention
weights asked for, a GPU, or a head width it does not handle, the encoders use PyTorch's attention as before.
`LONGDOC_CPU_KERNEL=0` turns it off (to compare, or to rule it out).

    enable(model)                  # after loading a BERT/RoBERTa-family encoder; False where it stays on SDPA
    attention(q, k, v, keep, s)    # (batch, heads, seq, dim) q/k/v -> (batch, seq, heads, dim)
"""

from __future__ import annotations

import ctypes
import hashlib
import logging
import os
import platform
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path

import torch
from torch import Tensor

from longformer_core import settings
from longformer_core.model.workers import worker_pool

SOURCE = Path(__file__).with_name("cpu_attention.c")
IMPLEMENTATION = "longdoc_cpu"  # the name it is registered under in transformers' attention interface
_log = logging.getLogger(__name__)
_lock = threading.Lock()
_state: dict[str, object] = {}  # "lib": the loaded library, or None after a failed build


def _build_key() -> str:
    """The source, the compiler and the CPU's flags: a library built for one machine is not used on another."""
    flags = ""
    try:
        flags = next(
            (line for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("flags")), ""
        )
    except OSError:
        pass
    compiler = subprocess.run(
        ["cc", "--version"], check=False, capture_output=True, text=True, timeout=30
    ).stdout
    digest = hashlib.sha256(
        SOURCE.read_bytes() + flags.encode() + compiler.encode() + platform.machine().encode()
    )
    return digest.hexdigest()[:16]


def build(target_dir: Path, march: str = "native") -> Path:
    """Compile the kernel for `-march=march` into target_dir (once per source, compiler and CPU); the library."""
    if shutil.which("cc") is None:
        raise OSError("no C compiler (cc) on this machine")
    target = target_dir / f"cpu_attention-{march}-{_build_key()}.so"
    if target.exists():
        return target
    target_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target_dir) as tmp:
        built = Path(tmp) / target.name
        command = ["cc", "-O3", f"-march={march}", "-shared", "-fPIC", "-o", str(built), str(SOURCE)]
        done = subprocess.run(command, check=False, capture_output=True, text=True, timeout=300)
        if done.returncode != 0:
            raise OSError(f"cc failed: {done.stderr.strip()[:500]}")
        os.replace(built, target)  # atomic: another process building the same key gets a whole file
    return target


def load(path: Path) -> ctypes.CDLL:
    """The library at `path`, its functions typed."""
    lib = ctypes.CDLL(str(path))
    lib.ld_attention.restype = ctypes.c_int
    lib.ld_fast_here.restype = ctypes.c_int
    lib.ld_scratch_floats.restype = ctypes.c_int64
    lib.ld_scratch_floats.argtypes = (ctypes.c_int, ctypes.c_int, ctypes.c_int)
    return lib


def library() -> ctypes.CDLL | None:
    """The compiled kernel, built on first call; None where it cannot be built, where it would be slower than
    PyTorch's (no AVX-512: its 16-float tiles spill out of 16 AVX2 registers, ~10x slower), or where it is
    turned off. Logged once."""
    if settings.value("LONGDOC_CPU_KERNEL").strip() in {"0", "false", "no", "off"}:
        return None
    with _lock:
        if "lib" not in _state:
            _state["lib"] = None
            try:
                lib = load(build(settings.cache_dir() / "kernels"))
                if lib.ld_fast_here():
                    _state["lib"] = lib
                else:
                    _log.info("the CPU attention kernel needs AVX-512; using PyTorch's attention")
            except (OSError, subprocess.SubprocessError) as error:
                _log.warning(
                    "the CPU attention kernel is not available (%s); using PyTorch's attention", error
                )
        return _state["lib"]  # type: ignore[return-value]


def supports(q: Tensor, k: Tensor, v: Tensor) -> bool:
    """Whether `attention` takes these inputs: CPU, fp32 or bf16 alike, head width a multiple of 16 up to 128,
    unit stride along the head dimension, and no gradient to keep."""
    return (
        q.device.type == "cpu"
        and q.dtype in (torch.float32, torch.bfloat16)
        and q.dtype == k.dtype == v.dtype
        and q.shape[-1] % 16 == 0
        and q.shape[-1] <= 128
        and all(t.stride(-1) == 1 for t in (q, k, v))
        and not (torch.is_grad_enabled() and (q.requires_grad or k.requires_grad or v.requires_grad))
        and library() is not None
    )


def attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    keep: Tensor | None,
    scale: float,
    *,
    window: int | None = None,
    global_k: Tensor | None = None,
    global_v: Tensor | None = None,
    global_keep: Tensor | None = None,
) -> Tensor:
    """softmax(q k^T * scale) v over the keys each query may see, in fp32 arithmetic.

    Args:
        q: (batch, heads, lq, dim); k, v: (batch, heads, lk, dim); any strides but the last (see `supports`).
        keep: (batch, lk) bool, True for keys the queries may see (False: padding), or None for all.
        scale: multiplies the scores (1/sqrt(dim) for BERT; 1 for queries already scaled).
        window: None: every kept key; w: query i sees kept key j only when |i - j| <= w (Longformer's band).
        global_k, global_v: (batch, heads, n_global, dim) keys every query also sees (Longformer's global
            tokens' keys), or None.
        global_keep: (batch, n_global) bool, False for unused global slots, or None for all.
    Returns:
        (batch, lq, heads, dim), contiguous, in q's dtype. A dense query with no key to see gets zeros; a band
        query whose keys are all masked gets an arbitrary finite row (Longformer overwrites such rows).
    """
    lib = library()
    batch, heads, lq, dim = q.shape
    lk, n_global = k.shape[2], 0 if global_k is None else global_k.shape[2]
    out = torch.empty(batch, lq, heads, dim, dtype=q.dtype)
    masks = [None if m is None else m.to(torch.uint8).contiguous() for m in (keep, global_keep)]
    globals_ = (global_k, global_v) if n_global else (k, v)  # unused when n_global is 0
    globals_ = tuple(t if t.stride(-1) == 1 else t.contiguous() for t in globals_)
    strides = []
    for t in (q, k, v, *globals_):
        strides += [t.stride(0), t.stride(1), t.stride(2)]
    strides += [out.stride(0), out.stride(2), out.stride(1)]
    scratch_floats = lib.ld_scratch_floats(lk, n_global, dim)
    pointer = ctypes.c_void_p
    args = (
        *(pointer(t.data_ptr()) for t in (q, k, v, *globals_, out)),
        ctypes.c_int(q.dtype == torch.bfloat16),
        *(ctypes.c_int(x) for x in (heads, lq, lk, n_global, dim)),
        (ctypes.c_int64 * 18)(*strides),
        *(pointer(None if m is None else m.data_ptr()) for m in masks),
        ctypes.c_int(-1 if window is None else window),
        ctypes.c_float(scale),
    )

    def run(span: tuple[int, int]) -> None:
        scratch = torch.empty(scratch_floats, dtype=torch.float32)
        if lib.ld_attention(*args, span[0], span[1], pointer(scratch.data_ptr())) != 0:
            raise ValueError(f"the CPU attention kernel refused head width {dim}")

    tasks = batch * heads
    pool = worker_pool() if tasks > 1 else None
    per_call = max(1, tasks // (4 * torch.get_num_threads()))  # a few calls per worker: they even out
    spans = [(t, min(t + per_call, tasks)) for t in range(0, tasks, per_call)]
    if pool is None:
        for span in spans:
            run(span)
    else:
        for _ in pool.map(run, spans):  # ctypes lets go of the GIL during each call; results re-raise errors
            pass
    return out


def _forward(module, query, key, value, attention_mask, dropout=0.0, scaling=None, **kwargs):
    """transformers' attention-function signature; PyTorch's SDPA wherever the kernel does not apply.

    `attention_mask` is the (batch, keys) padding mask that transformers gives flash-style implementations
    (registered below), or None when nothing is padded; any other mask goes to SDPA as it is.
    """
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    scale = scaling if scaling is not None else query.shape[-1] ** -0.5
    padding_only = attention_mask is None or attention_mask.dim() == 2
    plain = padding_only and not kwargs.get("output_attentions") and kwargs.get("position_bias") is None
    if plain and (dropout == 0.0 or not module.training) and supports(query, key, value):
        keep = None if attention_mask is None else attention_mask.bool()
        return attention(query, key, value, keep, scale), None
    mask = attention_mask
    if attention_mask is not None and attention_mask.dim() == 2:
        mask = attention_mask.bool()[:, None, None, :]
    return sdpa_attention_forward(module, query, key, value, mask, dropout=dropout, scaling=scale, **kwargs)


def enable(model: torch.nn.Module) -> bool:
    """Use the kernel for `model`'s self-attention where it applies (a BERT-family encoder on the CPU).

    Returns:
        True when the model now calls it; False (the model unchanged) for decoders, models whose attention
        does not go through transformers' attention interface, or where the kernel cannot be built.
    """
    from transformers import AttentionInterface
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, flash_attention_mask

    config = model.config
    if getattr(config, "is_decoder", False) or library() is None:
        return False
    AttentionInterface.register(IMPLEMENTATION, _forward)
    ALL_MASK_ATTENTION_FUNCTIONS.register(IMPLEMENTATION, flash_attention_mask)
    try:
        model.set_attn_implementation(IMPLEMENTATION)
    except (ValueError, TypeError, AttributeError) as error:
        _log.info("the CPU attention kernel does not apply to %s: %s", type(model).__name__, error)
        return False
    return getattr(config, "_attn_implementation", None) == IMPLEMENTATION
