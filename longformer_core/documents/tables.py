"""Tables in PDFs as cells with their row and column headers, each cell a span of `Document.text`.

pypdf flattens a table into lines ("Longformer-base 94.8 75.0"), which no reader can answer "What does
Longformer-base score on Hyperpartisan?" from. So the PDF worker, for each page whose text looks like it
holds a table (`might_hold_table`: a "Table N." caption, or three lines of numbers), asks PDFium where the
page's words and rules are (`page_geometry`) and rebuilds its tables (`table_layout`): ruled grids cut at
their rules, and unruled tables (results tables in papers) from how their words line up. Pages without that
sign are never looked at twice.

Why PDFium and our own layout code rather than pdfplumber's table finder: on the shared NIST guide both find
the same tables and cells, but pdfplumber parses a page in pure Python, ~15x slower than PDFium gives the
same words and rules, which alone made reading the guide ~1.35x slower (the target is at most 1.2x);
`bench/tables.py --compare` measures both on any PDF.

**Offsets.** `Document.text` stays the single source of character offsets. Each body cell is searched in
its page's text (letters and digits only, NFKC, case-folded, so spacing, hyphenation and line breaks do not
matter), row by row from left to right, each search starting where the previous cell ended; a cell found
gets `span` = where its text is in `Document.text`, a cell not found gets None (it is then no passage, so
nothing can point at text that is not there). A cell's passage text for retrieval (`Table.cell_text`)
carries its caption and headers, "Table 8: Results / Longformer-base / Hyperpartisan: 94.8"; its span stays
the cell's own span, so highlights and page numbers work unchanged.

**Limits.** Tables never make a readable PDF unreadable: a page whose drawing data is over
`MAX_TABLE_PAGE_BYTES` is skipped, a page PDFium or the layout code fails on is logged and skipped, and once a document has
spent `TABLE_TIME_BUDGET_S` on tables the remaining pages are read as text only. All of it runs inside the
PDF worker under its time and memory limits (`documents.pdf_worker`).
"""

from __future__ import annotations

import bisect
import logging
import re
import time
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, replace

from longformer_core.documents.page_geometry import page_rules, page_words
from longformer_core.documents.table_layout import (
    CAPTION_LABEL,
    RawTable,
    aligned_tables,
    is_numeric,
    ruled_tables,
)

logger = logging.getLogger(__name__)

MAX_TABLE_PAGE_BYTES = 2_000_000  # decoded drawing data; a page of text is ~10-50 kB, a flood is megabytes
TABLE_TIME_BUDGET_S = 15.0  # per document; past it pages are read as text only (a 1,000-page report)
MAX_CAPTION_CHARS = 120  # of the caption carried in each cell's passage text
_TOC_LEADER = re.compile(r"\.{4,}|(?:\. ){3,}")
_CAPTION_LINE = re.compile(r"^(?:Table|TABLE)\s+[A-Z]?\d+(?:[\-.]\d+)*\s*[.:]\s")


@dataclass(frozen=True)
class Table:
    """One table of a PDF page: headers and body cells, each body cell a span of `Document.text`."""

    page: int  # 1-based page number
    label: str  # "Table 3-2" from its caption; "" when it has none
    caption: str  # its caption line as printed ("Table 3-2. Functional Impact Categories"), or ""
    caption_span: tuple[int, int] | None  # where that line is in Document.text
    header: tuple[str, ...]  # column headers, "" where a column has none
    rows: tuple[tuple[str, ...], ...]  # body cells' text, row by row, as wide as the header
    row_labels: tuple[str, ...]  # per body row: its first cell, after its group label ("Alerts / IDPSs")
    spans: tuple[tuple[tuple[int, int] | None, ...], ...]  # per body cell: span in Document.text, or None

    def shifted(self, offset: int) -> Table:
        """The same table with every span moved by `offset` (page text -> document text)."""

        def move(span: tuple[int, int] | None) -> tuple[int, int] | None:
            return None if span is None else (span[0] + offset, span[1] + offset)

        return replace(
            self,
            caption_span=move(self.caption_span),
            spans=tuple(tuple(move(s) for s in row) for row in self.spans),
        )

    def cell_text(self, row: int, column: int) -> str:
        """A body cell with its caption and headers, as a passage to rank: "Table 8: Results / Longformer-base
        / Hyperpartisan: 94.8" (parts that are empty are left out)."""
        caption = self.caption or self.label
        if len(caption) > MAX_CAPTION_CHARS:
            caption = caption[:MAX_CAPTION_CHARS].rsplit(" ", 1)[0] + "..."
        parts = [p for p in (caption, self.row_labels[row] if column else "", self.header[column]) if p]
        return " / ".join(parts) + ": " + self.rows[row][column]

    def cells(self) -> list[tuple[int, int, tuple[int, int]]]:
        """(row, column, span) of every body cell found in the text, in text order."""
        found = [
            (i, j, span) for i, row in enumerate(self.spans) for j, span in enumerate(row) if span is not None
        ]
        return sorted(found, key=lambda c: c[2])

    def cell_at(self, span: tuple[int, int]) -> tuple[int, int] | None:
        """(row, column) of the body cell whose span is `span`, else None."""
        for i, row in enumerate(self.spans):
            for j, cell in enumerate(row):
                if cell == tuple(span):
                    return i, j
        return None


