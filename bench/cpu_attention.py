"""The C attention kernel (longformer_core/model/cpu_attention.c) against PyTorch's, on this machine (CPU).

    .venv/bin/python bench/cpu_attention.py --json        # ~1 minute on 2 cores; a quiet machine

In one run, kernel and PyTorch called in turn, round after round (medians over the rounds, after a warm-up):
  1. the attention op alone: 16 x 12 heads x 512 tokens x head dim 32 (a MiniLM chunk batch, one row half
     padded), bf16 and fp32, against `scaled_dot_product_attention` with the same padding mask;
  2. the embedded MiniLM encoder on that batch (bf16 autocast): the kernel against transformers' SDPA;
  3. the embedded Longformer on 4,096 tokens with 8 global tokens (bf16): the kernel against the band kernel's
     torch matmuls (`LONGDOC_CPU_KERNEL=0` for that call).
Prints each pair's times and `speedup` (PyTorch time / kernel time), with the machine (`lscpu` model).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from longformer_core.machine import machine_info
from longformer_core.model import cpu_attention

ROUNDS = 5


def _median_pair(kernel: Callable[[], object], reference: Callable[[], object]) -> dict[str, float]:
    """Medians of both (seconds), called in turn after one warm-up call each, and their ratio."""
    kernel(), reference()
    times: dict[str, list[float]] = {"kernel_s": [], "pytorch_s": []}
    for _ in range(ROUNDS):
        for name, fn in (("kernel_s", kernel), ("pytorch_s", reference)):
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    out = {name: round(statistics.median(values), 4) for name, values in times.items()}
    return out | {"speedup": round(out["pytorch_s"] / out["kernel_s"], 2)}


def _kernel_off(fn: Callable[[], object]) -> Callable[[], object]:
    def off() -> object:
        os.environ["LONGDOC_CPU_KERNEL"] = "0"
        try:
            return fn()
        finally:
            os.environ["LONGDOC_CPU_KERNEL"] = "1"

    return off


def attention_op() -> dict[str, dict[str, float]]:
    batch, heads, n, dim = 16, 12, 512, 32
    keep = torch.ones(batch, n, dtype=torch.bool)
    keep[3, n // 2 :] = False
    out = {}
    for dtype in (torch.bfloat16, torch.float32):
        x = torch.randn(batch, n, 3, heads, dim).to(dtype)
        qkv = tuple(x[:, :, i].transpose(1, 2) for i in range(3))
        out[str(dtype).removeprefix("torch.")] = _median_pair(
            lambda qkv=qkv: cpu_attention.attention(*qkv, keep, dim**-0.5),
            lambda qkv=qkv: torch.nn.functional.scaled_dot_product_attention(
                *qkv, attn_mask=keep[:, None, None, :]
            ),
        )
    return out


def encoders() -> dict[str, dict[str, float]]:
    from longformer_core.model.registry import load_embedded

    pair = load_embedded(qa_head=None)
    minilm, longformer = pair.baseline.model, pair.longformer.model
    ids = torch.randint(1000, 20000, (16, 512))
    mask = torch.ones(16, 512, dtype=torch.long)
    mask[3, 256:] = 0
    long_ids = torch.randint(1000, 20000, (1, 4096))
    long_global = torch.zeros(1, 4096, dtype=torch.long)
    long_global[0, :8] = 1

    def run(model, **inputs) -> Callable[[], object]:
        def call() -> object:
            with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
                return model(**inputs).last_hidden_state

        return call

    def minilm_with(implementation: str) -> Callable[[], object]:
        def call() -> object:
            minilm.set_attn_implementation(implementation)
            return run(minilm, input_ids=ids, attention_mask=mask)()

        return call

    enabled = cpu_attention.enable(minilm)
    result = {
        "minilm_16x512_bf16": _median_pair(
            minilm_with(cpu_attention.IMPLEMENTATION if enabled else "sdpa"), minilm_with("sdpa")
        )
    }
    long_call = run(longformer, input_ids=long_ids, global_attention_mask=long_global)
    result["longformer_4096_bf16"] = _median_pair(long_call, _kernel_off(long_call))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout")
    args = parser.parse_args()
    if cpu_attention.library() is None:
        sys.exit("the C kernel could not be built here (see the warning above); nothing to compare")
    result = {"machine": machine_info(), "attention_op": attention_op(), **encoders()}
    result["machine"] |= machine_info("end")
    print(json.dumps(result, indent=None if args.json else 2))


if __name__ == "__main__":
    main()
