"""Passages: the units of a document a person would point at, which retrieval ranks and answers come from.

Regex sentences break on real PDFs: a glossary entry, an acronym list, a table row or a bulleted item is not
a sentence, and the running header ("COMPUTER SECURITY INCIDENT HANDLING GUIDE", a page number) repeats
on every page. `passages(document)` splits a PDF by its layout:

- running headers and footers (the same line, digits aside, at the top or bottom of most pages) are left
  out of every passage, and `Passages.excluded` lists them so no answer comes from them;
- a glossary entry ("Term: definition ...", "Term - definition ...") or an acronym entry ("MSSP Managed Security Services Provider")
  is one passage, the definition's continuation lines included;
- a bulleted or numbered item is one passage, with its continuation lines;
- a table or figure caption ("Table 3-1. Common Sources of ...") is a passage of its own;
- a table the PDF reader rebuilt (`Document.tables`, see `documents.tables`) gives one passage per cell
  (kind "cell"): its span is the cell's own span of `Document.text`, and its text to rank
  (`Passages.texts`) carries the caption and the row and column headers ("Table 8: Results / Longformer-base /
  Hyperpartisan: 94.8"); the lines the cells cover are in no other passage. A table that was not rebuilt
  keeps one passage per line after its caption (a row; a line starting in lower case continues the row);
- a short heading line (a numbered section title, "Appendix C—Glossary") is attached to the passage that
  follows it, so the words of the heading count for what it introduces;
- the remaining prose is split into sentences (`documents.sentence_spans`).

Plain text and Markdown keep sentence units. Every passage is a character span of `Document.text`; only a
cell's text to rank differs from its span's text.
"""

from __future__ import annotations

import functools
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from longformer_core.documents import Document, sentence_spans

MAX_PASSAGE_CHARS = 1200  # longer units (a table flattened into one block) are split into sentences
_EDGE_LINES = 3  # lines at the top and bottom of a page that may be a running header or footer
_RUNNING_SHARE = 0.5  # a line (digits aside) on this share of pages, at an edge, is a running header/footer
_BULLET = re.compile(r"^(?:[-*•◦▪‣●■□➢–\ue000-\uf8ff]|\(?\d{1,3}[.)]|\(?[a-z][.)])\s")
_GLOSSARY = re.compile(
    r"^(?P<term>[A-Z][\w®'’/&.,()\- ]{0,70}?)(?::|\s[-–—])\s+\S"
)  # "Term: ..." or "Term - ..."
_SMALL_WORDS = frozenset(
    {"of", "and", "for", "the", "in", "on", "to", "a", "an", "de", "du", "la", "&", "or", "at"}
)
_HEADING_NUMBER = re.compile(
    r"^(?:\d+(?:\.\d+)*\.?|[A-Z]\.\d+(?:\.\d+)*|Appendix [A-Z]|Chapter \d+|Section \d+)\s"
)
_CAPTION = re.compile(r"^(?:Table|Figure|Fig\.|Exhibit)\s+[A-Z]?\d+(?:[\-.]\d+)*(?P<mark>[.:]\s)?")
_TERMINATORS = (".", "!", "?", ":", ";", ",")
# The dot leader of a contents line: "Table 3-1. Common Sources .......... 27".
_LEADER = re.compile(r"\s*(?:\.{4,}|(?:\. ){4,}|…{2,})")


