"""The shape of an answer: a reader's span grown (or dropped) by the question's intent and the passage kind.

The reader points at a few words. What a person wants back depends on the question (`qa.intent`) and on the
unit those words sit in (`documents.passages`):

- a **caption** answers only a question about its table or figure (and, when the question names one,
  "Table 3-1", only that one's caption); for any other question a span inside a caption is dropped (the
  caption names the table, it does not hold the cell asked for). A question about a table that points into
  one of its cells gets the table's caption, and one that names the table ("What is the title of Table
  3-1?") gets that table's caption wherever the reader pointed (prose that mentions "Table 3-1" is no title);
- a **definition** question gets the definition of its term when the span lies in a passage that defines
  it: a glossary entry ("Nonce: A value used ...", "Nonce - A value ..."), a glossary table's row, or a
  defining sentence ("A nonce is ..."); the answer is the entry's first sentence, not a word inside it;
- a **table cell** is answered whole;
- a question asking for **several things** gets the whole list when the span is one item of it: the run of
  bulleted or numbered items around it, or the "A, B, and C" series in its sentence;
- a **glossary or acronym entry** is answered whole ("MSSP Managed Security Services Provider").

Every span stays a span of `Document.text` (items too), so highlights and pages work unchanged.
"""

from __future__ import annotations

import re

from longformer_core.documents import Document, sentence_spans
from longformer_core.documents.passages import Passages
from longformer_core.qa.intent import Intent, named_label, plain_words

# An answer inside a glossary/acronym entry or a table cell is the whole unit: "MSSP Managed Security Services
# Provider" answers "What does MSSP stand for?" better than any piece of it.
WHOLE_PASSAGE_KINDS = frozenset({"entry", "cell"})
DEFINITION_BONUS = 2.0  # score added to a candidate that became its term's definition (z units x weight ~ 1)
HEADER_MATCH_BONUS = (
    2.0  # score added to a cell whose row and column headers both share words with the question
)
MAX_LIST_ITEMS = 15
MAX_ITEM_WORDS = 6  # an item of an "A, B, and C" series is a short phrase
_LIST_LEADS = re.compile(  # the words before the first item of a series ("the most common being ...")
    r"^.*\b(?:being|are|is|were|include|includes|including|such as|namely|like|as|from|of|between|into|with|"
    r"to|for|by|on|about)\s+",
    re.IGNORECASE,
)
# Words that end the last item of a series: "management before an incident occurs" -> "management".
_SMALL_WORDS = frozenset(
    [
        "before",
        "after",
        "to",
        "for",
        "in",
        "on",
        "at",
        "by",
        "with",
        "from",
        "that",
        "which",
        "who",
        "when",
        "where",
        "if",
        "because",
        "so",
        "as",
        "are",
        "is",
        "were",
        "was",
        "will",
        "would",
        "should",
        "can",
        "could",
        "may",
        "might",
        "must",
        "have",
        "has",
        "had",
        "do",
        "does",
        "than",
    ]
)


def shape_span(
    document: Document, passages: Passages, span: tuple[int, int], passage: int, intent: Intent
) -> tuple[tuple[int, int], float] | None:
    """The answer a candidate span becomes, with a score bonus, or None when it must not be an answer.

    Args:
        document: the document.
        passages: its passages.
        span: the reader's char span.
        passage: index of the passage holding it (-1 for none).
        intent: what the question asks for (`qa.intent.question_intent`).
    Returns:
        (char span, bonus) or None (a caption for a question about content).
    """
    if passage < 0:
        return span, 0.0
    kind, whole = passages.kinds[passage], passages.spans[passage]
    if kind == "caption":  # only for a question about it, and about this one when it names one
        named = intent.label is None or named_label(document.text[whole[0] : whole[1]]) == intent.label
        return (whole, 0.0) if intent.about_caption and named else None
    if kind == "cell" and intent.about_caption:
        table = document.tables[passages.cells[passage][0]]
        named = intent.label is None or named_label(table.label) == intent.label
        return (table.caption_span, 0.0) if table.caption_span and named else None
    if intent.about_caption and intent.label is not None:
        caption = named_caption(document, passages, intent.label)
        if caption is not None:
            return caption, 0.0
    if intent.term:
        definition = definition_span(document, passages, passage, intent.term)
        if definition is not None:
            return definition, DEFINITION_BONUS
    if kind == "cell":  # whole, whatever else the question asks; the headers the question names pick it
        return best_cell(document, passages, passage, intent.words)
    if intent.several:
        items = list_items(document, passages, passage, span)
        if len(items) >= 2:
            return (items[0][0], items[-1][1]), 0.0
    if kind in WHOLE_PASSAGE_KINDS:
        return whole, 0.0
    return span, 0.0