def might_hold_table(page_text: str) -> bool:
    """Whether a page's extracted text shows a table: a caption line ("Table 3-1. ...", not a table of
    contents entry) or three lines in a row that are mostly numbers."""
    run = 0
    for line in page_text.split("\n"):
        line = line.strip()
        if _CAPTION_LINE.match(line) and not _TOC_LEADER.search(line):
            return True
        tokens = line.split()
        numbers = sum(is_numeric(t) for t in tokens[1:])
        run = run + 1 if len(tokens) >= 3 and numbers >= max(2, 0.5 * (len(tokens) - 1)) else 0
        if run >= 3:
            return True
    return False


def _normalised(text: str) -> tuple[str, list[int]]:
    """Letters and digits of `text` (NFKC, case-folded) and the offset in `text` each came from."""
    out: list[str] = []
    where: list[int] = []
    for i, ch in enumerate(text):
        for c in unicodedata.normalize("NFKC", ch).casefold():
            if c.isalnum():
                out.append(c)
                where.append(i)
    return "".join(out), where


class _PageIndex:
    """A page's text prepared for finding cells in it."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.norm, self.where = _normalised(text)

    def find(self, cell: str, cursor: int) -> tuple[int, int] | None:
        """Span in the page text of the first occurrence of `cell` at or after normalised position `cursor`."""
        needle, _ = _normalised(cell)
        if not needle:
            return None
        at = self.norm.find(needle, cursor)
        if at < 0:
            return None
        return self.where[at], self.where[at + len(needle) - 1] + 1

    def norm_position(self, char: int) -> int:
        """Normalised position of the first letter or digit at or after page-text offset `char`."""
        return bisect.bisect_left(self.where, char)


def locate(raw: RawTable, page_text: str, page: int) -> Table | None:
    """Find a rebuilt table's body cells in its page's text (see the module docstring).

    Args:
        raw: the table as text (from `table_layout`).
        page_text: the page's text as it is in `Document.text`.
        page: 1-based page number.
    Returns:
        The Table with page-relative spans (None when not one body cell was found).
    """
    index = _PageIndex(page_text)
    caption, caption_span = _caption(raw.label, page_text)
    near = index.norm_position(caption_span[0]) if caption_span else 0
    cursor = _anchor(index, [h for h in raw.header if h], near)
    if cursor is None:
        cursor = _anchor(index, [c for c in raw.rows[0] if c], near)
    if cursor is None:
        cursor = near
    spans: list[tuple[tuple[int, int] | None, ...]] = []
    for row in raw.rows:
        row_spans: list[tuple[int, int] | None] = []
        row_start = cursor
        for cell in row:
            found = index.find(cell, cursor) if cell else None
            if found is None and cell:
                found = index.find(cell, row_start)  # pypdf ordered this row differently
            if found is not None:
                cursor = max(cursor, index.norm_position(found[1]))
            row_spans.append(found)
        spans.append(tuple(row_spans))
    if not any(s is not None for row in spans for s in row[1:]):
        return None
    labels = tuple(
        " / ".join(p for p in (group, row[0]) if p)
        for group, row in zip(raw.groups or [""] * len(raw.rows), raw.rows)
    )
    return Table(page, raw.label, caption, caption_span, raw.header, raw.rows, labels, tuple(spans))


def _anchor(index: _PageIndex, cells: list[str], near: int, reach: int = 40) -> int | None:
    """Normalised position where a row of cells is printed: a place where each cell follows the one before
    within `reach` letters ("Category ... Definition"), so a short header word in the prose is not taken for
    it; of several such places (three tables with one header on a page), the one nearest `near` (its
    caption). None when the row is not there (or has fewer than two cells)."""
    needles = [n for n in (_normalised(c)[0] for c in cells) if n]
    if len(needles) < 2:
        return None
    found: list[int] = []
    at = index.norm.find(needles[0])
    while at >= 0:
        end = at + len(needles[0])
        for needle in needles[1:]:
            nxt = index.norm.find(needle, end)
            if nxt < 0 or nxt - end > reach:
                break
            end = nxt + len(needle)
        else:
            found.append(at)
        at = index.norm.find(needles[0], at + 1)
    return min(found, key=lambda position: abs(position - near)) if found else None


def _caption(label: str, page_text: str) -> tuple[str, tuple[int, int] | None]:
    """The caption line of table `label` in the page text and its span (("", None) when not there)."""
    if not label:
        return "", None
    pattern = re.compile(r"^" + re.escape(label).replace(r"\ ", r"\s+") + r"\b.*$", re.MULTILINE)
    matches = [m for m in pattern.finditer(page_text) if not _TOC_LEADER.search(m.group())]
    if not matches:
        return label, None
    best = next(
        (m for m in matches if CAPTION_LABEL.match(m.group()) and re.match(r"^\S+\s+\S+\s*[.:]", m.group())),
        matches[0],
    )
    return " ".join(best.group().split()), (best.start(), best.end())


class TableReader:
    """Reads the tables of one PDF's pages with PDFium (`page_geometry`), opened on the first page that needs it.

    Args:
        data: the PDF's bytes.
        password: for an encrypted PDF.
        clean: the cleanup page text gets (`pdf.clean_pdf_page_text`), applied to each ruled cell too.
        budget_s: seconds this document may spend on tables in all; later pages are skipped.
    """

    def __init__(
        self,
        data: bytes,
        password: str | None = None,
        clean: Callable[[str], str] = str.strip,
        budget_s: float = TABLE_TIME_BUDGET_S,
    ) -> None:
        self._data = data
        self._clean = clean
        self._password = password
        self._budget_s = budget_s
        self._spent = 0.0
        self._pdf = None
        self._failed = False

    def page_tables(self, index: int, page_text: str, content_bytes: int = 0) -> list[Table]:
        """The tables of page `index` (0-based) with spans relative to `page_text`; [] for a page that shows
        no table, is too large, or past the document's budget. Never raises for a table problem."""
        if (
            self._failed
            or self._spent >= self._budget_s
            or content_bytes > MAX_TABLE_PAGE_BYTES
            or not might_hold_table(page_text)
        ):
            return []
        started = time.perf_counter()
        try:
            return self._read(index, page_text)
        except MemoryError:
            raise
        except Exception:  # a table is a bonus: a page PDFium cannot parse keeps its text
            logger.info("Tables of page %d skipped", index + 1, exc_info=True)
            return []
        finally:
            self._spent += time.perf_counter() - started
            if self._spent >= self._budget_s:
                logger.info(
                    "Table budget of %.0f s spent by page %d; later pages: text only",
                    self._budget_s,
                    index + 1,
                )

    def _open(self) -> object:
        if self._pdf is None:
            import pypdfium2 as pdfium

            try:
                self._pdf = pdfium.PdfDocument(self._data, password=self._password or None)
            except Exception:
                self._failed = True
                raise
        return self._pdf

    def _read(self, index: int, page_text: str) -> list[Table]:
        page = self._open()[index]  # type: ignore[index]
        textpage = page.get_textpage()
        try:
            words = page_words(page, textpage)
            raw = ruled_tables(words, page_rules(page), self._clean)
            raw += aligned_tables(words, float(page.get_width()), [(t.top, t.bottom) for t in raw])
        finally:  # a long document keeps one page open at a time
            textpage.close()
            page.close()
        tables = [locate(t, page_text, index + 1) for t in sorted(raw, key=lambda t: t.top)]
        return [t for t in tables if t is not None]
