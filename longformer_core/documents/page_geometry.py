"""Where a PDF page's words and rules are, from PDFium (pypdfium2): the input `table_layout` rebuilds tables from.

PDFium is C: a page's characters with their boxes and its path objects come back in a few milliseconds,
about 15x faster than pdfplumber's pure-Python parse of the same page (bench/tables.py --compare prints both
on the same pages), which is what keeps reading a PDF with tables under 1.2x the time without them.

- **words**: characters joined while they sit on one baseline and the gap to the next is under a quarter of
  the font height; spaces, line breaks and PDFium's generated characters end a word. Boxes are PDFium's
  loose boxes (the font's ascent and descent), so a line's words share a top and bottom.
- **rules**: path objects drawn as thin lines or thin rectangles, and the four edges of stroked or filled
  rectangles (a ruled table's cells); other shapes (a figure's curves) are left out.

Coordinates are PDF points with the origin at the top left of the page (y grows downwards).
"""

from __future__ import annotations

from dataclasses import dataclass

_WORD_GAP = 0.25  # a gap wider than this x the font height between two characters ends a word
_LINE_SHIFT = 2.0  # points: a character whose top moves more than this starts a new word (a new line)
_THIN = 2.0  # points: a path this thin in one direction is a rule
_MIN_RULE = 5.0  # points: shorter lines are no rules (bullets, underscores of one letter)
_SOFT_HYPHEN = "\x02"  # PDFium's mark for a hyphen at a line end


@dataclass(frozen=True)
class Rule:
    """A horizontal or vertical line on the page."""

    horizontal: bool
    position: float  # y of a horizontal rule, x of a vertical one
    start: float  # x0 (horizontal) or top (vertical)
    end: float  # x1 or bottom


def page_words(page: object, textpage: object) -> list[dict]:
    """The words of a PDFium page as dicts: text, x0, x1, top, bottom (points, origin top left).

    Args:
        page: a `pypdfium2.PdfPage`.
        textpage: its `PdfTextPage`.
    """
    from pypdfium2 import raw

    height = page.get_height()  # type: ignore[attr-defined]
    words: list[dict] = []
    current: dict | None = None
    for index in range(textpage.count_chars()):  # type: ignore[attr-defined]
        code = raw.FPDFText_GetUnicode(textpage.raw, index)  # type: ignore[attr-defined]
        char = "-" if chr(code) == _SOFT_HYPHEN else chr(code) if code else ""
        if (
            not char
            or char.isspace()
            or not char.isprintable()
            or raw.FPDFText_IsGenerated(textpage.raw, index) == 1
        ):  # type: ignore[attr-defined]
            current = None
            continue
        left, bottom, right, top = textpage.get_charbox(index, loose=True)  # type: ignore[attr-defined]
        y_top, y_bottom = height - top, height - bottom
        if (
            current is not None
            and abs(y_top - current["top"]) <= _LINE_SHIFT
            and -0.5
            <= (left - current["x1"]) / max(1.0, y_bottom - y_top)
            <= _WORD_GAP  # kerning may overlap
        ):
            current["text"] += char
            current["x1"] = max(current["x1"], right)
            continue
        current = {"text": char, "x0": left, "x1": right, "top": y_top, "bottom": y_bottom}
        words.append(current)
    return words


def page_rules(page: object) -> list[Rule]:
    """The rules of a PDFium page: thin path objects, and the edges of rectangles (see the module docstring)."""
    from pypdfium2 import raw

    height = page.get_height()  # type: ignore[attr-defined]
    rules: list[Rule] = []
    for obj in page.get_objects(filter=(raw.FPDF_PAGEOBJ_PATH,), max_depth=0):  # type: ignore[attr-defined]
        left, bottom, right, top = obj.get_bounds()
        y0, y1 = height - top, height - bottom
        width, tall = right - left, y1 - y0
        if tall <= _THIN and width >= _MIN_RULE:
            rules.append(Rule(True, (y0 + y1) / 2, left, right))
        elif width <= _THIN and tall >= _MIN_RULE:
            rules.append(Rule(False, (left + right) / 2, y0, y1))
        elif width >= _MIN_RULE and tall >= _MIN_RULE and raw.FPDFPath_CountSegments(obj.raw) <= 5:
            rules += [  # a rectangle: its four edges
                Rule(True, y0, left, right),
                Rule(True, y1, left, right),
                Rule(False, left, y0, y1),
                Rule(False, right, y0, y1),
            ]
    return rules
