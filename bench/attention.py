"""Benchmark longformer_core.model.attention against HF's Longformer attention on this machine (CPU).

    python bench/attention.py            # full run (about 6 minutes on 2 cores)
    python bench/attention.py --quick    # fewer sizes and repeats, bf16 on one layer only
    python bench/attention.py --json     # progress to stderr, one JSON object to stdout

Everything is measured in one run: matmul throughput, attention-layer times (ours vs HF, 1k-16k tokens,
base size, 1 global token), whole-model times at 4096 tokens (base size with random weights, and the
project's embedded default model), the bf16 autocast path, peak memory of one forward (fresh
subprocesses) and first-call overhead. HF and ours are called in turn, round after round, so both see
the same machine load; times are medians over the rounds, after one warm-up call each.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

# Run as a script from anywhere: make the repository's package importable.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from transformers import LongformerConfig, LongformerModel
from transformers.models.longformer.modeling_longformer import LongformerSelfAttention
from transformers.utils import logging as hf_logging

from longformer_core.machine import machine_info
from longformer_core.model.attention import FastLongformerSelfAttention, hf_layer_inputs, use_fast_attention

BASE = {"hidden_size": 768, "num_attention_heads": 12, "intermediate_size": 3072, "num_hidden_layers": 12}
WINDOW = 512  # two-sided, as allenai/longformer-base-4096
MODEL_TOKENS = 4096
VERBOSE_TO = sys.stdout  # progress lines; stderr with --json


def log(message: str) -> None:
    print(message, file=VERBOSE_TO, flush=True)


def compare(fns: dict[str, Callable[[], torch.Tensor]], repeats: int) -> dict[str, dict[str, object]]:
    """Time each function: one first call, then `repeats` rounds calling each in turn.

    Returns:
        per name: first_s (first call), s (median of the rounds), out (its last result).
    """
    result: dict[str, dict[str, object]] = {}
    for name, fn in fns.items():
        start = time.perf_counter()
        out = fn()
        result[name] = {"first_s": time.perf_counter() - start, "times": [], "out": out}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            result[name]["out"] = fn()
            result[name]["times"].append(time.perf_counter() - start)
    for entry in result.values():
        entry["s"] = statistics.median(entry.pop("times"))
    return result


def matmul_gflops(size: int = 2048, repeats: int = 5) -> float:
    """fp32 throughput of a large square matmul (best of `repeats`), the yardstick for the FLOP bound."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    a @ b
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best / 1e9


def linear_gflops(n: int = MODEL_TOKENS, repeats: int = 3) -> float:
    """fp32 throughput of one base layer's own linear shapes at n tokens (Q, K, V, output, FFN in, FFN out).

    These run through MKL like the square matmul but, with one 768-wide side, below its rate; this gives
    the bound the model could reach with HF's linear layers left as they are.
    """
    hidden, inter = BASE["hidden_size"], BASE["intermediate_size"]
    x, x_inter = torch.randn(n, hidden), torch.randn(n, inter)
    shapes = [(x, torch.randn(hidden, hidden))] * 4 + [
        (x, torch.randn(inter, hidden)),
        (x_inter, torch.randn(hidden, inter)),
    ]
    flops = sum(2 * n * w.shape[0] * w.shape[1] for _, w in shapes)
    run = lambda: [torch.nn.functional.linear(a, w, w[:, 0]) for a, w in shapes]
    run()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return flops / best / 1e9


def cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    """Cosine similarity of two tensors, in float64 (fp32 sums over millions of terms overshoot 1)."""
    return torch.nn.functional.cosine_similarity(a.double().flatten(), b.double().flatten(), dim=0).item()


def model_flops(n: int, hidden: int, inter: int, layers: int, window: int | None) -> float:
    """Matmul FLOPs of a Longformer encoder: Q/K/V/output projections, FFN, and (window given) the band
    QK^T and PV over 2w+1 keys."""
    per_layer = 2 * n * hidden * hidden * 4 + 2 * n * hidden * inter * 2
    if window is not None:
        per_layer += 2 * n * (2 * window + 1) * hidden * 2
    return float(per_layer * layers)


# --------------------------------------------------------------------------------------------------
# One attention layer


def base_layer() -> tuple[LongformerSelfAttention, FastLongformerSelfAttention]:
    torch.manual_seed(0)
    config = LongformerConfig(**BASE, attention_window=[WINDOW])
    hf = LongformerSelfAttention(config, layer_id=0).eval()
    return hf, FastLongformerSelfAttention.from_hf(hf)


