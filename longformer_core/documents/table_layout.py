"""Tables rebuilt from where words sit on a page: the pure geometry behind `documents.tables`.

Two kinds of table reach this module:

- **ruled** tables (a grid of lines), which pdfplumber's table finder cuts into cells; `clean_grid` only
  tidies its output (pdfplumber splits a cell under a header drawn a little wider into empty neighbours);
- **unruled** tables (results tables in papers: rules above and below at most), which pypdf flattens into
  lines of numbers. `aligned_tables` rebuilds them: the words of a line are cut into chunks where the gap
  between two words is far wider than a space, the chunks of the body lines (those holding numbers) give
  the columns where their x-ranges overlap, and the lines above the body are the column headers, each
  header chunk given to the columns it spans.

Everything here works on plain word dicts (`text`, `x0`, `x1`, `top`, `bottom` in PDF points, origin top
left: what `pdfplumber.Page.extract_words` returns), so it is tested without a PDF.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable
from dataclasses import dataclass, field

Word = dict  # {"text": str, "x0": float, "x1": float, "top": float, "bottom": float}

CAPTION_LABEL = re.compile(r"^(?:Table|TABLE)\s+(?P<number>[A-Z]?\d+(?:[\-.]\d+)*)\s*[.:]?")
_NUMERIC = re.compile(r"[^\w]*[\d][\d.,]*\s*(?:%|x|×|k|K|M|B|ms|s)?[^\w]*(?:\s*±\s*[\d.,]+)?[*†‡]*")
_MISSING = frozenset({"-", "–", "—", "n/a", "N/A", "–/–"})
CHUNK_GAP = 0.65  # a gap wider than this x the line's height separates two cells (a space is ~0.3)
LINE_TOLERANCE = 2.5  # words whose tops differ by less than this (points) are on one line
MAX_LINE_GAP = 2.2  # a vertical gap over this x the line height ends a table
MIN_BODY_LINES = 2  # a rebuilt table needs at least this many body lines


@dataclass
class Chunk:
    """Words of one line close enough to be one cell."""

    text: str
    x0: float
    x1: float


@dataclass
class Line:
    """Words sharing a baseline, cut into chunks."""

    top: float
    bottom: float
    chunks: list[Chunk] = field(default_factory=list)

    @property
    def text(self) -> str:
        return " ".join(c.text for c in self.chunks)


@dataclass(frozen=True)
class RawTable:
    """A table as text only: what the page layout gives before its cells are found in the document text."""

    label: str  # "Table 8" from its caption, "" when it has none
    header: tuple[str, ...]  # column headers ("" where a column has none)
    rows: tuple[tuple[str, ...], ...]  # body rows, each as wide as the header
    groups: tuple[str, ...] = ()  # per body row: the group label printed above it ("Alerts"), "" for none
    top: float = 0.0  # vertical extent on the page (points from the top), for ordering
    bottom: float = 0.0


def is_numeric(text: str) -> bool:
    """A cell a results table holds: a number ("94.8", "4,096", "12.5%", "75.0±0.2") or a dash for none."""
    text = text.strip()
    return text in _MISSING or bool(_NUMERIC.fullmatch(text))


def page_lines(words: list[Word]) -> list[Line]:
    """Words grouped into lines (top to bottom) and each line cut into chunks at wide gaps."""
    lines: list[list[Word]] = []
    for word in sorted(words, key=lambda w: (round(w["top"], 1), w["x0"])):
        if lines and abs(word["top"] - lines[-1][0]["top"]) <= LINE_TOLERANCE:
            lines[-1].append(word)
        else:
            lines.append([word])
    out = []
    for line in lines:
        line.sort(key=lambda w: w["x0"])
        height = max(1.0, sorted(w["bottom"] - w["top"] for w in line)[len(line) // 2])
        chunks: list[Chunk] = []
        for word in line:
            if chunks and word["x0"] - chunks[-1].x1 <= CHUNK_GAP * height:
                chunks[-1].text += " " + word["text"]
                chunks[-1].x1 = word["x1"]
            else:
                chunks.append(Chunk(word["text"], word["x0"], word["x1"]))
        out.append(Line(min(w["top"] for w in line), max(w["bottom"] for w in line), chunks))
    return out


def _numeric_share(line: Line) -> float:
    cells = line.chunks[1:]
    return sum(is_numeric(c.text) for c in cells) / len(cells) if cells else 0.0


def _is_row(line: Line) -> bool:
    return len(line.chunks) >= 2


def _block(lines: list[Line], start: int, step: int) -> list[Line]:
    """Consecutive table-like lines from `start` going down (step 1) or up (step -1).

    A line of one chunk is kept only between two rows (a group label or a wrapped cell); the block ends at a
    wide vertical gap or at two lines of one chunk in a row (prose again).
    """
    block: list[Line] = []
    i = start
    while 0 <= i < len(lines):
        line = lines[i]
        if block:
            near = block[-1]
            gap = (line.top - near.bottom) if step > 0 else (near.top - line.bottom)
            if gap > MAX_LINE_GAP * max(1.0, near.bottom - near.top):
                break
        if not _is_row(line):
            following = lines[i + step] if 0 <= i + step < len(lines) else None
            if following is None or not _is_row(following) or not block:
                break
        block.append(line)
        i += step
    while block and not _is_row(block[-1]):
        block.pop()
    return block if step > 0 else block[::-1]


def _columns(body: list[Line]) -> list[tuple[float, float]]:
    """Column x-ranges: the chunks of the body lines merged where their x-ranges overlap."""
    spans = sorted((c.x0, c.x1) for line in body for c in line.chunks)
    columns: list[list[float]] = []
    for x0, x1 in spans:
        if columns and x0 <= columns[-1][1] + 0.5:
            columns[-1][1] = max(columns[-1][1], x1)
        else:
            columns.append([x0, x1])
    return [(a, b) for a, b in columns]


def _overlap(chunk: Chunk, column: tuple[float, float]) -> float:
    return min(chunk.x1, column[1]) - max(chunk.x0, column[0])


def _column_of(chunk: Chunk, columns: list[tuple[float, float]]) -> int:
    """The column a chunk belongs to: most overlap, else the nearest by centre."""
    best = max(range(len(columns)), key=lambda j: _overlap(chunk, columns[j]))
    if _overlap(chunk, columns[best]) > 0:
        return best
    centre = (chunk.x0 + chunk.x1) / 2
    return min(range(len(columns)), key=lambda j: abs((columns[j][0] + columns[j][1]) / 2 - centre))


def table_from_block(block: list[Line], label: str) -> RawTable | None:
    """A table from a block of lines: header lines above the first line holding numbers, then body rows.

    Without numbers anywhere the first line is the header. Returns None when fewer than
    `MIN_BODY_LINES` body rows or fewer than two columns come out.
    """
    first_body = next((i for i, line in enumerate(block) if _numeric_share(line) > 0), None)
    if first_body is None:
        first_body = 1
    header_lines, body = block[:first_body], block[first_body:]
    rows_only = [line for line in body if _is_row(line)]
    if len(rows_only) < MIN_BODY_LINES:
        return None
    columns = _columns(rows_only)
    if len(columns) < 2:
        return None
    header = [""] * len(columns)
    for line in header_lines:
        for chunk in line.chunks:
            hits = [j for j, col in enumerate(columns) if _overlap(chunk, col) > 0] or [
                _column_of(chunk, columns)
            ]
            for j in hits:
                header[j] = f"{header[j]} {chunk.text}".strip()
    rows: list[tuple[str, ...]] = []
    groups: list[str] = []
    group = ""
    for line in body:
        if not _is_row(line):
            group = line.text  # a label above the rows it groups
            continue
        cells = [""] * len(columns)
        for chunk in line.chunks:
            j = _column_of(chunk, columns)
            cells[j] = f"{cells[j]} {chunk.text}".strip()
        rows.append(tuple(cells))
        groups.append(group)
    return RawTable(label, tuple(header), tuple(rows), tuple(groups), block[0].top, block[-1].bottom)


def caption_lines(lines: list[Line]) -> list[tuple[int, Chunk, str]]:
    """(line index, chunk, label such as "Table 8") of each chunk that starts a table caption (a chunk, not a
    line: on a two-column page the caption shares its line with the other column's prose)."""
    found = []
    for i, line in enumerate(lines):
        for chunk in line.chunks:
            text = chunk.text if chunk is not line.chunks[0] else line.text
            match = CAPTION_LABEL.match(text)
            if match and not re.search(r"\.{4,}|(?:\. ){3,}", text):  # not a table of contents line
                found.append((i, chunk, f"Table {match.group('number')}"))
    return found


def aligned_tables(
    words: list[Word], page_width: float, exclude: list[tuple[float, float]] = ()
) -> list[RawTable]:
    """Unruled tables of one page: around each "Table N" caption (above or below it, in the caption's column
    of a two-column page), and blocks of number lines without a caption.

    Args:
        words: the page's words (pdfplumber `extract_words`).
        page_width: in points, to tell a one-column caption from a full-width one.
        exclude: (top, bottom) extents of tables already found another way (ruled), left alone here.
    Returns:
        The rebuilt tables, top to bottom.
    """
    tables: list[RawTable] = []
    taken: list[tuple[float, float]] = list(exclude)

    def free(block: list[Line]) -> bool:
        return all(block[-1].bottom < a or block[0].top > b for a, b in taken)

    all_lines = page_lines(words)
    two_columns = _two_columns(all_lines, page_width)
    for index, chunk, label in caption_lines(all_lines):
        caption = all_lines[index]
        region = _column_region(chunk, caption, page_width) if two_columns else (0.0, page_width)
        inside = [w for w in words if region[0] <= (w["x0"] + w["x1"]) / 2 <= region[1]]
        lines = page_lines(inside)
        here = next(
            (i for i, line in enumerate(lines) if abs(line.top - caption.top) <= LINE_TOLERANCE), None
        )
        if here is None:
            continue
        below_start = here + 1
        while below_start < len(lines) and below_start - here <= 3 and not _is_row(lines[below_start]):
            below_start += 1  # the caption's own continuation lines
        candidates = [_block(lines, below_start, 1), _block(lines, here - 1, -1)]
        block = max(candidates, key=len)
        table = table_from_block(block, label) if block and free(block) else None
        if table is not None:
            tables.append(table)
            taken.append((table.top, table.bottom))
    lines = all_lines
    i = 0
    while i < len(lines):  # caption-less blocks of number lines
        if _is_row(lines[i]) and _numeric_share(lines[i]) >= 0.5:
            block = _block(lines, max(0, i - 1) if i and _is_row(lines[i - 1]) else i, 1)
            numeric = sum(_numeric_share(line) >= 0.5 for line in block)
            table = table_from_block(block, "") if numeric >= 3 and free(block) else None
            if table is not None:
                tables.append(table)
                taken.append((table.top, table.bottom))
            i += max(1, len(block))
        else:
            i += 1
    return sorted(tables, key=lambda t: t.top)


def _two_columns(lines: list[Line], page_width: float) -> bool:
    """Whether a page is set in two columns: few of its lines of prose cross the middle of the page."""
    middle = page_width / 2
    prose = [line for line in lines if len(line.text.split()) >= 6]
    if len(prose) < 6:
        return False
    crossing = sum(any(c.x0 < middle - 10 and c.x1 > middle + 10 for c in line.chunks) for line in prose)
    return crossing < 0.2 * len(prose)


def _column_region(chunk: Chunk, caption: Line, page_width: float) -> tuple[float, float]:
    """The x-range a caption's table sits in: its half of a two-column page, or the whole width."""
    middle = page_width / 2
    x0 = chunk.x0
    x1 = max(c.x1 for c in caption.chunks if c.x0 >= chunk.x0 and (c.x0 < middle or chunk.x0 >= middle))
    if x1 <= middle + 0.05 * page_width:
        return 0.0, middle
    if x0 >= middle - 0.05 * page_width:
        return middle, page_width
    return 0.0, page_width


def clean_grid(rows: list[list[str | None]], clean: Callable[[str], str] = str.strip) -> list[list[str]]:
    """Tidy a ruled table from pdfplumber: each cell cleaned like page text (`clean`: hyphens at line ends)
    and flattened to one line, empty columns dropped, and neighbouring columns merged where no row fills both
    (a cell split under a wider header). Returns [] for a grid of fewer than two rows or columns."""
    grid = [[" ".join(clean(cell or "").split()) for cell in row] for row in rows]
    grid = [row for row in grid if any(row)]
    if len(grid) < 2:
        return []
    width = max(len(row) for row in grid)
    grid = [row + [""] * (width - len(row)) for row in grid]
    columns = [[row[j] for row in grid] for j in range(width) if any(row[j] for row in grid)]
    merged: list[list[str]] = []
    for column in columns:
        if merged and not any(a and b for a, b in zip(merged[-1], column)):
            merged[-1] = [a or b for a, b in zip(merged[-1], column)]
        else:
            merged.append(column)
    if len(merged) < 2:
        return []
    return [list(row) for row in zip(*merged)]


def table_from_grid(grid: list[list[str]], label: str, top: float, bottom: float) -> RawTable:
    """A ruled table's header (its first row) and body; a row with one filled cell (a cell drawn across the
    row) labels the rows below it (a group such as "Alerts")."""
    header, body = grid[0], grid[1:]
    rows: list[tuple[str, ...]] = []
    groups: list[str] = []
    group = ""
    for row in body:
        filled = [cell for cell in row if cell]
        if len(filled) == 1 and (row[0] or len(row) > 2 or len(filled[0].split()) <= 5):
            group = filled[0]  # one cell across the row (drawn merged): a label for the rows below
            continue
        rows.append(tuple(row))
        groups.append(group)
    return RawTable(label, tuple(header), tuple(rows), tuple(groups), top, bottom)


# --------------------------------------------------------------------------------------------------
# Ruled tables: a grid of rules, words placed in its cells

SNAP = 3.0  # points: rules this close count as touching, cut positions this close as one
MAX_RULES = 3000  # a page with more path lines is a drawing, not a table: left to the aligned rebuild


def _touch(h: object, v: object) -> bool:
    """Whether a horizontal and a vertical rule cross or meet (within SNAP)."""
    return (
        h.start - SNAP <= v.position <= h.end + SNAP  # type: ignore[attr-defined]
        and v.start - SNAP <= h.position <= v.end + SNAP  # type: ignore[attr-defined]
    )


def _grids(rules: list) -> list[tuple[list, list]]:
    """Groups of rules that hold together (each horizontal one touching a vertical one of its group), with at
    least two of each direction: (horizontal rules, vertical rules) per grid."""
    horizontal = [r for r in rules if r.horizontal]
    vertical = [r for r in rules if not r.horizontal]
    parent = list(range(len(horizontal) + len(vertical)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, h in enumerate(horizontal):
        for j, v in enumerate(vertical):
            if _touch(h, v):
                parent[root(i)] = root(len(horizontal) + j)
    groups: dict[int, tuple[list, list]] = {}
    for i, h in enumerate(horizontal):
        groups.setdefault(root(i), ([], []))[0].append(h)
    for j, v in enumerate(vertical):
        groups.setdefault(root(len(horizontal) + j), ([], []))[1].append(v)
    return [g for g in groups.values() if len(g[0]) >= 2 and len(g[1]) >= 2]


def _cuts(values: list[float]) -> list[float]:
    """Sorted positions with those within SNAP of the previous one merged."""
    cuts: list[float] = []
    for value in sorted(values):
        if not cuts or value - cuts[-1] > SNAP:
            cuts.append(value)
    return cuts


def _cell_text(words: list[Word]) -> str:
    """A cell's words in reading order: lines top to bottom ("\\n" between), words left to right."""
    return "\n".join(line.text for line in page_lines(words)) if words else ""


def ruled_tables(words: list[Word], rules: list, clean: Callable[[str], str] = str.strip) -> list[RawTable]:
    """Ruled tables of a page: each grid of rules (`_grids`) cut into rows and columns at its rules, each word
    put in the cell holding its centre, the grid tidied by `clean_grid` (cells split under wider headers
    merged), the first row the header. Captions: the "Table N" line nearest above or below.

    Args:
        words: the page's words.
        rules: the page's rules (`page_geometry.Rule`: horizontal, position, start, end).
        clean: cleanup for each cell's text (hyphens at line ends).
    """
    if len(rules) > MAX_RULES:
        return []
    tables = []
    for horizontal, vertical in _grids(rules):
        ys, xs = _cuts([r.position for r in horizontal]), _cuts([r.position for r in vertical])
        if len(ys) < 3 or len(xs) < 3:
            continue  # a frame or a box of text, not a table of at least two rows and two columns
        cells: list[list[list[Word]]] = [[[] for _ in xs[1:]] for _ in ys[1:]]
        for word in words:
            x, y = (word["x0"] + word["x1"]) / 2, (word["top"] + word["bottom"]) / 2
            if xs[0] < x < xs[-1] and ys[0] < y < ys[-1]:
                cells[bisect.bisect(ys, y) - 1][bisect.bisect(xs, x) - 1].append(word)
        grid = clean_grid([[_cell_text(cell) for cell in row] for row in cells], clean)
        if grid:
            label = nearest_caption(words, ys[0], ys[-1])
            tables.append(table_from_grid(grid, label, ys[0], ys[-1]))
    return tables


def nearest_caption(words: list[Word], top: float, bottom: float, reach: float = 60.0) -> str:
    """Label of the "Table N" caption line closest above or below a table's extent (within `reach` points)."""
    best, distance = "", reach
    lines = page_lines(words)
    for index, _, label in caption_lines(lines):
        line = lines[index]
        gap = top - line.bottom if line.bottom <= top + 1 else line.top - bottom
        if 0 <= gap + 1 and gap < distance:
            best, distance = label, gap
    return best
