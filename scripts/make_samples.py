"""Rebuild the public-domain demo samples in assets/samples/ from Debian packages (no web access needed), and
build the big test document on demand.

    apt-get install bible-kjv        # the `bible` program and the King James text (bible-kjv-text)
    apt-get download dict-devil && dpkg-deb -x dict-devil_*.deb artifacts/devil
    .venv/bin/pip install fpdf2      # renders the PDF sample (requirements-test.txt)
    .venv/bin/python scripts/make_samples.py --devil artifacts/devil/usr/share/dictd/devil.dict.dz
    .venv/bin/python scripts/make_samples.py --bible   # prints the path of the whole Bible as a PDF
    .venv/bin/python scripts/make_samples.py --manual  # prints the path of a 1,200-page reference manual

`--bible` typesets the whole King James Bible (66 books, 31,102 verses, ~4.3 M characters, ~1.04 M tokens of the
embedded model) as a PDF of more than 1,000 Letter pages, for the tests and benchmarks of book-length documents
(issue 27). It is built once and cached under LONGDOC_CACHE/samples (never committed); later calls return the
cached file at once.

`--manual` builds a second book-length test document, unlike the Bible (prose in short verses): a reference
manual, the Python standard library's own documentation as `pydoc` renders it in text (every importable public
module of this Python in name order, one chapter each, until 1,200 pages: `abc` to `pathlib` on Python 3.11,
1,221 Letter pages), monospaced, with headings, signatures, indented code and tables of constants. It stands in
for "a manual the project has never seen" in issue 27's measurements; cached the same way, never committed (the
text is the PSF-licensed documentation of the Python that runs the script; the file name carries its version).

Writes:
- book_of_esther_kjv.pdf: the Book of Esther (KJV, 1611), typeset as a multi-page PDF (the PDF path);
- devils_dictionary_a_to_c.txt: Ambrose Bierce's The Devil's Dictionary (1911), preface and letters A-C;
- kjv_short_books.csv: twenty short books of the KJV Bible, one per row (title, section, text), a sample
  collection for the Collection page.
Sources and licences: assets/samples/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import gzip
import importlib
import io
import os
import pydoc
import re
import subprocess
import sys
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
OUT = REPO_ROOT / "assets" / "samples"
BIBLE_PDF_NAME = "kjv_bible_v1.pdf"  # the version changes when the layout does (a new name is built again)
MANUAL_PDF_NAME = f"python{sys.version_info.major}{sys.version_info.minor}_library_manual_v1.pdf"
MANUAL_PAGES = 1200
# Modules that start programs, open windows or print on import, and test packages: not a manual's content.
MANUAL_SKIP = {
    "antigravity",
    "this",
    "idlelib",
    "turtledemo",
    "tkinter",
    "turtle",
    "test",
    "lib2to3",
    "pydoc_data",
}

# (book, last chapter, section) for the collection: short books, so each reads in one Longformer pass.
SHORT_BOOKS = [
    ("Ruth", 4, "Old Testament: history"),
    ("Esther", 10, "Old Testament: history"),
    ("Joel", 3, "Old Testament: prophets"),
    ("Amos", 9, "Old Testament: prophets"),
    ("Obadiah", 1, "Old Testament: prophets"),
    ("Jonah", 4, "Old Testament: prophets"),
    ("Micah", 7, "Old Testament: prophets"),
    ("Nahum", 3, "Old Testament: prophets"),
    ("Habakkuk", 3, "Old Testament: prophets"),
    ("Zephaniah", 3, "Old Testament: prophets"),
    ("Haggai", 2, "Old Testament: prophets"),
    ("Malachi", 4, "Old Testament: prophets"),
    ("Song of Solomon", 8, "Old Testament: poetry"),
    ("Ecclesiastes", 12, "Old Testament: poetry"),
    ("Galatians", 6, "New Testament: letters"),
    ("Philippians", 4, "New Testament: letters"),
    ("Colossians", 4, "New Testament: letters"),
    ("Titus", 3, "New Testament: letters"),
    ("Philemon", 1, "New Testament: letters"),
    ("James", 5, "New Testament: letters"),
]


def bible_book(book: str, chapters: int) -> list[tuple[int, list[tuple[int, str]]]]:
    """[(chapter, [(verse, text)])] of one book, from Debian's `bible` program (bible-kjv)."""
    out = subprocess.run(
        ["bible", "-f", f"{book} 1:1-{chapters}:999"], capture_output=True, text=True, check=True
    )
    by_chapter: dict[int, list[tuple[int, str]]] = {}
    for line in out.stdout.splitlines():
        m = re.match(r"^\S+?(\d+):(\d+) (.*)$", line.strip())
        if m:
            by_chapter.setdefault(int(m.group(1)), []).append((int(m.group(2)), m.group(3).strip()))
    if not by_chapter:
        raise SystemExit(f"`bible` printed nothing for {book}: is bible-kjv installed?")
    return sorted(by_chapter.items())


