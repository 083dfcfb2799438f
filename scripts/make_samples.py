"""Rebuild the public-domain demo samples in assets/samples/ from Debian packages (no web access needed).

    apt-get install bible-kjv        # the `bible` program and the King James text (bible-kjv-text)
    apt-get download dict-devil && dpkg-deb -x dict-devil_*.deb artifacts/devil
    .venv/bin/pip install fpdf2      # renders the PDF sample (requirements-test.txt)
    .venv/bin/python scripts/make_samples.py --devil artifacts/devil/usr/share/dictd/devil.dict.dz

Writes:
- book_of_esther_kjv.pdf: the Book of Esther (KJV, 1611), typeset as a multi-page PDF (the PDF path);
- devils_dictionary_a_to_c.txt: Ambrose Bierce's The Devil's Dictionary (1911), preface and letters A-C;
- kjv_short_books.csv: twenty short books of the KJV Bible, one per row (title, section, text), a sample
  collection for the Collection page.
Sources and licences: assets/samples/README.md.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import re
import subprocess
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "assets" / "samples"

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
    parser.add_argument("--devil", type=Path, required=True, help="devil.dict.dz from the dict-devil package")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    esther_pdf(OUT / "book_of_esther_kjv.pdf")
    devils_dictionary(args.devil, OUT / "devils_dictionary_a_to_c.txt")
    collection(OUT / "kjv_short_books.csv")
    for p in sorted(OUT.iterdir()):
        print(f"{p.name}: {p.stat().st_size:,} bytes")


if __name__ == "__main__":
    main()
