"""Regex sentence and paragraph splitting (no nltk): `sentence_spans`, `paragraph_spans`."""

from __future__ import annotations

import logging
import re

logger = logging.getLogger(__name__)

# --------------------------------------------------------------------------------------------------
# Sentences and paragraphs

# Abbreviations that (almost) never end a sentence; lowercase, without the final period.
# Left out on purpose because they often do end one: etc, inc, ltd, co, jr, sr.
_ABBREVIATIONS = frozenset(
    [
        "mr",
        "mrs",
        "ms",
        "mx",
        "dr",
        "prof",
        "st",
        "mt",
        "rev",
        "hon",
        "gen",
        "col",
        "capt",
        "lt",
        "sgt",
        "gov",
        "sen",
        "rep",
        "pres",
        "e.g",
        "i.e",
        "cf",
        "vs",
        "viz",
        "al",
        "approx",
        "ca",
        "resp",
        "fig",
        "figs",
        "eq",
        "eqs",
        "no",
        "nos",
        "vol",
        "vols",
        "pp",
        "sec",
        "ch",
        "ref",
        "refs",
        "art",
        "para",
        "jan",
        "feb",
        "mar",
        "apr",
        "jun",
        "jul",
        "aug",
        "sep",
        "sept",
        "oct",
        "nov",
        "dec",
    ]
)
# A terminator, closing quotes/brackets, whitespace, then what may open the next sentence.
_SENTENCE_END = re.compile(r"[.!?…]+[\"'”’»)\]]*(\s+)(?=[\"'“‘«(\[]?\w)")
_CJK_SENTENCE_END = re.compile(r"[。！？]+[」』”’）]*")
_BLANK_LINES = re.compile(r"\n[^\S\n]*\n\s*")
# Bullets, including the private-use symbol-font glyphs PDFs extract (NIST's checkmark is U+F03C).
_BULLET_START = re.compile(r"[^\S\n]*(?:[-*•◦▪‣●■□➢\ue000-\uf8ff]|\d{1,3}[.)]|\(?[a-z][.)])\s")
_OPENERS = "\"'“‘«(["
_DOTTED_ACRONYM = re.compile(r"(?:[^\W\d_]\.)+[^\W\d_]")  # letters only: "3.2." may end one
_SHORT_LINE_RATIO = 0.6  # sentence_spans: a line this much shorter than typical ends a unit
_PARAGRAPH_LINE_RATIO = 0.8  # paragraph_spans: "clearly shorter" than typical


def _is_sentence_boundary(text: str, match: re.Match[str], region_start: int) -> bool:
    """Decide whether a `_SENTENCE_END` match really ends a sentence."""
    after = match.end()
    while after < len(text) and text[after] in _OPENERS:
        after += 1
    if after >= len(text):
        return False
    if text[after].islower():
        return False  # "e.g. the", "3 p.m. yesterday"; caseless scripts (CJK, Arabic) may split
    if text[match.start()] != ".":
        return True  # ! ? … always end one
    if match.group().startswith("..."):
        return True
    # The word in front of the period, e.g. "(e.g", "J", "U.S", "Fig".
    word_start = match.start()
    while word_start > region_start and not text[word_start - 1].isspace():
        word_start -= 1
    word = text[word_start : match.start()].lstrip(_OPENERS).lower()
    if not word:
        return True
    if word in _ABBREVIATIONS:
        return False
    if len(word) == 1 and word.isalpha():
        return False  # an initial: "J. Smith"
    if word[0].isdigit() and (word_start == region_start or text[word_start - 1] == "\n"):
        return False  # a list number or section number opening a line: "4. If the team ..."
    # "U.S.", "e.g.", "Ph.D." followed by a capitalised name do not end one.
    return not _DOTTED_ACRONYM.fullmatch(word)