def book_text(book: str, chapters: int) -> str:
    parts = [f"The Book of {book}"]
    for chapter, verses in bible_book(book, chapters):
        parts.append(f"\nChapter {chapter}\n")
        parts.append("\n".join(f"{v} {t}" for v, t in verses))
    return "\n".join(parts) + "\n"


def esther_pdf(path: Path) -> None:
    from fpdf import FPDF

    pdf = FPDF(format="Letter")
    pdf.set_margins(25, 25, 25)
    pdf.set_auto_page_break(True, margin=22)
    pdf.set_title("The Book of Esther (King James Version, 1611)")
    pdf.set_author("King James Version (public domain)")

    def footer() -> None:
        pdf.set_y(-15)
        pdf.set_font("Times", size=9)
        pdf.cell(0, 8, f"{pdf.page_no()}", align="C")

    pdf.footer = footer
    pdf.add_page()
    pdf.set_font("Times", "B", 20)
    pdf.cell(0, 14, "The Book of Esther", new_x="LMARGIN", new_y="NEXT", align="C")
    pdf.set_font("Times", "I", 11)
    pdf.cell(0, 8, "King James Version (1611). Public domain.", new_x="LMARGIN", new_y="NEXT", align="C")
    for chapter, verses in bible_book("Esther", 10):
        pdf.ln(4)
        pdf.set_font("Times", "B", 14)
        pdf.cell(0, 10, f"Chapter {chapter}", new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("Times", size=11)
        for verse, text in verses:
            pdf.multi_cell(0, 5.6, f"{verse} {text}", new_x="LMARGIN", new_y="NEXT")
            pdf.ln(1.2)
    pdf.output(str(path))


def whole_bible() -> list[tuple[str, list[tuple[int, list[tuple[int, str]]]]]]:
    """[(book, [(chapter, [(verse, text)])])] of the whole KJV, from `bible`'s pretty output (headings "Book N",
    verses "  n text" wrapped onto lines of their own)."""
    try:
        out = subprocess.run(["bible", "gen1:1-rev22:21"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError) as error:
        raise SystemExit(f"`bible` did not run ({error}): apt-get install -y bible-kjv") from error
    books: list[tuple[str, list[tuple[int, list[tuple[int, str]]]]]] = []
    for line in out.splitlines():
        heading = re.fullmatch(r"(\S.*?) (\d+)", line.rstrip())
        verse = re.fullmatch(r"\s+(\d+) (.*)", line.rstrip())
        if heading and not line.startswith(" "):
            book, chapter = heading.group(1), int(heading.group(2))
            if not books or books[-1][0] != book:
                books.append((book, []))
            books[-1][1].append((chapter, []))
        elif verse and books:
            books[-1][1][-1][1].append((int(verse.group(1)), verse.group(2).strip()))
        elif line.strip() and books and books[-1][1][-1][1]:  # a verse's continuation line
            number, text = books[-1][1][-1][1][-1]
            books[-1][1][-1][1][-1] = (number, f"{text} {line.strip()}")
    if len(books) != 66:
        raise SystemExit(f"`bible` gave {len(books)} books instead of 66: is bible-kjv-text installed?")
    return books


def bible_pdf(path: Path) -> None:
    """Typeset the whole KJV Bible as a PDF: each book on a new page, its name in the running header, chapters
    as headings, one paragraph per verse (more than 1,000 Letter pages)."""
    from fpdf import FPDF

    pdf = FPDF(format="Letter")
    pdf.set_margins(22, 20, 22)
    pdf.set_auto_page_break(True, margin=18)
    pdf.set_title("The Holy Bible (King James Version, 1611)")
    pdf.set_author("King James Version (public domain)")
    current = {"book": ""}
    _running_header_and_page_numbers(pdf, lambda: current["book"], "Times")
    pdf.add_page()
    pdf.set_font("Times", "B", 24)
    pdf.cell(0, 40, "The Holy Bible", new_x="LMARGIN", new_y="NEXT", align="C")
    pdf.set_font("Times", "I", 12)
    pdf.cell(0, 8, "King James Version (1611). Public domain.", new_x="LMARGIN", new_y="NEXT", align="C")
    for book, chapters in whole_bible():
        current["book"] = book
        pdf.add_page()
        pdf.set_font("Times", "B", 18)
        pdf.cell(0, 12, f"The Book of {book}", new_x="LMARGIN", new_y="NEXT", align="C")
        for chapter, verses in chapters:
            pdf.set_font("Times", "B", 12)
            pdf.cell(0, 8, f"{book} {chapter}", new_x="LMARGIN", new_y="NEXT")
            pdf.set_font("Times", size=10.5)
            for number, text in verses:
                pdf.multi_cell(0, 4.8, f"{number} {text}", new_x="LMARGIN", new_y="NEXT")
    pdf.output(str(path))


def _running_header_and_page_numbers(pdf, title: Callable[[], str], font: str) -> None:
    """A running header (`title()`, from page 2) and the page number at the foot of every page."""

    def header() -> None:
        if pdf.page_no() > 1:
            pdf.set_font(font, "I", 9)
            pdf.cell(0, 6, title(), new_x="LMARGIN", new_y="NEXT", align="C")
            pdf.ln(2)

    def footer() -> None:
        pdf.set_y(-13)
        pdf.set_font(font, size=9)
        pdf.cell(0, 6, f"{pdf.page_no()}", align="C")

    pdf.header, pdf.footer = header, footer


def cached_pdf(name: str, build: Callable[[Path], object], cache: Path | None = None) -> Path:
    """The PDF `name`, built by `build(path)` on first use under `cache` (default LONGDOC_CACHE/samples) and reused
    after."""
    if cache is None:
        sys.path.insert(0, str(REPO_ROOT))
        from longformer_core.settings import cache_dir

        cache = cache_dir() / "samples"
    path = cache / name
    if not path.is_file():
        cache.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(f".{os.getpid()}.tmp")
        build(partial)
        partial.replace(path)  # atomic: a reader never sees half a file
    return path


def cached_bible_pdf(cache: Path | None = None) -> Path:
    """The whole-Bible PDF (`cached_pdf`).

    Raises:
        SystemExit: the `bible` program (Debian's bible-kjv) or fpdf2 is missing.
    """
    return cached_pdf(BIBLE_PDF_NAME, bible_pdf, cache)


def module_docs() -> Iterator[tuple[str, str]]:
    """(module name, its pydoc text) for every importable public standard-library module, in name order."""
    for name in sorted(sys.stdlib_module_names):
        if name.startswith("_") or name in MANUAL_SKIP:
            continue
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            try:
                text = pydoc.render_doc(importlib.import_module(name), renderer=pydoc.plaintext)
            except Exception:  # noqa: BLE001, S112 - a module this platform lacks (e.g. winreg) is left out
                continue
        yield name, text


def manual_pdf(path: Path, min_pages: int = MANUAL_PAGES) -> int:
    """Typeset the standard library's documentation until the PDF has `min_pages` pages; returns the count."""
    from fpdf import FPDF

    pdf = FPDF(format="Letter")
    pdf.set_margins(18, 18, 18)
    pdf.set_auto_page_break(True, margin=16)
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    pdf.set_title(f"The Python {version} Standard Library, as pydoc renders it")
    current = {"module": ""}
    _running_header_and_page_numbers(
        pdf, lambda: f"Python {version} library: {current['module']}", "Helvetica"
    )
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
            latin1 = (
                line.rstrip().encode("latin-1", errors="replace").decode("latin-1")
            )  # the core fonts' range
            pdf.multi_cell(0, 3.6, latin1 or " ", new_x="LMARGIN", new_y="NEXT")
    pdf.output(str(path))
    return pdf.page_no()


def devils_dictionary(dict_dz: Path, path: Path) -> None:
    text = gzip.decompress(dict_dz.read_bytes()).decode("utf-8", errors="replace")
    start = text.index("THE DEVIL'S DICTIONARY")
    end = re.search(r"^D[A-Z'-]*, ", text, flags=re.MULTILINE).start()  # letters A-C only
    body = "\n".join(line.rstrip() for line in text[start:end].splitlines())
    header = "THE DEVIL'S DICTIONARY\nby Ambrose Bierce (1911). Public domain. Letters A to C.\n"
    path.write_text(header + body[len("THE DEVIL'S DICTIONARY") :].strip("\n") + "\n", encoding="utf-8")


def collection(path: Path) -> None:
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["title", "section", "text"])
        for book, chapters, section in SHORT_BOOKS:
            writer.writerow([book, section, book_text(book, chapters)])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--devil", type=Path, help="devil.dict.dz from the dict-devil package")
    parser.add_argument(
        "--bible",
        action="store_true",
        help="only build (or find) the whole-Bible PDF under LONGDOC_CACHE/samples and print its path",
    )
    parser.add_argument(
        "--manual",
        action="store_true",
        help="only build (or find) the 1,200-page reference manual under LONGDOC_CACHE/samples and print its path",
    )
    args = parser.parse_args()
    if args.bible or args.manual:
        print(cached_bible_pdf() if args.bible else cached_pdf(MANUAL_PDF_NAME, manual_pdf))
        return
    if args.devil is None:
        parser.error("--devil is needed to rebuild assets/samples (or use --bible)")
    OUT.mkdir(parents=True, exist_ok=True)
    esther_pdf(OUT / "book_of_esther_kjv.pdf")
    devils_dictionary(args.devil, OUT / "devils_dictionary_a_to_c.txt")
    collection(OUT / "kjv_short_books.csv")
    for p in sorted(OUT.iterdir()):
        print(f"{p.name}: {p.stat().st_size:,} bytes")


if __name__ == "__main__":
    main()
