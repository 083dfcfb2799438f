"""Peak memory (RSS) of answering one question on a long PDF, through the code path the Ask page uses.

Steps, each with the highest RSS seen while it ran (sampled every 20 ms) and the process's peak
(VmHWM, what the kernel counts) at the end:
  1. load the model pair (`load_models`, what `ui.session.cached_models` calls);
  2. read the PDF (`load_path`, what the Document page's sample button calls);
  3. tokenize it and plan global attention (`DocumentReader` with the Ask page's strategy);
  4. read the document as the background reading does (`background.BackgroundReading`), one step at a time: the
     truncated view, the passage embeddings, the lexical index, the chunked and the Longformer views;
  5. answer one question with all three views (`qa.ask`).
The app adds Streamlit's own memory (~100-200 MB) on top; this measures the core's share.

Usage:
    OMP_NUM_THREADS=1 .venv/bin/python bench/memory.py                 # the NIST guide, 4 GB budget
    .venv/bin/python bench/memory.py --pdf my.pdf --question "..." --limit-gb 4 --json out.json
Exit status 1 when the peak is over --limit-gb.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import threading
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))
from longformer_core import settings
from longformer_core.machine import machine_info

DEFAULT_PDF = settings.data_dir() / "pdfs/nist_sp800-61r2.pdf"
DEFAULT_QUESTION = "How long should incident handling records be retained?"
MB = 1024 * 1024


def _status_kb(field: str) -> int:
    """A field of /proc/self/status in kB (VmRSS: now, VmHWM: peak so far)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


class RssSampler:
    """Samples the current RSS in a background thread; `peak_since_mark()` gives the step's maximum."""

    def __init__(self, interval_s: float = 0.02) -> None:
        self.interval_s = interval_s
        self._peak_kb = _status_kb("VmRSS")
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._peak_kb = max(self._peak_kb, _status_kb("VmRSS"))

    def peak_since_mark(self) -> float:
        """Highest RSS (MB) since the previous call, then start a new step from the current RSS."""
        peak = max(self._peak_kb, _status_kb("VmRSS"))
        self._peak_kb = _status_kb("VmRSS")
        return round(peak / 1024, 1)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def _parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pdf", type=Path, default=DEFAULT_PDF)
    parser.add_argument("--question", default=DEFAULT_QUESTION)
    parser.add_argument("--model", default="embedded", help="model id or folder (default: the embedded one)")
    parser.add_argument("--limit-gb", type=float, default=4.0, help="exit 1 when the peak RSS is over this")
    parser.add_argument("--json", type=Path, help="also write the numbers here")
    return parser.parse_args()


def _answers(results: dict) -> dict[str, dict]:
    """{view: the best answer's page and first 120 characters}."""
    return {
        view: {
            "page": r.best.page if r.best else None,
            "text": " ".join(r.best.text.split())[:120] if r.best else "",
        }
        for view, r in results.items()
    }


def _read_in_steps(reader, step) -> None:
    """Each reading step on its own, in the background reading's order, so the peak traces to one pass."""
    import torch

    from longformer_core.reading.encoding import VIEWS

    with torch.inference_mode():
        for view in VIEWS:
            if reader.model_for(view).head != "qa":
                step(f"read: {view} view", lambda view=view: reader.encoded(view))
            if view == "truncated":
                step("read: passage embeddings", reader.embed_passages)
                step("read: lexical index", lambda: reader.lexical_index)


def main() -> int:
    args = _parse_args()
    if not args.pdf.is_file():
        print(f"no PDF at {args.pdf} (set LONGDOC_DATA_DIR or give --pdf)", file=sys.stderr)
        return 2

    sampler = RssSampler()
    import torch

    from longformer_core.documents import load_path
    from longformer_core.model.registry import load_models
    from longformer_core.qa.answering import ask
    from longformer_core.reading.document_reading import DocumentReader
    from longformer_core.reading.strategies import DEFAULT_FOR_TASK

    steps: dict[str, dict[str, float]] = {}

    def step(name: str, work):
        rss_before_mb = round(_status_kb("VmRSS") / 1024, 1)
        started = time.perf_counter()
        out = work()
        steps[name] = {
            "seconds": round(time.perf_counter() - started, 2),
            "rss_before_mb": rss_before_mb,
            "peak_rss_mb": sampler.peak_since_mark(),
            "rss_after_mb": round(_status_kb("VmRSS") / 1024, 1),
        }
        print(f"{name}: {steps[name]}", file=sys.stderr, flush=True)
        return out

    steps["imports"] = {"seconds": 0.0, "peak_rss_mb": sampler.peak_since_mark()}
    pair = step("load models", lambda: load_models(args.model))
    document = step("read the PDF", lambda: load_path(args.pdf))

    def plan() -> DocumentReader:
        reader = DocumentReader(pair, document, strategy=DEFAULT_FOR_TASK["qa"])
        _ = reader.base_tokens, reader.sentences, reader.paragraphs
        return reader

    reader = step("tokenize and plan", plan)

    _read_in_steps(reader, step)

    def answer():
        with torch.inference_mode():
            return ask(reader, args.question)

    results = step("answer the question", answer)
    sampler.stop()
    peak_mb = round(_status_kb("VmHWM") / 1024, 1)
    ru_maxrss_mb = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)

    info = {
        "peak_rss_mb": peak_mb,
        "ru_maxrss_mb": ru_maxrss_mb,
        "limit_mb": round(args.limit_gb * 1024),
        "steps": steps,
        "document": {
            "name": document.name,
            "pages": document.n_pages,
            "characters": document.n_chars,
            "tokens": len(reader.long_tokens),
            "sentences": len(reader.sentences),
        },
        "question": args.question,
        "answers": _answers(results),
        "machine": machine_info("end"),
    }
    print(json.dumps(info, indent=2))
    print(f"peak RSS: {peak_mb:,.0f} MB (limit {args.limit_gb:g} GB)")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(info, indent=2))
    return 0 if peak_mb <= args.limit_gb * 1024 else 1


if __name__ == "__main__":
    sys.exit(main())
