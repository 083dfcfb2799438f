"""Does batching the chunked view pay on this CPU? Time one chunked pass at several chunks per forward.

Reads the first `--chunks` 512-token chunks of a PDF with the embedded baseline (MiniLM) through
`encoding.encode_document`, with the token budget set so each forward holds exactly B chunks, for each
B in `--sizes`, in fp32 and (where the CPU has it natively, or when forced) bf16. Order is interleaved
(fp32 1, 4, 8, 16, then bf16 ...) and each setting runs `--repeats` times, best kept. Both wall time
and this process's CPU time are reported: on a machine shared with other work, CPU time divided by the
torch threads is the closer estimate of the wall time with the cores to itself.

    .venv/bin/python bench/batch_sizes.py --json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

DEFAULT_PDF = (
    Path(os.environ.get("LONGDOC_DATA_DIR", REPO_ROOT.parent / "shared" / "data"))
    / "pdfs/nist_sp800-61r2.pdf"
)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pdf", type=Path, default=DEFAULT_PDF)
    parser.add_argument("--chunks", type=int, default=32, help="chunks to read per timing")
    parser.add_argument("--sizes", default="1,4,8,16", help="chunks per forward pass, comma-separated")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--dtypes", default="fp32,bf16")
    parser.add_argument("--json", action="store_true", help="print JSON")
    args = parser.parse_args()

    import torch

    from longformer_core.documents import load_path
    from longformer_core.model.registry import load_embedded
    from longformer_core.reading import encoding
    from longformer_core.reading.encoding import CHUNK_OVERLAP, DocumentTokens, encode_document, tokenize

    base = load_embedded(qa_head=None).baseline
    tokens = tokenize(base.tokenizer, load_path(args.pdf).text)
    stride = base.max_tokens - 2 - CHUNK_OVERLAP
    n = min(len(tokens), stride * (args.chunks - 1) + base.max_tokens - 2)
    doc = DocumentTokens(tokens.ids[:n], tokens.offsets[:n])
    sizes = [int(s) for s in args.sizes.split(",")]
    dtypes = {"fp32": torch.float32, "bf16": torch.bfloat16}
    results: dict[str, dict[str, float]] = {}
    cpu_results: dict[str, dict[str, float]] = {}
    for name in args.dtypes.split(","):
        base.dtype = dtypes[name]
        encode_document(base, DocumentTokens(doc.ids[:2000], doc.offsets[:2000]), "chunked")  # warm-up
        for size in sizes:
            encoding.BATCH_TOKENS = size * base.max_tokens  # exactly `size` chunks of 512 per forward
            best, best_cpu = float("inf"), float("inf")
            for _ in range(args.repeats):
                t0, c0 = time.perf_counter(), time.process_time()
                p = encode_document(base, doc, "chunked")
                best = min(best, time.perf_counter() - t0)
                best_cpu = min(best_cpu, time.process_time() - c0)
            results.setdefault(name, {})[str(size)] = round(best, 3)
            cpu_results.setdefault(name, {})[str(size)] = round(best_cpu, 3)
            print(
                f"{name} batch {size:>2}: {best:.2f} s wall, {best_cpu:.2f} s CPU for {len(p.windows)} chunks",
                file=sys.stderr,
                flush=True,
            )

    def speedup(table: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
        return {
            name: {s: round(times[str(sizes[0])] / t, 2) for s, t in times.items()}
            for name, times in table.items()
        }

    info = {
        "seconds": results,
        "cpu_seconds": cpu_results,
        "speedup_vs_batch_" + str(sizes[0]): speedup(results),
        "cpu_speedup_vs_batch_" + str(sizes[0]): speedup(cpu_results),
        "chunks": len(p.windows),
        "tokens": n,
        "torch_threads": torch.get_num_threads(),
        "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
    }
    print(json.dumps(info, indent=2) if args.json else info)
    return 0


if __name__ == "__main__":
    sys.exit(main())