def layer_inputs(n: int) -> tuple[torch.Tensor, dict]:
    """Random hidden states of one n-token document whose first token (<s>) is global."""
    global_ = torch.zeros(1, n, dtype=torch.long)
    global_[0, 0] = 1
    return torch.randn(1, n, BASE["hidden_size"]), hf_layer_inputs(
        torch.ones(1, n, dtype=torch.long), global_
    )


def bench_layers(sizes: list[int], repeats: int, hf_max: int) -> dict[int, dict[str, float | None]]:
    """Our layer at every size; HF's too up to hf_max tokens."""
    hf, fast = base_layer()
    return {n: bench_layer(hf, fast, n, repeats, with_hf=n <= hf_max) for n in sizes}


def bench_layer(
    hf: LongformerSelfAttention, fast: FastLongformerSelfAttention, n: int, repeats: int, with_hf: bool
) -> dict[str, float | None]:
    """Times (and max difference) of one layer on n tokens."""
    hidden, inputs = layer_inputs(n)
    fns = {"ours": lambda: fast(hidden, **inputs)[0]}
    if with_hf:
        fns["hf"] = lambda: hf(hidden, **inputs)[0]
    with torch.no_grad():
        timing = compare(fns, repeats)
    ours = timing["ours"]
    row = {
        "ours_s": ours["s"],
        "ours_first_s": ours["first_s"],
        "hf_s": None,
        "speedup": None,
        "max_abs_diff": None,
    }
    part = "HF not run"
    if with_hf:
        theirs = timing["hf"]
        row |= {
            "hf_s": theirs["s"],
            "hf_first_s": theirs["first_s"],
            "speedup": theirs["s"] / ours["s"],
            "max_abs_diff": (ours["out"] - theirs["out"]).abs().max().item(),
        }
        part = f"HF {theirs['s'] * 1e3:8.1f} ms  x{row['speedup']:4.2f}  max|diff| {row['max_abs_diff']:.1e}"
    log(
        f"  layer n={n:6d}: ours {ours['s'] * 1e3:7.1f} ms (first call {ours['first_s'] * 1e3:5.0f} ms)  {part}"
    )
    return row


def layer_bf16(n: int) -> dict[str, float]:
    """Our layer under bf16 autocast (two calls, the second timed) and its cosine to fp32."""
    _, fast = base_layer()
    hidden, inputs = layer_inputs(n)
    with torch.no_grad():
        exact = fast(hidden, **inputs)[0]
        with torch.autocast("cpu", dtype=torch.bfloat16):
            timing = compare({"bf16": lambda: fast(hidden, **inputs)[0]}, 1)["bf16"]
    cosine = torch.nn.functional.cosine_similarity(
        timing["out"].float().flatten(), exact.flatten(), dim=0
    ).item()
    return {"s": timing["s"], "cosine": cosine}


# --------------------------------------------------------------------------------------------------
# Whole models


def base_model(n: int = MODEL_TOKENS) -> LongformerModel:
    torch.manual_seed(0)
    config = LongformerConfig(**BASE, attention_window=WINDOW, max_position_embeddings=n + 2)
    return LongformerModel(config, add_pooling_layer=False).eval()


def embedded_model() -> LongformerModel | None:
    """The project's embedded default Longformer with HF attention, or None when it cannot be loaded."""
    try:
        from longformer_core.model.registry import load_embedded

        return load_embedded(fast_attention=False, device=torch.device("cpu")).longformer.model
    except Exception as exc:  # noqa: BLE001 - the benchmark reports it and goes on
        log(f"  embedded model unavailable: {exc.__class__.__name__}: {exc}")
        return None


def model_inputs(n: int) -> dict[str, torch.Tensor]:
    torch.manual_seed(1)
    global_ = torch.zeros(1, n, dtype=torch.long)
    global_[0, 0] = 1
    ids = torch.randint(3, 1000, (1, n))
    return {
        "input_ids": ids,
        "attention_mask": torch.ones(1, n, dtype=torch.long),
        "global_attention_mask": global_,
    }


def attach(model: LongformerModel, modules: list[nn.Module]) -> LongformerModel:
    """Put these self-attention modules into the model's layers (switching HF <-> ours in place)."""
    for layer, module in zip(model.encoder.layer, modules):
        layer.attention.self = module
    return model


