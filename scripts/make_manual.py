"""Build a second book-length test document, unlike the Bible: a reference manual of 1,200+ pages.

    .venv/bin/python scripts/make_manual.py            # prints the path of the PDF (built once, then cached)
    .venv/bin/python bench/big_document.py --pdf "$(.venv/bin/python scripts/make_manual.py)" \
        --question "What does json.dumps return?" --second-question "How do I read a CSV file?" --json out.json

The King James Bible (`make_samples.py --bible`) is prose in short verses; manuals are headings, signatures,
indented code, tables of constants and long runs of short lines. This one is the Python standard library's
own documentation as `pydoc` renders it in text (every importable public module of this Python, in name order,
one chapter each, until the page count is reached: from `abc` to `pathlib` on Python 3.11, 1,207 pages), typeset in a monospaced font with a running header and page
numbers. It is a stand-in for "a manual the project has never seen" in issue 27's measurements: built on demand
under LONGDOC_CACHE/samples and never committed (the text is the PSF-licensed documentation of the Python that
runs the script; the page count depends on that Python's version, which the file name carries).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import os
import pydoc
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
MIN_PAGES = 1200
# Modules that start programs, open windows or print on import, and test packages: not a manual's content.
SKIP = {"antigravity", "this", "idlelib", "turtledemo", "tkinter", "turtle", "test", "lib2to3", "pydoc_data"}


def module_docs() -> Iterator[tuple[str, str]]:
    """(module name, its pydoc text) for every importable public standard-library module, in name order."""
    for name in sorted(sys.stdlib_module_names):
        if name.startswith("_") or name in SKIP:
            continue
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            try:
                module = importlib.import_module(name)
                text = pydoc.render_doc(module, renderer=pydoc.plaintext)
            except Exception:  # noqa: BLE001, S112 - a module this platform lacks (e.g. winreg) is left out
                continue
        yield name, text


def _latin1(line: str) -> str:
    """The PDF's core fonts hold Latin-1 only; anything else becomes '?'."""
    return line.encode("latin-1", errors="replace").decode("latin-1")


def manual_pdf(path: Path, min_pages: int = MIN_PAGES) -> int:
    """Typeset modules' documentation until the PDF has at least `min_pages` pages; returns its page count."""
    from fpdf import FPDF

    pdf = FPDF(format="Letter")
    pdf.set_margins(18, 18, 18)
    pdf.set_auto_page_break(True, margin=16)
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    pdf.set_title(f"The Python {version} Standard Library, as pydoc renders it")
    current = {"module": ""}

    def header() -> None:
        if pdf.page_no() > 1:
            pdf.set_font("Helvetica", "I", 8)
            pdf.cell(0, 5, f"Python {version} library reference: {current['module']}", align="C")
            pdf.ln(7)

    def footer() -> None:
        pdf.set_y(-12)
        pdf.set_font("Helvetica", size=8)
        pdf.cell(0, 5, f"{pdf.page_no()}", align="C")

    pdf.header, pdf.footer = header, footer
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 22)
    pdf.cell(0, 40, f"The Python {version} Standard Library", new_x="LMARGIN", new_y="NEXT", align="C")
    pdf.set_font("Helvetica", "I", 11)
    pdf.cell(0, 8, "Module reference, as pydoc renders it", new_x="LMARGIN", new_y="NEXT", align="C")
    for name, text in module_docs():
        if pdf.page_no() >= min_pages:
            break
        current["module"] = name
        pdf.add_page()
        pdf.set_font("Helvetica", "B", 16)
        pdf.cell(0, 10, f"Module {name}", new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("Courier", size=8)
        for line in text.splitlines():
            pdf.multi_cell(0, 3.6, _latin1(line.rstrip()) or " ", new_x="LMARGIN", new_y="NEXT")
    pdf.output(str(path))
    return pdf.page_no()


def cached_manual_pdf(cache: Path | None = None) -> Path:
    """The manual's PDF, built on first use under `cache` (default LONGDOC_CACHE/samples) and reused after."""
    if cache is None:
        sys.path.insert(0, str(REPO_ROOT))
        from longformer_core.settings import cache_dir

        cache = cache_dir() / "samples"
    path = cache / f"python{sys.version_info.major}{sys.version_info.minor}_library_manual_v1.pdf"
    if not path.is_file():
        cache.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(f".{os.getpid()}.tmp")
        manual_pdf(partial)
        partial.replace(path)  # atomic: a reader never sees half a file
    return path


def main() -> None:
    argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    ).parse_args()
    print(cached_manual_pdf())


if __name__ == "__main__":
    main()
