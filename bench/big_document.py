"""A book-length PDF through the Ask page's code path: parse, preliminary answer, full reading, later question,
memory (issue 27).

In one run, with the app's default limits (a refusal is a result, not a crash of the bench):
  1. matmul micro-benchmark (fp32 and bf16, at the start and at the end; the better sets the FLOP bound);
  2. load the models; parse the PDF in the PDF worker, as an upload is (pages and pages/s on stderr);
  3. "document chosen": `DocumentReader` with the Ask page's strategy, the background reading started
     (`start_reading`, every view and the passage embeddings), and at once the preliminary answer of every view
     inside `priority.foreground()` (what the Ask page shows while the views read): `preliminary_answer_s`;
  4. each view answers as soon as it is read, as `ui.tasks.answer_question` does: `first_answer_s` is when the
     reading is done and every view has answered; `flop_bound_s` is the reading's FLOPs (every window of every
     view, one embedding per passage, the question's reader passes; bench/first_answer.py counts them) over the
     matmul rate of the dtype in use;
  5. a second question: `second_answer_s`;
  6. memory: RSS sampled every 50 ms (this process; and the PDF worker's, a child process), `peak_rss_mb` is
     the kernel's VmHWM; `peak_anon_mb` leaves out file-backed pages (token states in memory-mapped files);
     `bytes_per_token` is what the reading keeps (`DocumentReader.memory_by_component`) per token, by component.

Usage (a quiet machine: the timings are the point):
    .venv/bin/python scripts/make_samples.py --bible          # the 1,147-page test book, built once, cached
    .venv/bin/python bench/big_document.py --json             # that book and its default questions
    .venv/bin/python bench/big_document.py --pdf manual.pdf --question "..." --second-question "..." --json out.json
    .venv/bin/python bench/big_document.py --pdf "$(.venv/bin/python scripts/make_samples.py --manual)" \
        --question "What does json.dumps return?" --second-question "How do I read a CSV file?" --json out.json
    LONGDOC_DTYPE=fp32 .venv/bin/python bench/big_document.py --json
Exit status 1 with --check when a bar of issue 27 is missed (peak RSS <= 4,000 MB, preliminary answer <= 5 s,
full reading <= 3x the FLOP bound, later question <= 1 s).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import threading
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))
from bench.first_answer import matmul_gflops, peak_rss_mb, reading_flops  # after the sys.path line
from bench.soak_proc import pdf_workers, rss_bytes
from longformer_core.machine import machine_info

DEFAULT_QUESTION = "Who prepared a great fish to swallow up Jonah?"  # for the default book
DEFAULT_SECOND_QUESTION = "What did the LORD say to Moses out of the burning bush?"
VIEW_ORDER = ("truncated", "chunked", "longformer")
BARS = {"peak_rss_mb": 4000, "preliminary_answer_s": 5.0, "ratio_to_flop_bound": 3.0, "second_answer_s": 1.0}
MB = 2**20


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _status_mb(field: str) -> float:
    """A field of /proc/self/status in MB (VmRSS, RssAnon, VmHWM); 0 where /proc is missing."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


class MemorySampler:
    """Peaks of this process's RSS and anonymous RSS, and of its PDF workers' RSS, every `every_s` seconds."""

    def __init__(self, every_s: float = 0.05) -> None:
        self.every_s = every_s
        self.peak = {"rss_mb": 0.0, "anon_mb": 0.0, "pdf_worker_mb": 0.0}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            workers = sum(rss_bytes(pid) for pid in pdf_workers(os.getpid())) / MB
            for key, value in (
                ("rss_mb", _status_mb("VmRSS")),
                ("anon_mb", _status_mb("RssAnon")),
                ("pdf_worker_mb", workers),
            ):
                self.peak[key] = max(self.peak[key], value)
            self._stop.wait(self.every_s)

    def stop(self) -> dict[str, float]:
        self._stop.set()
        self._thread.join(5)
        return {key: round(value, 1) for key, value in self.peak.items()}