@dataclass(frozen=True)
class Passages:
    """A document's passages and the running headers/footers left out of them."""

    spans: list[tuple[int, int]]  # (start, end) char spans into Document.text, in order, non-overlapping
    kinds: list[str]  # per passage: "sentence" | "entry" | "item" | "caption" | "row" | "line" | "cell"
    excluded: list[tuple[int, int]]  # running header/footer lines: never part of an answer
    texts: list[str] = field(default_factory=list)  # per passage: text to rank (a cell's carries its headers)
    cells: dict[int, tuple[int, int, int]] = field(
        default_factory=dict
    )  # cell passage -> (table, row, column)

    def __len__(self) -> int:
        return len(self.spans)

    @functools.cached_property
    def _starts(self) -> np.ndarray:
        return np.array([a for a, _ in self.spans], dtype=np.int64)

    def index_of(self, char: int) -> int:
        """Index of the passage holding a character (the nearest one before it when it falls between two)."""
        return max(0, int(np.searchsorted(self._starts, char, side="right")) - 1)

    @functools.cached_property
    def _excluded_ends(self) -> np.ndarray:
        return np.array([b for _, b in self.excluded], dtype=np.int64)

    def touches_excluded(self, span: tuple[int, int]) -> bool:
        """Whether a char span overlaps a running header/footer line (`excluded` is in order and disjoint: a
        binary search, not a scan, since a book has thousands of them)."""
        a, b = span
        first = int(np.searchsorted(self._excluded_ends, a, side="right"))  # the first line ending after a
        return first < len(self.excluded) and self.excluded[first][0] < b

    def holding(self, char: int) -> int:
        """Index of the passage holding a character; between two passages, the one before it unless that is a
        table cell (a header between cells belongs to none of them): then -1."""
        index = self.index_of(char)
        if not self.spans:
            return -1
        a, b = self.spans[index]
        if a <= char < b or self.kinds[index] != "cell":
            return index
        return -1


def passages(document: Document, pause: Callable[[], object] | None = None) -> Passages:
    """Split a document into passages (see the module docstring): layout-aware for PDFs, sentences otherwise.

    pause: called before each page of a PDF (a background reading pauses there while someone's question runs:
        a book's 1,000+ pages take ~0.5 s of plain Python).
    """
    if document.kind != "pdf":
        spans = sentence_spans(document.text)
        return Passages(spans, ["sentence"] * len(spans), [], [document.text[a:b] for a, b in spans])
    text = document.text
    page_lines = [_lines(text, page.start, page.end) for page in document.pages]
    running = _running_lines(text, page_lines)
    spans: list[tuple[int, int]] = []
    kinds: list[str] = []
    excluded: list[tuple[int, int]] = []
    cells: dict[int, tuple[int, int, int]] = {}
    texts: list[str] = []
    page_cells = _cells_by_page(document)
    for number, lines in enumerate(page_lines, start=1):
        if pause is not None:
            pause()
        kept = []
        for i, (a, b) in enumerate(lines):
            edge = i < _EDGE_LINES or i >= len(lines) - _EDGE_LINES
            if edge and _line_key(text[a:b]) in running:
                excluded.append((a, b))
            else:
                kept.append((a, b))
        table_cells = page_cells.get(number, [])
        segments, units = _take_table_lines(kept, table_cells, text)
        captions = {t.caption_span[0] for t in document.tables if t.page == number and t.caption_span}
        for segment in segments:  # prose never runs across a table
            units += [(span, kind, None) for span, kind in _page_units(text, segment, captions)]
        for span, kind, cell in _without_overlaps(sorted(units, key=lambda u: u[0])):
            if cell is not None:
                cells[len(spans)] = cell
                table, row, column = cell
                texts.append(document.tables[table].cell_text(row, column))
            else:
                texts.append(text[span[0] : span[1]])
            spans.append(span)
            kinds.append(kind)
    return Passages(spans, kinds, excluded, texts, cells)


Cell = tuple[int, int, int]  # (index in Document.tables, row, column)


def _cells_by_page(document: Document) -> dict[int, list[tuple[tuple[int, int], Cell]]]:
    """Every located table cell of the document as (span, (table, row, column)), by page number."""
    found: dict[int, list[tuple[tuple[int, int], Cell]]] = {}
    for t, table in enumerate(document.tables):
        for row, column, span in table.cells():
            found.setdefault(table.page, []).append((span, (t, row, column)))
    return found