def bench_model(model: LongformerModel, name: str, repeats: int, bf16: bool) -> dict[str, float]:
    """HF fp32 vs ours fp32 (use_fast_attention), in turn, and optionally ours under bf16 autocast."""
    inputs = model_inputs(MODEL_TOKENS)
    hf_modules = [layer.attention.self for layer in model.encoder.layer]
    fast_modules = [layer.attention.self for layer in use_fast_attention(model).encoder.layer]
    with torch.no_grad():
        timing = compare(
            {
                "hf": lambda: attach(model, hf_modules)(**inputs).last_hidden_state,
                "ours": lambda: attach(model, fast_modules)(**inputs).last_hidden_state,
            },
            repeats,
        )
    reference = timing["hf"]["out"]
    result = {
        "hf_s": timing["hf"]["s"],
        "ours_s": timing["ours"]["s"],
        "ours_first_s": timing["ours"]["first_s"],
        "hf_first_s": timing["hf"]["first_s"],
        "max_abs_diff": (timing["ours"]["out"] - reference).abs().max().item(),
    }
    result["speedup"] = result["hf_s"] / result["ours_s"]
    log(
        f"  {name}: HF {result['hf_s']:.2f} s  ours {result['ours_s']:.2f} s  x{result['speedup']:.2f}"
        f"  max|diff| {result['max_abs_diff']:.1e}  (first call: HF {result['hf_first_s']:.2f} s,"
        f" ours {result['ours_first_s']:.2f} s)"
    )
    if bf16:
        attach(model, fast_modules)
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
            start = time.perf_counter()  # a single call: bf16 is slow on CPUs without bf16 instructions
            low = model(**inputs).last_hidden_state
            result["ours_bf16_s"] = time.perf_counter() - start
        result["bf16_cosine"] = cosine(low, reference)
        log(
            f"  {name} bf16 autocast: ours {result['ours_bf16_s']:.2f} s (one call)  cosine {result['bf16_cosine']:.5f}"
        )
    return result


# --------------------------------------------------------------------------------------------------
# Peak memory, in fresh processes


def peak_memory(what: str, impl: str, n: int) -> float:
    """Extra resident memory (MiB) one forward needs, measured in a fresh subprocess."""
    out = subprocess.run(
        [sys.executable, __file__, "--memory-worker", what, impl, str(n)],
        capture_output=True,
        text=True,
        check=True,
    )
    return float(out.stdout.strip().splitlines()[-1])


def status_mib(field: str) -> float:
    """A memory field of /proc/self/status (VmRSS: resident now, VmHWM: peak resident) in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise KeyError(field)


def memory_worker(what: str, impl: str, n: int) -> None:
    """Print the peak RSS growth (MiB) of one forward: peak resident during it minus resident before.

    getrusage's ru_maxrss cannot be reset and, after fork+exec, may still hold the parent's peak, so
    the peak is read from VmHWM after resetting it through /proc/self/clear_refs.
    """
    if what == "layer":
        hf, fast = base_layer()
        hidden, inputs = layer_inputs(n)
        run = lambda: (fast if impl == "ours" else hf)(hidden, **inputs)
    else:
        model = base_model(n)
        if impl == "ours":
            use_fast_attention(model)
        inputs = model_inputs(n)
        run = lambda: model(**inputs)
    Path("/proc/self/clear_refs").write_text("5")  # 5 = reset the peak-RSS counter
    before = status_mib("VmRSS")
    with torch.no_grad():
        run()
    print(status_mib("VmHWM") - before)


# --------------------------------------------------------------------------------------------------


def _peak_memories(quick: bool) -> dict[str, float]:
    """Peak RSS growth (MiB) of one forward, HF's and ours, each in a fresh subprocess."""
    log("peak memory of one forward (RSS growth, fresh subprocess):")
    memory = {}
    for what, n in [("layer", 4096)] + ([] if quick else [("layer", 16384), ("model", MODEL_TOKENS)]):
        for impl in ("hf", "ours"):
            memory[f"{what}_{n}_{impl}_mib"] = peak_memory(what, impl, n)
        log(
            f"  {what} n={n}: HF {memory[f'{what}_{n}_hf_mib']:.0f} MiB  ours {memory[f'{what}_{n}_ours_mib']:.0f} MiB"
        )
    return memory


def _flop_bounds(base: dict, gflops: float) -> tuple[float, float, float, float]:
    """(base model FLOPs, FLOP bound in s at `gflops`, GFLOP/s of the model's own linear shapes, the time of
    HF's linear layers alone at that rate), logged against the measured base model."""
    flops = model_flops(
        MODEL_TOKENS, BASE["hidden_size"], BASE["intermediate_size"], BASE["num_hidden_layers"], WINDOW // 2
    )
    bound_s = flops / gflops / 1e9
    log(
        f"FLOP bound (base model, {flops / 1e9:.0f} GFLOP at {gflops:.1f} GFLOP/s): {bound_s:.2f} s;"
        f" ours / bound = {base['ours_s'] / bound_s:.2f}, HF / bound = {base['hf_s'] / bound_s:.2f}"
    )
    linear_rate = linear_gflops()
    linear_flops = model_flops(
        MODEL_TOKENS, BASE["hidden_size"], BASE["intermediate_size"], BASE["num_hidden_layers"], None
    )
    linear_s = linear_flops / linear_rate / 1e9
    log(
        f"  the model's own linear shapes run at {linear_rate:.1f} GFLOP/s: HF's linear layers alone take"
        f" {linear_s:.2f} s ({linear_s / base['ours_s']:.0%} of ours); bound at that rate {flops / linear_rate / 1e9:.2f} s,"
        f" ours / it = {base['ours_s'] * linear_rate * 1e9 / flops:.2f}"
    )
    return flops, bound_s, linear_rate, linear_s


