"""Questions first: a second question's latency while another document is read in the background.

In one run, with the embedded model, in one process (as the app's server is):
  1. read the question's document (the bundled field guide) completely, then time `qa.ask` on it alone;
  2. start the background reading of a long document (the 79-page NIST guide from the shared data;
     `background.BackgroundReading`, as another session's upload would), and while it runs time the same question, alternately
     plain and inside `priority.foreground()` (as the Ask page asks), so load changes hit both alike.

Prints the medians and the ratios `contended_over_alone` and `foreground_over_alone` (1.0: the reading
costs the question nothing) and how long the reading was paused. The machine's other work (load average)
is printed too: on a shared machine every time is an upper bound.

Usage (repository root):
    .venv/bin/python bench/priority.py --json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

SAMPLES = REPO_ROOT / "assets" / "samples"
DATA_DIR = Path(os.environ.get("LONGDOC_DATA_DIR", REPO_ROOT.parent / "shared" / "data"))
LONG_DOCUMENT = DATA_DIR / "pdfs" / "nist_sp800-61r2.pdf"
QUESTION = "When does the reading room of the Harbor Library open?"


def timed_ask(reader, question: str, in_foreground: bool) -> float:
    """Seconds for one question with every view (the reading of `reader` already done)."""
    from longformer_core.qa.answering import ask
    from longformer_core.reading.priority import foreground

    started = time.perf_counter()
    if in_foreground:
        with foreground():
            ask(reader, question)
    else:
        ask(reader, question)
    return time.perf_counter() - started


def measure(rounds: int) -> dict:
    """Alone, then alternately plain and in the foreground while a long document is read."""
    import torch

    from longformer_core.documents import load_path
    from longformer_core.model.registry import load_embedded
    from longformer_core.reading.background import BackgroundReading
    from longformer_core.reading.document_reading import DocumentReader

    pair = load_embedded()
    asked = DocumentReader(pair, load_path(SAMPLES / "field_guide_to_longformer.md"), strategy="question")
    first = BackgroundReading(asked)
    assert first.join(1800) and first.error is None, first.error
    timed_ask(asked, QUESTION, False)  # warm: caches, first-call overheads
    alone = [timed_ask(asked, QUESTION, False) for _ in range(rounds)]

    other = BackgroundReading(DocumentReader(pair, load_path(LONG_DOCUMENT), strategy="question"))
    plain: list[float] = []
    first_class: list[float] = []
    for _ in range(rounds):
        if other.done:
            break
        plain.append(timed_ask(asked, QUESTION, False))
        first_class.append(timed_ask(asked, QUESTION, True))
    still_reading = not other.done
    other.join(3600)
    return {
        "question_document_tokens": len(asked.long_tokens),
        "background_document_tokens": len(other.reader.long_tokens),
        "torch_threads": torch.get_num_threads(),
        "rounds": len(plain),
        "reading_still_running_after_the_last_round": still_reading,
        "alone_s": round(statistics.median(alone), 3),
        "contended_s": round(statistics.median(plain), 3) if plain else None,
        "foreground_s": round(statistics.median(first_class), 3) if first_class else None,
        "background_paused_s": round(other.paused_s, 1),
        "background_reading_s": round(time.monotonic() - other.started_at, 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5, help="questions of each kind")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    load_at_start = os.getloadavg()
    result = measure(args.rounds)
    if result["contended_s"] and result["foreground_s"]:
        result["contended_over_alone"] = round(result["contended_s"] / result["alone_s"], 2)
        result["foreground_over_alone"] = round(result["foreground_s"] / result["alone_s"], 2)
    result["load_average_at_start"] = load_at_start
    result["load_average_at_end"] = os.getloadavg()
    if args.json:
        print(json.dumps(result, indent=1))
    else:
        for key, value in result.items():
            print(f"{key}: {value}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