def _default_book() -> Path:
    """The whole KJV Bible as a PDF (scripts/make_samples.py --bible), built on first use."""
    spec = importlib.util.spec_from_file_location("make_samples", REPO_ROOT / "scripts" / "make_samples.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.cached_bible_pdf()


def _parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pdf", type=Path, default=None, help="default: the whole KJV Bible (built once)")
    parser.add_argument("--question", default=DEFAULT_QUESTION, help="the first question")
    parser.add_argument("--second-question", default=DEFAULT_SECOND_QUESTION, help="the later question")
    parser.add_argument("--model", default="embedded", help="Longformer id or folder (default: embedded)")
    parser.add_argument("--baseline", default=None, help="512-token baseline id or folder")
    parser.add_argument("--check", action="store_true", help="exit 1 when a bar of issue 27 is missed")
    parser.add_argument(
        "--json", nargs="?", const="-", default=None, help="print the numbers as JSON (to stdout, or to FILE)"
    )
    return parser.parse_args()


def _parse(path: Path) -> tuple[object, float]:
    """The Document (default limits, as an upload) and the seconds it took; pages/s on stderr as it goes."""
    from longformer_core.documents import load_path

    started = time.perf_counter()
    shown = [0.0]

    def on_page(done: int, total: int) -> None:
        now = time.perf_counter()
        if done == total or now - shown[0] > 5:
            shown[0] = now
            rate = done / max(now - started, 1e-9)
            _log(f"parsing: page {done:,} of {total:,} ({rate:.0f} pages/s)")

    document = load_path(path, on_page=on_page)
    return document, time.perf_counter() - started


def _preliminary(reader, question: str) -> dict[str, dict]:
    """Every view's preliminary answer, in a foreground section as the Ask page gives it."""
    from longformer_core.qa.answering import preliminary_answer
    from longformer_core.reading.priority import foreground

    out = {}
    with foreground():
        for view in VIEW_ORDER:
            best = preliminary_answer(reader, question, view).best
            out[view] = {
                "page": best.page if best else None,
                "text": " ".join(best.text.split())[:100] if best else "",
            }
    return out


def _answer_when_read(reader, reading, question: str, t_chosen: float) -> tuple[dict, dict]:
    """Each view answers as soon as its reading is done ({view: seconds since chosen}, {view: page, text})."""
    from longformer_core.qa.answering import ask
    from longformer_core.reading.priority import foreground

    at, answers = {}, {}
    pending = list(VIEW_ORDER)
    last_log = time.perf_counter()
    while pending:
        ready = [v for v in pending if reading.is_ready(v)]
        if not ready:
            reading.wait(pending[0], timeout=0.5)  # raises when the reading failed
            if time.perf_counter() - last_log > 15:
                last_log = time.perf_counter()
                running = reading.running_step()
                left = reading.seconds_left(running) if running else None
                _log(f"reading: {reading.fractions()} ({running}: ~{left or 0:.0f} s left)")
            continue
        with foreground():
            for view in ready:
                best = ask(reader, question, views=(view,))[view].best
                at[view] = round(time.perf_counter() - t_chosen, 2)
                answers[view] = {
                    "page": best.page if best else None,
                    "text": " ".join(best.text.split())[:100] if best else "",
                }
                _log(f"{view}: answered at {at[view]:.1f} s (page {answers[view]['page']})")
                pending.remove(view)
    return at, answers


def _read_and_answer(pair, document, args: argparse.Namespace) -> dict:
    """Steps 3-5: the numbers from "document chosen" to the second answer."""
    from longformer_core.qa.answering import ask
    from longformer_core.reading.background import start_reading
    from longformer_core.reading.document_reading import DocumentReader
    from longformer_core.reading.strategies import DEFAULT_FOR_TASK

    t_chosen = time.perf_counter()
    reader = DocumentReader(pair, document, strategy=DEFAULT_FOR_TASK["qa"])
    tokenize_s = time.perf_counter() - t_chosen
    reading = start_reading(reader)
    preliminary = _preliminary(reader, args.question)
    preliminary_s = time.perf_counter() - t_chosen
    _log(
        f"tokens: {len(reader.long_tokens):,} in {tokenize_s:.1f} s; preliminary answers at {preliminary_s:.2f} s"
    )
    by_view, answers = _answer_when_read(reader, reading, args.question, t_chosen)
    first_s = time.perf_counter() - t_chosen
    t0 = time.perf_counter()
    second = ask(reader, args.second_question)
    second_s = time.perf_counter() - t0
    _log(f"second question: {second_s:.2f} s")
    return {
        "reader": reader,
        "tokenize_s": round(tokenize_s, 2),
        "preliminary_answer_s": round(preliminary_s, 2),
        "first_answer_s": round(first_s, 2),
        "first_answer_by_view_s": by_view,
        "reading_steps_done_at_s": dict(reading.seconds),
        "reading_paused_for_questions_s": round(reading.paused_s, 2),
        "second_answer_s": round(second_s, 3),
        "preliminary_answers": preliminary,
        "answers": answers,
        "second_answers": {v: (r.best.page if r.best else None) for v, r in second.items()},
    }


def main() -> int:
    args = _parse_args()
    import torch

    from longformer_core.model.registry import load_models

    pdf = args.pdf or _default_book()
    if not pdf.is_file():
        _log(f"no PDF at {pdf}")
        return 2
    sampler = MemorySampler()
    fp32_start, bf16_start = matmul_gflops(torch.float32), matmul_gflops(torch.bfloat16)
    pair = load_models(args.model, args.baseline)
    rss_models_mb = _status_mb("VmRSS")
    dtype = str(getattr(pair.longformer, "dtype", torch.float32)).replace("torch.", "")
    from longformer_core.documents import DocumentError

    try:
        document, parse_s = _parse(pdf)
        _log(f"{document.n_pages:,} pages parsed in {parse_s:.1f} s; dtype {dtype}")
        run = _read_and_answer(pair, document, args)
    except DocumentError as refusal:  # a default limit said no: that is the result
        print(
            json.dumps({"refused": str(refusal), "pdf": str(pdf), "machine": machine_info("end")}, indent=2)
        )
        return 1
    reader = run.pop("reader")
    fp32 = max(fp32_start, matmul_gflops(torch.float32))
    bf16 = max(bf16_start, matmul_gflops(torch.bfloat16))
    flops = reading_flops(reader, args.question)
    flop_bound_s = sum(flops.values()) / ((bf16 if dtype == "bfloat16" else fp32) * 1e9)
    peaks = sampler.stop()
    n_tokens = len(reader.long_tokens)
    memory = reader.memory_by_component()
    peak = peak_rss_mb()
    info = {
        "pages": document.n_pages,
        "tokens": n_tokens,
        "parse_s": round(parse_s, 2),
        "parse_pages_per_s": round(document.n_pages / max(parse_s, 1e-9), 1),
        "preliminary_answer_s": run["preliminary_answer_s"],
        "first_answer_s": run["first_answer_s"],
        "flop_bound_s": round(flop_bound_s, 2),
        "ratio_to_flop_bound": round(run["first_answer_s"] / flop_bound_s, 2),
        "second_answer_s": run["second_answer_s"],
        "peak_rss_mb": peak,
        "bytes_per_token": round(sum(memory.values()) / n_tokens, 1),
        "dtype": dtype,
        "machine": machine_info("end"),
        "bytes_per_token_by_component": {k: round(v / n_tokens, 1) for k, v in memory.items()},
        "peak_rss_over_models_per_token": round((peak - rss_models_mb) * MB / n_tokens, 1),
        "rss_with_models_mb": round(rss_models_mb, 1),
        "peak_anon_mb": peaks["anon_mb"],
        "peak_pdf_worker_mb": peaks["pdf_worker_mb"],
        "reading_tflop": {k: round(v / 1e12, 3) for k, v in flops.items()}
        | {"total": round(sum(flops.values()) / 1e12, 3)},
        "matmul_gflops": {"float32": round(fp32, 1), "bfloat16": round(bf16, 1)},
        "passages": len(reader.passages),
        **{
            k: v
            for k, v in run.items()
            if k not in ("preliminary_answer_s", "first_answer_s", "second_answer_s")
        },
        "pdf": str(pdf),
        "questions": [args.question, args.second_question],
        "model": args.model,
        "baseline": args.baseline or "(default)",
    }
    info["bars"] = {key: info[key] <= bar for key, bar in BARS.items()}
    text = json.dumps(info, indent=2)
    if args.json not in (None, "-"):
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(text)
    print(text if args.json else "\n".join(f"{k}: {v}" for k, v in info.items()))
    return 1 if args.check and not all(info["bars"].values()) else 0


if __name__ == "__main__":
    sys.exit(main())