def named_caption(document: Document, passages: Passages, label: str) -> tuple[int, int] | None:
    """The caption of the table or figure `label` names ("table 3-1"): a rebuilt table's own caption, else the
    last caption passage with that label (a list of tables, which comes first, names it too); None if none."""
    for table in document.tables:
        if table.caption_span and named_label(table.label) == label:
            return table.caption_span
    found = [
        span
        for span, kind in zip(passages.spans, passages.kinds)
        if kind == "caption" and named_label(document.text[span[0] : span[1]]) == label
    ]
    return found[-1] if found else None


def header_match(
    document: Document, passages: Passages, passage: int, words: frozenset[str]
) -> tuple[int, int]:
    """(row header words, column header words) of a cell passage that are also in the question."""
    table_index, row, column = passages.cells[passage]
    table = document.tables[table_index]
    row_words = plain_words(table.row_labels[row]) if column else frozenset()
    return len(row_words & words), len(plain_words(table.header[column]) & words)


def best_cell(
    document: Document, passages: Passages, passage: int, words: frozenset[str]
) -> tuple[tuple[int, int], float]:
    """The cell of the same table whose row and column headers share the most words with the question (the
    reader found the table; the headers the question names find the cell), and its bonus: HEADER_MATCH_BONUS
    when both its row and column headers match. The reader's own cell wins ties."""
    table = passages.cells[passage][0]
    best, best_match = passage, header_match(document, passages, passage, words)
    first = last = passage
    while first > 0 and passages.kinds[first - 1] == "cell" and passages.cells[first - 1][0] == table:
        first -= 1
    while (
        last + 1 < len(passages)
        and passages.kinds[last + 1] == "cell"
        and passages.cells[last + 1][0] == table
    ):
        last += 1
    for other in range(first, last + 1):
        match = header_match(document, passages, other, words)
        if (min(match) > 0, sum(match)) > (min(best_match) > 0, sum(best_match)):
            best, best_match = other, match
    return passages.spans[best], HEADER_MATCH_BONUS if min(best_match) > 0 else 0.0


def _term_pattern(term: str) -> str:
    """A regex for a term as printed: any case and spacing, an optional plural and "(ABBR)" after it."""
    words = [re.escape(w) for w in term.split()]
    return r"\s+".join(words) + r"(?:e?s)?(?:\s*\([^)\n]{1,30}\))?"


def definition_span(
    document: Document, passages: Passages, passage: int, term: str
) -> tuple[int, int] | None:
    """The definition of `term` in a passage that defines it, else None.

    A glossary entry ("Term: text", "Term - text") gives its text up to the end of its first sentence; a
    glossary table's row gives its first filled cell after the term; a sentence starting "A term is ...",
    "Term means ...", "Term refers to ..." gives that sentence.
    """
    a, b = passages.spans[passage]
    if passages.kinds[passage] == "cell":
        table_index, row, _ = passages.cells[passage]
        table = document.tables[table_index]
        if not re.fullmatch(_term_pattern(term), table.rows[row][0].strip(), re.IGNORECASE):
            return None
        return next((s for s in table.spans[row][1:] if s is not None), None)
    text = document.text[a:b]
    pattern = re.compile(
        rf"^[ \t]*(?:(?:an?|the)\s+)?{_term_pattern(term)}(?P<mark>\s*:\s*|\s+[-–—]\s+|\s+(?=(?:is|are|means|"
        r"refers\s+to|denotes)\b))",
        re.IGNORECASE | re.MULTILINE,
    )
    match = pattern.search(text)
    if match is None:
        return None
    start = a + (match.end() if match.group("mark").strip() else match.start())
    sentences = sentence_spans(document.text, start, b)
    end = sentences[0][1] if sentences else b
    return (start, end) if end > start else None


def list_items(
    document: Document, passages: Passages, passage: int, span: tuple[int, int]
) -> list[tuple[int, int]]:
    """The items of the list a span belongs to: the run of item passages around an item, or the series
    "A, B, and C" / "A and B" holding the span in its sentence. [] when it is in no list."""
    end = passages.holding(max(span[0], span[1] - 1))
    if passages.kinds[passage] != "item" and end > passage and passages.kinds[end] == "item":
        passage = end  # the span runs from the list's lead-in into its first item
    lead_in = document.text[slice(*passages.spans[passage])].rstrip().endswith(":")
    if lead_in and passage + 1 < len(passages) and passages.kinds[passage + 1] == "item":
        passage += 1  # "There are three factors:" then the items
    if passages.kinds[passage] == "item":
        first = last = passage
        while first > 0 and passages.kinds[first - 1] == "item" and passage - first < MAX_LIST_ITEMS:
            first -= 1
        while (
            last + 1 < len(passages) and passages.kinds[last + 1] == "item" and last - first < MAX_LIST_ITEMS
        ):
            last += 1
        return [passages.spans[i] for i in range(first, last + 1)]
    return inline_series(document.text, passages.spans[passage], span)


