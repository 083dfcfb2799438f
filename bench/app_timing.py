"""Time the app as a user meets it: upload a long PDF, ask a first question, then more questions.

Runs the real app (app.py, the real embedded model) in-process with Streamlit's AppTest, so the times
include the page scripts, the charts and the caches, but not the browser's network and drawing.

Usage:
    .venv/bin/python bench/app_timing.py                      # the NIST guide from the shared data
    .venv/bin/python bench/app_timing.py --pdf my.pdf --question "..." --question "..."
    .venv/bin/python bench/app_timing.py --json artifacts/app_timing.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))
from longformer_core import settings
from longformer_core.machine import machine_info

DEFAULT_PDF = settings.data_dir() / "pdfs/nist_sp800-61r2.pdf"
DEFAULT_QUESTIONS = [
    "How long should incident handling records be retained?",
    "What is a precursor?",
    "Which tool helps to prioritize the handling of incidents?",
]


def timed(step, results: dict, name: str):
    start = time.perf_counter()
    out = step()
    results[name] = round(time.perf_counter() - start, 3)
    return out


def check(at) -> None:
    problems = [e.value for e in at.exception] + [e.value for e in at.error]
    if problems:
        raise SystemExit(f"the app reported: {problems}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pdf", type=Path, default=DEFAULT_PDF)
    parser.add_argument(
        "--question", action="append", help="repeat for several (default: three NIST questions)"
    )
    parser.add_argument("--json", type=Path, help="also write the numbers here")
    args = parser.parse_args()
    questions = args.question or DEFAULT_QUESTIONS

    from streamlit.testing.v1 import AppTest

    info = {"machine": machine_info(), "pdf": str(args.pdf), "seconds": {}}
    seconds = info["seconds"]
    at = AppTest.from_file(str(REPO_ROOT / "app.py"), default_timeout=3600)
    timed(at.run, seconds, "app start (model load)")
    check(at)

    data = args.pdf.read_bytes()
    uploader = at.file_uploader(key="document_upload")
    timed(
        lambda: uploader.set_value((args.pdf.name, data, "application/pdf")).run(),
        seconds,
        "upload -> document shown",
    )
    check(at)
    timed(lambda: at.switch_page("pages/ask.py").run(), seconds, "open the Ask page")
    for i, question in enumerate(questions, 1):
        at.text_input(key="question").input(question)
        timed(lambda: at.button(key="ask_button").click().run(), seconds, f"question {i}")
        check(at)
        record = at.session_state["ask_history"][-1]
        info[f"question {i}"] = {
            "question": question,
            "answers": {
                view: {
                    "page": a.result.best.page if a.result.best else None,
                    "text": " ".join(a.result.best.text.split())[:160] if a.result.best else "",
                    "answer_seconds": round(a.result.seconds, 3),
                    "reading_seconds": round(a.reading_seconds, 2) if a.reading_seconds else None,
                }
                for view, a in record.answers.items()
            },
        }
    seconds["upload -> first answer"] = round(
        seconds["upload -> document shown"] + seconds["open the Ask page"] + seconds["question 1"], 3
    )
    document = at.session_state["document"]
    info["document"] = {"name": document.name, "pages": document.n_pages, "characters": document.n_chars}

    print(json.dumps(info, indent=2))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(info, indent=2))


if __name__ == "__main__":
    main()
