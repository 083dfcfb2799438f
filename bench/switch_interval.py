"""Later questions while another session prepares a book, for several GIL switch intervals.

The app's server answers every session's questions in one Python process. When a session uploads a book, its
first page runs tokenize it and build its passages and lexical index: seconds of plain Python, at the same
priority as everyone else's questions. A question takes the GIL back after each of its hundreds of torch ops,
and each time it may wait up to the switch interval (`sys.setswitchinterval`; Python's default 5 ms) for that
Python thread to let go. This bench measures it, in one process as the app's server:

  1. three threads, each on its own read HotpotQA document (the shared data), ask a later question again and
     again inside `priority.foreground()`, as three sessions' Ask pages do (`qa.ask`, every view);
  2. for each switch interval in turn (repeated `--rounds` times, intervals alternating so load changes hit
     all alike): a quiet stretch (`--quiet-s` seconds: the three alone), then a fourth thread prepares the
     book as a fresh upload's page runs do (its tokens, passages, lexical index and a preliminary answer)
     while the three keep asking.

Prints, per interval: the questions' median and slowest latency when quiet and while the book was prepared,
and the preparation's seconds; `slowest_over_default` compares each interval's slowest (book) with 5 ms's in
the same run. The app sets 0.25 ms (`machine.share_the_interpreter_finely`).

Usage (repository root; ~2 minutes on 2 cores, a quiet machine):
    .venv/bin/python bench/switch_interval.py --pdf "$(.venv/bin/python scripts/make_samples.py --bible)" --json
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import sys
import threading
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))
from longformer_core.machine import machine_info  # after the sys.path line

DATA_DIR = Path(os.environ.get("LONGDOC_DATA_DIR", REPO_ROOT.parent / "shared" / "data"))
HOTPOT = DATA_DIR / "hotpotqa" / "hotpotqa-dev-distractor.squad.json"
BOOK_QUESTION = "Who prepared a great fish to swallow up Jonah?"
ASKERS = 3


def read_documents(pair, n: int) -> list[tuple[object, str]]:
    """`n` HotpotQA contexts, each read completely (so every question after is a later question)."""
    from longformer_core.documents import load_document
    from longformer_core.qa.answering import ask
    from longformer_core.reading.background import start_reading
    from longformer_core.reading.document_reading import DocumentReader

    out = []
    for article in json.loads(HOTPOT.read_text())["data"][:n]:
        paragraph = article["paragraphs"][0]
        reader = DocumentReader(pair, load_document(paragraph["context"].encode(), f"{article['title']}.txt"))
        start_reading(reader).join()
        ask(reader, "What is this about?")  # the first question
        out.append((reader, paragraph["qas"][0]["question"]))
    return out


def prepare_book(pair, book) -> float:
    """What a fresh upload's page runs do first, in the foreground: tokens, passages, lexical index, an early answer."""
    from longformer_core.qa.answering import preliminary_answer
    from longformer_core.reading.document_reading import DocumentReader
    from longformer_core.reading.priority import foreground

    started = time.perf_counter()
    reader = DocumentReader(pair, book)
    with foreground():
        _ = reader.long_tokens, reader.lexical_index, reader.paragraph_starts
        preliminary_answer(reader, BOOK_QUESTION, "chunked")
    seconds = time.perf_counter() - started
    del reader
    gc.collect()  # the next round tokenizes the book again (tokens are shared only while a reader keeps them)
    return seconds


def stretch(readers, busy, seconds: float) -> tuple[list[float], float | None]:
    """Latencies of the askers' questions over `seconds` of quiet, or while `busy()` runs (its seconds too)."""
    from longformer_core.qa.answering import ask
    from longformer_core.reading.priority import foreground

    latencies: list[float] = []
    stop = threading.Event()

    def asker(reader, question: str) -> None:
        while not stop.is_set():
            started = time.perf_counter()
            with foreground():
                ask(reader, question)
            latencies.append(time.perf_counter() - started)

    threads = [threading.Thread(target=asker, args=pair_) for pair_ in readers]
    for thread in threads:
        thread.start()
    busy_s = busy() if busy is not None else time.sleep(seconds)
    stop.set()
    for thread in threads:
        thread.join()
    return latencies, busy_s


def summary(latencies: list[float]) -> dict[str, float]:
    return {
        "n": len(latencies),
        "p50_s": round(statistics.median(latencies), 3),
        "max_s": round(max(latencies), 3),
    }


def measure(pdf: Path, intervals_ms: list[float], rounds: int, quiet_s: float) -> dict:
    from longformer_core.documents import load_document
    from longformer_core.model.registry import load_embedded

    pair = load_embedded()
    readers = read_documents(pair, ASKERS)
    book = load_document(pdf.read_bytes(), pdf.name)
    default = sys.getswitchinterval()
    runs: dict[float, dict[str, list]] = {ms: {"quiet": [], "book": [], "prep": []} for ms in intervals_ms}
    try:
        for _ in range(rounds):
            for ms in intervals_ms:
                sys.setswitchinterval(ms / 1000)
                runs[ms]["quiet"] += stretch(readers, None, quiet_s)[0]
                latencies, prep_s = stretch(readers, lambda: prepare_book(pair, book), 0)
                runs[ms]["book"] += latencies
                runs[ms]["prep"].append(round(prep_s, 2))
    finally:
        sys.setswitchinterval(default)
    out = {
        f"{ms:g}_ms": {"quiet": summary(r["quiet"]), "book": summary(r["book"]), "prep_s": r["prep"]}
        for ms, r in runs.items()
    }
    if 5.0 in intervals_ms:
        base = out["5_ms"]["book"]["max_s"]
        for value in out.values():
            value["slowest_over_default"] = round(value["book"]["max_s"] / base, 2)
    return {"pdf": pdf.name, "pages": book.n_pages, "chars": book.n_chars, "intervals": out}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pdf", type=Path, required=True, help="the book (scripts/make_samples.py --bible)")
    parser.add_argument("--intervals-ms", type=float, nargs="+", default=[5.0, 1.0, 0.25])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--quiet-s", type=float, default=4.0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if not HOTPOT.exists():
        print(f"Needs the shared data: {HOTPOT} not found (set LONGDOC_DATA_DIR).", file=sys.stderr)
        return 2
    result = {"machine": machine_info()} | measure(args.pdf, args.intervals_ms, args.rounds, args.quiet_s)
    print(json.dumps(result, indent=2) if args.json else result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