def inline_series(text: str, passage: tuple[int, int], span: tuple[int, int]) -> list[tuple[int, int]]:
    """Items of an "A, B, and C" (or "A and B", "A, B or C") series in the clause holding `span`.

    The clause runs between sentence punctuation (. ; : ? !) inside the passage. Each " and " / " or " of
    the clause, last first, may end a series: the items before it are the short comma-separated phrases going
    back from it (the first loses its lead-in: "the most common being ..."), the item after it is cut to
    about their length (at the first small word: "management before an incident ..." -> "management"). The
    first series that overlaps the span wins.

    Returns:
        Char spans of the items in `text` ([] when there is no such series around the span).
    """
    a, b = passage
    cuts = sorted({a, b} | {a + m.end() for m in re.finditer(r"[.;:?!](?=\s)", text[a:b])})
    start = max(c for c in cuts if c <= span[0])
    end = min((c for c in cuts if c > span[0]), default=b)
    clause_end = start + len(text[start:end].rstrip(" .;:?!\n"))
    for conj in reversed(list(re.finditer(r",?\s+(?:and|or)\s+", text[start:clause_end]))):
        found = _series(text, start, start + conj.start(), start + conj.end(), clause_end)
        if len(found) >= 2 and found[0][0] < span[1] and span[0] < found[-1][1]:
            return found
    return []


def _series(text: str, start: int, conj_start: int, conj_end: int, clause_end: int) -> list[tuple[int, int]]:
    """The items of the series ending at the conjunction text[conj_start:conj_end] (see `inline_series`)."""
    items: list[tuple[int, int] | None] = []
    for piece in reversed(list(re.finditer(r"[^,]+", text[start:conj_start]))):
        piece_start, piece_end = start + piece.start(), start + piece.end()
        if len(text[piece_start:piece_end].split()) > MAX_ITEM_WORDS:
            lead = _LIST_LEADS.match(text[piece_start:piece_end])
            if lead and len(text[piece_start + lead.end() : piece_end].split()) <= MAX_ITEM_WORDS:
                items.insert(0, _trimmed(text, piece_start + lead.end(), piece_end))
            break
        items.insert(0, _trimmed(text, piece_start, piece_end))
    found = [item for item in items if item]
    last = _trimmed(text, conj_end, clause_end)
    if not found or last is None:
        return []
    words = list(re.finditer(r"\S+", text[last[0] : last[1]]))
    keep = max(len(text[x:y].split()) for x, y in found)
    if len(words) > keep + 1:  # "A, B and C are ...": the last item is about as long as the others
        stop = next((i for i, w in enumerate(words[1:], 1) if w.group().lower() in _SMALL_WORDS), keep)
        last = (last[0], last[0] + words[min(stop, keep) - 1].end())
    return [*found, last]


def _trimmed(text: str, a: int, b: int) -> tuple[int, int] | None:
    """(a, b) without surrounding spaces and punctuation; None when nothing is left."""
    while a < b and (text[a].isspace() or text[a] in ",;"):
        a += 1
    while b > a and (text[b - 1].isspace() or text[b - 1] in ",;."):
        b -= 1
    return (a, b) if b > a else None


def answer_layout(document: Document, passages: Passages, span: tuple[int, int], intent: Intent) -> dict:
    """The `items` and `cell` fields of an Answer with this span (a list answer's items when the question
    asks for several things, a cell's place)."""
    items = answer_items(document, passages, span) if intent.several else []
    return {"items": items, "cell": answer_cell(passages, span)}


def answer_items(document: Document, passages: Passages, span: tuple[int, int]) -> list[tuple[int, int]]:
    """The items of a list answer (for showing it as a list): the item passages it covers, or its own
    "A, B, and C" series; [] for an answer that is no list."""
    first, last = passages.holding(span[0]), passages.holding(max(span[0], span[1] - 1))
    if first >= 0 and last > first and all(passages.kinds[i] == "item" for i in range(first, last + 1)):
        return [passages.spans[i] for i in range(first, last + 1)]
    items = inline_series(document.text, span, (span[0], span[1]))
    return items if items and items[0][0] <= span[0] + 1 and items[-1][1] >= span[1] - 1 else []


def answer_cell(passages: Passages, span: tuple[int, int]) -> tuple[int, int, int] | None:
    """(table, row, column) when the answer is exactly one table cell, else None."""
    index = passages.holding(span[0])
    if index >= 0 and passages.kinds[index] == "cell" and passages.spans[index] == tuple(span):
        return passages.cells[index]
    return None