def _take_table_lines(
    lines: list[tuple[int, int]], cells: list[tuple[tuple[int, int], Cell]], text: str
) -> tuple[list[list[tuple[int, int]]], list[tuple[tuple[int, int], str, Cell | None]]]:
    """Split a page's lines into runs of lines left for prose (cut where a table was) and the cell passages.

    A line at least half covered by cells is a table line; the cells lying within table lines become
    passages, and a cell found elsewhere (its words also occur in the prose) is dropped.
    """
    if not cells:
        return [lines], []
    taken: list[tuple[int, int]] = []
    segments: list[list[tuple[int, int]]] = [[]]
    for a, b in lines:
        covered = sum(
            sum(not ch.isspace() for ch in text[max(a, x) : min(b, y)])
            for (x, y), _ in cells
            if x < b and a < y
        )
        letters = sum(not ch.isspace() for ch in text[a:b])
        if covered >= 0.5 * letters:
            taken.append((a, b))
            if segments[-1]:
                segments.append([])
        else:
            segments[-1].append((a, b))

    def inside(char: int) -> bool:
        return any(a <= char <= b for a, b in taken)

    units: list[tuple[tuple[int, int], str, Cell | None]] = [
        (span, "cell", cell) for span, cell in cells if inside(span[0]) and inside(span[1] - 1)
    ]
    return [segment for segment in segments if segment], units


def _without_overlaps(units: list[tuple[tuple[int, int], str, Cell | None]]) -> list:
    """Units in order with any that overlaps the one before it dropped (a cell found inside prose)."""
    out: list = []
    for unit in units:
        if out and unit[0][0] < out[-1][0][1]:
            if unit[2] is not None or out[-1][2] is None:
                continue  # keep the earlier unit; a cell never displaces prose
            out.pop()
        out.append(unit)
    return out


