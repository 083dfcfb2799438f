"""Where does bf16 time go? torch.profiler over one Longformer window and one batch of 512-token chunks.

In one run, for fp32 and then bf16 (the same code path as a reading: `LoadedModel.autocast()` around the
encoder, the fast band attention for the Longformer):
  1. one window of `--long-tokens` tokens (default 4,096) through the embedded Longformer's encoder,
     `[CLS]` global, as `encoding.encode_document` runs it;
  2. one batch of `--chunks` 512-token chunks through the 512-token baseline (MiniLM), as the chunked view.
Each input runs once to warm up, then `--repeats` times timed: the process CPU time of each (divided by the
torch threads: the wall time with the cores to itself) and the bf16 gain. Then once more under the profiler
on one thread (so the band attention's blocks run where the profiler sees them): the ops that took the
most self CPU time in each dtype, with the dtype of their inputs (`record_shapes`), so ops
still running in fp32 under autocast, and the casts between the two, show up by name.

    .venv/bin/python bench/bf16_profile.py                 # the shared NIST guide's first tokens
    .venv/bin/python bench/bf16_profile.py --top 25 --json artifacts/bf16_profile.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

DEFAULT_PDF = (
    Path(os.environ.get("LONGDOC_DATA_DIR", REPO_ROOT.parent / "shared" / "data"))
    / "pdfs/nist_sp800-61r2.pdf"
)


def _parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pdf", type=Path, default=DEFAULT_PDF)
    parser.add_argument("--long-tokens", type=int, default=4096, help="tokens in the Longformer window")
    parser.add_argument("--chunks", type=int, default=16, help="512-token chunks in the baseline batch")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--top", type=int, default=15, help="ops to list per dtype and input")
    parser.add_argument("--json", type=Path, default=None, help="also write the numbers here")
    return parser.parse_args()


def _inputs(args: argparse.Namespace) -> tuple:
    """(model pair, Longformer window input, stacked chunk batch)."""
    from longformer_core.documents import load_path
    from longformer_core.model.registry import load_embedded
    from longformer_core.reading.encoding import build_input, collate, tokenize, view_windows

    pair = load_embedded(qa_head=None)
    text = load_path(args.pdf, time_budget_s=3600.0, page_time_budget_s=600.0).text
    long, base = pair.longformer, pair.baseline
    doc = tokenize(long.tokenizer, text)
    n = min(len(doc), args.long_tokens - 2)
    long_win = build_input(long.tokenizer, doc, (0, n), global_first=True)
    base_doc = doc if pair.same_tokenizer else tokenize(base.tokenizer, text)
    windows = view_windows(base, base.tokenizer, len(base_doc), "chunked")[: args.chunks]
    chunks = collate(base.tokenizer, [build_input(base.tokenizer, base_doc, w) for w in windows])
    return pair, long_win, chunks


def _profile(run: Callable[[], object], repeats: int, top: int) -> dict:
    """CPU seconds per call (process CPU time / torch threads) and the top ops by self CPU time."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    run()  # warm-up: kernels picked, pools started, weights' casts not cached (autocast exits each call)
    cpu0, wall0 = time.process_time(), time.perf_counter()
    for _ in range(repeats):
        run()
    cpu_s = (time.process_time() - cpu0) / repeats / torch.get_num_threads()
    wall_s = (time.perf_counter() - wall0) / repeats
    # The op table runs on one thread: the band attention's blocks otherwise run on worker threads the
    # profiler does not follow, and their ops would be missing from the table.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
            run()
    finally:
        torch.set_num_threads(threads)
    events = prof.key_averages(group_by_input_shape=True)
    total = sum(e.self_cpu_time_total for e in events) or 1.0
    rows = sorted(events, key=lambda e: e.self_cpu_time_total, reverse=True)[:top]
    return {
        "cpu_s": round(cpu_s, 3),
        "wall_s": round(wall_s, 3),
        "ops": [
            {
                "op": e.key,
                "share": round(e.self_cpu_time_total / total, 3),
                "self_ms": round(e.self_cpu_time_total / 1000, 1),
                "calls": e.count,
                "inputs": str(e.input_shapes)[:80],
            }
            for e in rows
        ],
        "by_op": _by_op(prof, total),
    }


def _by_op(prof, total: float) -> dict[str, float]:
    """Share of self CPU time per op name (all shapes together), the 12 biggest."""
    shares: dict[str, float] = {}
    for e in prof.key_averages():
        shares[e.key] = shares.get(e.key, 0.0) + e.self_cpu_time_total / total
    return {k: round(v, 3) for k, v in sorted(shares.items(), key=lambda kv: -kv[1])[:12]}


def _print(name: str, dtype: str, result: dict) -> None:
    print(f"\n== {name}, {dtype}: {result['cpu_s']:.3f} CPU s per call ({result['wall_s']:.3f} s wall)")
    print(f"{'share':>6} {'self ms':>9} {'calls':>6}  op  [input shapes]")
    for row in result["ops"]:
        print(f"{row['share']:6.1%} {row['self_ms']:9.1f} {row['calls']:6d}  {row['op']}  {row['inputs']}")
    print("by op:", ", ".join(f"{k} {v:.1%}" for k, v in result["by_op"].items()))


def main() -> int:
    args = _parse_args()
    import torch

    from longformer_core.reading.encoding import model_kwargs

    pair, long_win, chunks = _inputs(args)
    results: dict[str, dict[str, dict]] = {"longformer_window": {}, "chunk_batch": {}}
    for dtype_name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        for name, model, win in (
            ("longformer_window", pair.longformer, long_win),
            ("chunk_batch", pair.baseline, chunks),
        ):
            model.dtype = dtype

            @torch.inference_mode()
            def run(model=model, win=win) -> object:
                with model.autocast():
                    return model.encoder(**model_kwargs(model, win)).last_hidden_state

            results[name][dtype_name] = _profile(run, args.repeats, args.top)
            _print(name, dtype_name, results[name][dtype_name])
    gains = {
        name: round(r["fp32"]["cpu_s"] / max(r["bf16"]["cpu_s"], 1e-9), 2) for name, r in results.items()
    }
    print("\nbf16 gain in CPU time (fp32 / bf16):", gains)
    info = {
        "gain_cpu": gains,
        "long_tokens": int(long_win.input_ids.shape[1]),
        "chunks": list(chunks.input_ids.shape),
        "torch_threads": torch.get_num_threads(),
        "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
        "results": results,
    }
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(info, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
