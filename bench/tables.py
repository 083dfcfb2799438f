"""Reading a PDF with tables on and off: what rebuilding tables (documents/tables.py) adds to the reading.

    .venv/bin/python bench/tables.py --pdf ../shared/data/pdfs/nist_sp800-61r2.pdf --json

Reads the PDF `--repeats` times each way, alternating (off, on, off, on, ...) so a change in machine load
hits both alike, and prints the median seconds of each, their ratio (the target is <= 1.20), the pages that
showed a table (and so were given to pdfplumber) and the tables and cells found, plus `machine` (what
longformer_core.machine records). Two timings per way:

- `extract`: `documents.pdf.extract_pdf_pages` in this process, tables off and on (pypdf, plus pdfplumber on
  the pages that show a table): the ratio;
- `load`: `documents.load_document` with tables on, the app's path (the PDF worker process, pipe included),
  for reference.

With `--compare` it also reads the tables of the same pages with pdfplumber (when installed: `pip install
pdfplumber`): its table finder for ruled grids and its words for the unruled rebuild, then the same cell
location. It prints both engines' seconds on those pages and how many tables agree cell for cell (the
choice of PDFium in documents/tables.py rests on this comparison).

Run it on a quiet machine: timings beside a training run are not valid.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from longformer_core.documents import load_document
from longformer_core.documents.pdf import clean_pdf_page_text, extract_pdf_pages
from longformer_core.documents.table_layout import (
    aligned_tables,
    clean_grid,
    nearest_caption,
    table_from_grid,
)
from longformer_core.documents.tables import TableReader, locate, might_hold_table
from longformer_core.machine import machine_info


def _timed(function) -> float:
    t0 = time.perf_counter()
    function()
    return time.perf_counter() - t0


def _plumber_tables(data: bytes, pages: list[tuple[int, str]]) -> list:
    """The tables of the given (index, page text) pages read with pdfplumber instead of PDFium."""
    import io

    import pdfplumber

    found = []
    with pdfplumber.open(io.BytesIO(data)) as pdf:
        for index, text in pages:
            page = pdf.pages[index]
            words = page.extract_words()
            raw = []
            for table in page.find_tables():
                grid = clean_grid(table.extract(), clean_pdf_page_text)
                if grid:
                    top, bottom = table.bbox[1], table.bbox[3]
                    raw.append(table_from_grid(grid, nearest_caption(words, top, bottom), top, bottom))
            raw += aligned_tables(words, float(page.width), [(t.top, t.bottom) for t in raw])
            found += [t for t in (locate(r, text, index + 1) for r in raw) if t is not None]
            page.close()
    return found


def compare(data: bytes, text: str, page_spans: list[tuple[int, int, str]]) -> dict:
    """PDFium (documents.tables) against pdfplumber on the pages that show a table: seconds and agreement."""
    pages = [(i, text[a:b]) for i, (a, b, _) in enumerate(page_spans) if might_hold_table(text[a:b])]
    reader = TableReader(data, None, clean_pdf_page_text)
    t0 = time.perf_counter()
    ours = [t for i, page_text in pages for t in reader.page_tables(i, page_text)]
    ours_s = time.perf_counter() - t0
    try:
        t0 = time.perf_counter()
        theirs = _plumber_tables(data, pages)
        theirs_s = time.perf_counter() - t0
    except ImportError:
        return {"pdfplumber": "not installed (pip install pdfplumber to compare)"}

    def key(table) -> tuple:
        return table.page, table.label, table.header, table.rows

    same = {key(t) for t in ours} & {key(t) for t in theirs}
    return {
        "pages_compared": len(pages),
        "pdfium_seconds": round(ours_s, 3),
        "pdfplumber_seconds": round(theirs_s, 3),
        "pdfium_tables": len(ours),
        "pdfplumber_tables": len(theirs),
        "tables_equal_cell_for_cell": len(same),
        "pdfium_cells": sum(len(t.cells()) for t in ours),
        "pdfplumber_cells": sum(len(t.cells()) for t in theirs),
        "only_pdfium": [f"p{t.page} {t.label or 'no caption'}" for t in ours if key(t) not in same],
        "only_pdfplumber": [f"p{t.page} {t.label or 'no caption'}" for t in theirs if key(t) not in same],
    }


def main() -> None:
    data_dir = Path(os.environ.get("LONGDOC_DATA_DIR", "../shared/data"))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pdf", default=str(data_dir / "pdfs" / "nist_sp800-61r2.pdf"))
    parser.add_argument("--repeats", type=int, default=5, help="readings each way (median reported)")
    parser.add_argument("--compare", action="store_true", help="also read the tables with pdfplumber")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    path = Path(args.pdf)
    data = path.read_bytes()
    report: dict = {"pdf": path.name, "repeats": args.repeats, "machine": machine_info()}

    first = extract_pdf_pages(data, path.name)  # warm-up (imports, file cache)
    report["pages"] = len(first.pages)
    report["pages_with_table_signs"] = sum(might_hold_table(first.text[a:b]) for a, b, _ in first.pages)
    report["tables"] = len(first.tables)
    report["cells"] = sum(len(t.cells()) for t in first.tables)
    times: dict[str, list[float]] = {"off": [], "on": []}
    for _ in range(args.repeats):
        times["off"].append(_timed(lambda: extract_pdf_pages(data, path.name, tables=False)))
        times["on"].append(_timed(lambda: extract_pdf_pages(data, path.name, tables=True)))
    off, on = statistics.median(times["off"]), statistics.median(times["on"])
    report["extract_seconds_tables_off"] = round(off, 3)
    report["extract_seconds_tables_on"] = round(on, 3)
    report["extract_ratio_on_over_off"] = round(on / off, 3)
    report["extract_runs"] = {k: [round(t, 3) for t in v] for k, v in times.items()}
    loads = [
        _timed(lambda: load_document(data, path.name, page_time_budget_s=60.0)) for _ in range(args.repeats)
    ]
    report["load_seconds_tables_on"] = round(statistics.median(loads), 3)
    report["target_ratio"] = 1.2
    if args.compare:
        report["compare"] = compare(data, first.text, list(first.pages))
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        for key, value in report.items():
            print(f"{key}: {value}")


if __name__ == "__main__":
    main()