def _lines(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """Non-blank lines of text[start:end] as stripped (start, end) spans."""
    out = []
    position = start
    for line in text[start:end].split("\n"):
        a, b = position, position + len(line)
        position = b + 1
        while a < b and text[a].isspace():
            a += 1
        while b > a and text[b - 1].isspace():
            b -= 1
        if b > a:
            out.append((a, b))
    return out


def _line_key(line: str) -> str:
    """A line with digits and roman page numbers folded, so "Guide 11" and "Guide 12" count as one."""
    key = re.sub(r"\d+", "#", line.strip().lower())
    return "#" if re.fullmatch(r"[ivxlc]+", key) else key


def _running_lines(text: str, page_lines: list[list[tuple[int, int]]]) -> set[str]:
    """Line keys found at the top or bottom of at least half of the pages (and of 3): headers and footers."""
    pages_with_text = sum(1 for lines in page_lines if lines)
    if pages_with_text < 3:
        return set()
    counts: Counter[str] = Counter()
    for lines in page_lines:
        edges = lines[:_EDGE_LINES] + lines[-_EDGE_LINES:]
        counts.update({_line_key(text[a:b]) for a, b in edges})
    need = max(3, _RUNNING_SHARE * pages_with_text)
    return {key for key, n in counts.items() if n >= need}


def _line_kind(line: str, typical: float) -> str:
    """ "item", "entry" (glossary/acronym), "heading", or "text" for one stripped line."""
    if _BULLET.match(line):
        return "item"
    glossary = _GLOSSARY.match(line)
    dash = glossary is not None and line[glossary.end("term")] != ":"
    if dash and _HEADING_NUMBER.match(line):
        glossary = None  # "Appendix A - Glossary" is a heading
    if glossary and len(glossary.group("term").split()) <= (
        4 if dash else 8
    ):  # "The results - as ..." is prose
        return "entry"
    if _is_acronym_entry(line):
        return "entry"
    # A short line is a heading unless it starts in lower case ("the user": the wrapped end of the line above).
    short = len(line) < 0.6 * typical and len(line.split()) <= 12 and not line[0].islower()
    if _CAPTION.match(line) or (short and (_HEADING_NUMBER.match(line) or not line.endswith(_TERMINATORS))):
        return "heading"
    return "text"


def _is_caption(line: str, typical: float) -> bool:
    """ "Table 3-1. Common Sources of ...": a numbered caption (not prose that starts "Table 3-3 provides ...").
    A list of tables' line "Table 3-1. Common Sources of ...... 27" is one too (its passage stops at the leader)."""
    match = _CAPTION.match(line)
    return bool(match) and (
        match.group("mark") is not None or (len(line) < 0.7 * typical and line[-1] != ".")
    )


def _is_acronym_entry(line: str) -> bool:
    """ "MSSP Managed Security Services Provider": a short upper-case term, then a title-case expansion."""
    words = line.split()
    if not 2 <= len(words) <= 14 or line.endswith("."):
        return False
    term = words[0]
    if len(term) > 12 or sum(c.isupper() for c in term) < 2 or not term[0].isalnum():
        return False
    rest = [w for w in words[1:] if w.lower() not in _SMALL_WORDS]
    return bool(rest) and sum(w[0].isupper() for w in rest) >= 0.8 * len(rest)


def _page_units(
    text: str, lines: list[tuple[int, int]], rebuilt_captions: set[int] = frozenset()
) -> list[tuple[tuple[int, int], str]]:
    """Group one page's kept lines into passages (the lines after a table caption are rows, unless the
    table was rebuilt: `rebuilt_captions` holds the start of such captions)."""
    if not lines:
        return []
    lengths = sorted(b - a for a, b in lines)
    typical = float(lengths[(3 * (len(lengths) - 1)) // 4])
    blocks: list[list] = []  # [start, end, kind, heading_start | None]
    heading_start: int | None = None
    in_table = False  # after a table caption each line is a row, until the next heading
    for a, b in lines:
        kind = _line_kind(text[a:b], typical)
        if _is_caption(text[a:b], typical):
            leader = _LEADER.search(text, a, b)  # a contents line: the caption without "...... 27"
            in_table = text[a:b].startswith("Table") and a not in rebuilt_captions and not leader
            blocks.append([a, leader.start() if leader else b, "caption", None])
            heading_start = None
            continue
        if kind == "heading" and not in_table:
            heading_start = a if heading_start is None else heading_start
            continue
        if in_table:
            if kind == "heading" and _HEADING_NUMBER.match(text[a:b]):
                in_table, heading_start = False, a
            elif text[a].islower() and blocks:
                blocks[-1][1] = b  # a wrapped cell continues its row
            else:
                blocks.append([a, b, "row", None])
            continue
        if (
            heading_start is not None
            or not blocks
            or kind != "text"
            or _ends_entry(text, blocks[-1], a, typical)
        ):
            blocks.append([a, b, kind, heading_start])
            heading_start = None
        else:
            blocks[-1][1] = b  # a continuation line
    if heading_start is not None:  # a heading closing the page stands alone
        blocks.append([heading_start, lines[-1][1], "line", None])
    units: list[tuple[tuple[int, int], str]] = []
    for start, end, kind, head in blocks:
        if kind in ("item", "entry", "caption", "row", "line") and end - start <= MAX_PASSAGE_CHARS:
            units.append(((head if head is not None else start, end), kind))
            continue
        sentences = sentence_spans(text, start, end) or [(start, end)]
        if head is not None:  # the heading introduces the first sentence of its block
            sentences[0] = (head, sentences[0][1])
        units += [(s, "sentence") for s in sentences]
    return units


def _ends_entry(text: str, block: list, next_line_start: int, typical: float) -> bool:
    """True when an item/entry block is finished and a prose line starts a new block after it: the block ends a
    sentence, or its last line stops well short of the page's typical line (an item without a full stop, such as
    "• Something you know", is not wrapped onto a line that starts with a capital)."""
    if block[2] in ("caption", "row", "line"):
        return True
    if block[2] == "text" or not text[next_line_start].isupper():
        return False
    last_line = block[1] - max(block[0], text.rfind("\n", block[0], block[1]) + 1)
    return text[block[1] - 1] in ".!?" or last_line < 0.75 * typical
