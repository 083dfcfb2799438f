"""Embedded default: first conversion, load from cache, a 4096-token forward pass, peak memory.

    python bench/model.py [--json] [--tokens 4096] [--repeats 3]

Everything is measured in one run on this machine; conversion goes to a fresh temporary cache so the
first-use cost is real. Forward passes run with HF's attention and, when available, ours.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from anywhere without installing
from longformer_core.machine import cpu_model_name


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def timed(fn, repeats: int) -> float:
    """Median seconds of `repeats` calls after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--tokens", type=int, default=4096)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as cache:
        os.environ["LONGDOC_CACHE"] = cache
        from longformer_core.model.convert import ConversionConfig, embedded_longformer_dir
        from longformer_core.model.registry import load_embedded

        t0 = time.perf_counter()
        embedded_longformer_dir(ConversionConfig())
        convert_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        pair = load_embedded(fast_attention=False)
        load_s = time.perf_counter() - t0

        torch.manual_seed(0)
        n = args.tokens
        ids = torch.randint(1000, 20000, (1, n))
        glob = torch.zeros(1, n, dtype=torch.long)
        glob[0, 0] = 1
        model = pair.longformer.encoder

        def forward():
            with torch.inference_mode():
                return model(input_ids=ids, attention_mask=torch.ones_like(ids), global_attention_mask=glob)

        hf_s = timed(forward, args.repeats)
        rss_after_hf = peak_rss_mb()
        report = {
            "machine": f"{cpu_model_name()}, {os.cpu_count()} cores, torch {torch.__version__}",
            "convert_seconds": round(convert_s, 2),
            "load_from_cache_seconds": round(load_s, 2),
            f"forward_{n}_hf_seconds": round(hf_s, 3),
            "peak_rss_mb_after_hf": round(rss_after_hf),
        }
        try:
            from longformer_core.model.attention import use_fast_attention
        except ImportError:
            use_fast_attention = None
        if use_fast_attention is not None:
            reference = forward().last_hidden_state
            use_fast_attention(model)
            fast_s = timed(forward, args.repeats)
            report[f"forward_{n}_fast_seconds"] = round(fast_s, 3)
            report["fast_speedup"] = round(hf_s / fast_s, 2)
            report["fast_max_abs_diff"] = float((forward().last_hidden_state - reference).abs().max())
            report["peak_rss_mb"] = round(peak_rss_mb())
    if args.json:
        print(json.dumps(report))
    else:
        for k, v in report.items():
            print(f"{k:28s} {v}")


if __name__ == "__main__":
    main()