def _typical_line_length(lengths: list[int]) -> float:
    """75th percentile of non-empty line lengths: the width of a full line in wrapped text."""
    nonzero = sorted(length for length in lengths if length > 0)
    if not nonzero:
        return 0.0
    return float(nonzero[(3 * (len(nonzero) - 1)) // 4])


def _lines(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """(start, end) of each line in text[start:end], ends excluding the newline."""
    lines = []
    position = start
    while position <= end:
        newline = text.find("\n", position, end)
        if newline < 0:
            lines.append((position, end))
            break
        lines.append((position, newline))
        position = newline + 1
    return lines


def _stripped_spans(text: str, cuts: list[int], start: int, end: int) -> list[tuple[int, int]]:
    """Cut [start, end) at the sorted positions `cuts`; strip each piece, drop empty ones."""
    spans = []
    previous = start
    for cut in [*cuts, end]:
        if cut <= previous:
            continue
        span_start, span_end = previous, cut
        while span_start < span_end and text[span_start].isspace():
            span_start += 1
        while span_end > span_start and text[span_end - 1].isspace():
            span_end -= 1
        if span_start < span_end:
            spans.append((span_start, span_end))
        previous = cut
    return spans


def sentence_spans(text: str, start: int = 0, end: int | None = None) -> list[tuple[int, int]]:
    """Character spans of the sentences in text[start:end], by regex (no nltk).

    A sentence ends after . ! ? … (plus closing quotes/brackets) when whitespace and an uppercase
    letter, digit or opening quote follow, unless the period belongs to an abbreviation ("e.g.",
    "Dr.", "Fig.", "U.S."), an initial ("J. Smith") or a number ("3.5" has no space). Blank lines,
    lines much shorter than the typical line (headings, list items, paragraph ends) and lines
    followed by a bulleted/numbered item also end one.

    Args:
        text: the whole text; offsets are into it.
        start: where to start looking (inclusive).
        end: where to stop (exclusive); None means len(text).

    Returns:
        Ordered, non-overlapping (start, end) offsets into `text`, each stripped of surrounding
        whitespace and never empty.
    """
    end = len(text) if end is None else min(end, len(text))
    start = max(start, 0)
    if start >= end:
        return []
    cuts: list[int] = []
    for match in _SENTENCE_END.finditer(text, start, end):
        if _is_sentence_boundary(text, match, start):
            cuts.append(match.start(1))
    for match in _CJK_SENTENCE_END.finditer(text, start, end):
        cuts.append(match.end())
    cuts.extend(_line_break_cuts(text, start, end, _SHORT_LINE_RATIO, need_terminator=False))
    cuts.sort()
    return _stripped_spans(text, cuts, start, end)


def paragraph_spans(text: str) -> list[tuple[int, int]]:
    """Character spans of the paragraphs of `text`.

    Paragraphs are separated by blank lines. PDF text often has none, so a line break also separates
    two paragraphs when the line before it is clearly shorter than the typical line (the last line of
    a paragraph, or a heading), does not end with a comma, semicolon, dash or opening bracket, and the
    next line starts with an uppercase letter or digit; and before every bulleted/numbered item.

    Args:
        text: the text.

    Returns:
        Ordered, non-overlapping (start, end) offsets, stripped of surrounding whitespace, non-empty.
    """
    cuts = _line_break_cuts(text, 0, len(text), _PARAGRAPH_LINE_RATIO, need_terminator=True)
    cuts.sort()
    return _stripped_spans(text, cuts, 0, len(text))


# A short line ending like this runs on into the next one, so it is no paragraph end.
_CONTINUES_LINE = (",", ";", "-", "–", "—", "(", "/", "&")


def _line_break_cuts(text: str, start: int, end: int, short_ratio: float, need_terminator: bool) -> list[int]:
    """Cut positions at blank lines and at line breaks that end a heading, list item or paragraph."""
    cuts = [match.start() for match in _BLANK_LINES.finditer(text, start, end)]
    lines = _lines(text, start, end)
    if len(lines) < 2:
        return cuts
    lengths = [len(text[a:b].strip()) for a, b in lines]
    threshold = short_ratio * _typical_line_length(lengths)
    for i in range(len(lines) - 1):
        line_start, line_end = lines[i]
        if lengths[i] == 0 or lengths[i + 1] == 0:
            continue  # blank lines are handled above
        next_start = lines[i + 1][0]
        next_is_item = _BULLET_START.match(text, next_start, lines[i + 1][1]) is not None
        if need_terminator:
            if next_is_item:
                cuts.append(line_end)
                continue
            line = text[line_start:line_end].rstrip()
            if lengths[i] >= threshold or line.endswith(_CONTINUES_LINE):
                continue
            first = text[next_start : lines[i + 1][1]].lstrip()[:1]
            if first and (first.isupper() or first.isdigit()):
                cuts.append(line_end)
        elif next_is_item or lengths[i] < threshold:
            cuts.append(line_end)
    return cuts