def main(quick: bool) -> dict[str, object]:
    hf_logging.set_verbosity_error()
    repeats = 1 if quick else 3
    report: dict[str, object] = {
        "command": " ".join(["python", "bench/attention.py", *sys.argv[1:]]),
        "machine": machine_info(),
    }
    log(f"machine: {report['machine']}")
    gflops_start = matmul_gflops()
    log(f"matmul throughput (fp32 2048^3, best of 5): {gflops_start:.1f} GFLOP/s")

    log("attention layer (768 hidden, 12 heads, window 512, 1 global token), fp32:")
    sizes = [1024, 4096, 16384] if quick else [1024, 2048, 4096, 8192, 16384]
    layers = bench_layers(sizes, repeats, hf_max=4096 if quick else 16384)
    bf16_layer = layer_bf16(MODEL_TOKENS)
    log(
        f"  layer n=4096 bf16 autocast: ours {bf16_layer['s'] * 1e3:.1f} ms  cosine {bf16_layer['cosine']:.5f}"
    )

    log(f"whole model, {MODEL_TOKENS} tokens, 1 global token:")
    base = bench_model(base_model(), "base (12 layers, 768 hidden, random weights)", repeats, bf16=not quick)
    model = embedded_model()
    embedded = None
    if model is not None:
        config = model.config
        embedded = bench_model(
            model,
            f"embedded ({config.num_hidden_layers} layers, {config.hidden_size} hidden)",
            repeats,
            bf16=False,
        )

    gflops = max(gflops_start, matmul_gflops())  # the faster reading gives the tighter bound
    flops, bound_s, linear_rate, linear_s = _flop_bounds(base, gflops)

    memory = _peak_memories(quick)

    bf16_s = base.get("ours_bf16_s")
    report |= {
        "layer_speedup_4096": layers[4096]["speedup"],
        "model_speedup_4096": base["speedup"],
        "bf16_speedup_4096": base["hf_s"] / bf16_s if bf16_s else layers[4096]["hf_s"] / bf16_layer["s"],
        "bf16_speedup_scope": "model" if bf16_s else "layer",
        "bf16_cosine": base.get("bf16_cosine", bf16_layer["cosine"]),
        "flop_bound_ratio": base["ours_s"] / bound_s,
        "scaling_16k_over_4k": layers[16384]["ours_s"] / layers[4096]["ours_s"],
        "scaling_scope": "layer",
        "max_abs_diff": base["max_abs_diff"],
        "layer_max_abs_diff_4096": layers[4096]["max_abs_diff"],
        "matmul_gflops": gflops,
        "flop_bound_s": bound_s,
        "linear_gflops": linear_rate,
        "linear_layers_s": linear_s,
        "flop_bound_ratio_at_linear_rate": base["ours_s"] * linear_rate * 1e9 / flops,
        "first_call_overhead_s": base["ours_first_s"] - base["ours_s"],
        "model_4096": base,
        "embedded_4096": embedded,
        "layers": layers,
        "layer_bf16_4096": bf16_layer,
        "peak_memory_mib": memory,
        "load_average_at_end": os.getloadavg()[0],
    }
    log(
        f"t(16k)/t(4k) (our layer): {report['scaling_16k_over_4k']:.2f};"
        f" first-call overhead (our base model): {report['first_call_overhead_s']:+.2f} s;"
        f" load average start/end: {report['machine']['load_average_at_start'][0]:.2f}/{report['load_average_at_end']:.2f}"
    )
    return report


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object (progress goes to stderr)")
    parser.add_argument(
        "--quick", action="store_true", help="fewer sizes and repeats, bf16 on one layer only"
    )
    parser.add_argument("--memory-worker", nargs=3, metavar=("WHAT", "IMPL", "N"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_worker:
        memory_worker(args.memory_worker[0], args.memory_worker[1], int(args.memory_worker[2]))
    else:
        VERBOSE_TO = sys.stderr if args.json else sys.stdout
        result = main(args.quick)
        if args.json:
            print(json.dumps(result, indent=1))
