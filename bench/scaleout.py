"""Throughput of `embed --engine ray` against `--engine local` on the first rows of a CSV, measured in one run.

Both engines run the same CLI command (a fresh output each, so nothing is reused) on the same rows; the script
prints each run's wall time, documents/s and the ratio ray/local. On one machine the ray engine cannot be
faster than the local one with the same cores (it adds a local Ray cluster, worker start-up and a model per
worker); the point is that it runs the same job, and that it spreads over a cluster when there is one.

    nice -n 10 .venv/bin/python bench/scaleout.py ../shared/data/bbc/bbc-news.csv --rows 200 --views truncated
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def first_rows(source: Path, rows: int, folder: Path) -> Path:
    """The header and the first `rows` records of a CSV, as a new file."""
    csv.field_size_limit(2**31 - 1)
    target = folder / f"{source.stem}-first{rows}.csv"
    with (
        source.open(newline="", encoding="utf-8") as fin,
        target.open("w", newline="", encoding="utf-8") as fout,
    ):
        reader, writer = csv.reader(fin), csv.writer(fout)
        writer.writerow(next(reader))
        for i, record in enumerate(reader):
            if i >= rows:
                break
            writer.writerow(record)
    return target


def run_embed(
    csv_path: Path, out: Path, text_column: str, views: list[str], extra: list[str]
) -> tuple[float, dict]:
    """(wall seconds, the command's JSON summary) of one `embed` run in a fresh process."""
    command = [
        sys.executable,
        "-m",
        "longformer_core",
        "embed",
        str(csv_path),
        "--text-column",
        text_column,
        "--views",
        *views,
        "--out",
        str(out),
        "--json",
        *extra,
    ]
    print("$ " + " ".join(command), file=sys.stderr, flush=True)
    t0 = time.perf_counter()
    done = subprocess.run(
        command, check=True, capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"}
    )
    return time.perf_counter() - t0, json.loads(done.stdout)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("csv", type=Path)
    parser.add_argument("--text-column", default="text")
    parser.add_argument("--rows", type=int, default=200)
    parser.add_argument("--views", nargs="+", default=["truncated"])
    parser.add_argument("--workers", type=int, default=2, help="ray workers (one torch thread each)")
    parser.add_argument("--local-threads", type=int, default=2, help="torch threads of the local engine")
    args = parser.parse_args()
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # a throwaway local cluster: no token to set up
    with tempfile.TemporaryDirectory(prefix="scaleout-") as tmp:
        folder = Path(tmp)
        data = first_rows(args.csv, args.rows, folder)
        runs = {
            "local": run_embed(
                data,
                folder / "local.parquet",
                args.text_column,
                args.views,
                ["--threads", str(args.local_threads)],
            ),
            "ray": run_embed(
                data,
                folder / "ray.parquet",
                args.text_column,
                args.views,
                ["--engine", "ray", "--workers", str(args.workers), "--threads-per-worker", "1"],
            ),
        }
    for engine, (wall, summary) in runs.items():
        per_view = ", ".join(
            f"{v} {t['docs_per_s']} docs/s per worker" for v, t in summary["throughput"].items()
        )
        print(
            f"{engine}: {summary['computed']} documents in {wall:.1f} s wall = {summary['computed'] / wall:.3f} "
            f"docs/s ({per_view})"
        )
    ratio = (runs["ray"][1]["computed"] / runs["ray"][0]) / (runs["local"][1]["computed"] / runs["local"][0])
    print(f"ray / local throughput (wall): {ratio:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
