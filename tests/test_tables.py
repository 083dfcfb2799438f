"""Tables, lists and definitions (issue 26): table cells with their headers as passages, question intents,
answer shapes, and the answers the embedded model gives on a generated report (slow)."""

from __future__ import annotations

import numpy as np
import pytest

from longformer_core.documents import load_document
from longformer_core.documents.passages import passages
from longformer_core.documents.pdf import extract_pdf_pages
from longformer_core.documents.table_layout import aligned_tables, clean_grid, is_numeric
from longformer_core.documents.tables import locate, might_hold_table
from longformer_core.qa.intent import asks_about_caption, asks_for_several, defined_term, question_intent
from longformer_core.qa.shaping import definition_span, inline_series
from tests.report_pdf import FACTORS, LENGTHS, RESULTS, SPEEDS, build_report_pdf


@pytest.fixture(scope="module")
def report_bytes() -> bytes:
    return build_report_pdf()


@pytest.fixture(scope="module")
def report(report_bytes):
    return load_document(report_bytes, "report.pdf")


def _words(rows: list[tuple[float, float, list[tuple[float, str]]]]) -> list[dict]:
    """Word dicts as pdfplumber gives them: rows of (top, height, [(x0, text)]), 5 points per character."""
    return [
        {"text": text, "x0": x0, "x1": x0 + 5 * len(text), "top": top, "bottom": top + height}
        for top, height, words in rows
        for x0, text in words
    ]


def _prose(top: float, x0: float, words: int = 8) -> tuple[float, float, list[tuple[float, str]]]:
    return top, 10, [(x0 + 28 * i, "word") for i in range(words)]  # 8 points between words: one chunk


# --------------------------------------------------------------------------------------------------
# Layout: unruled tables rebuilt from where the words are


def test_unruled_table_is_rebuilt_with_row_and_column_headers_caption_below():
    rows = [
        (100, 10, [(60, "Model"), (200, "WikiHop"), (300, "TriviaQA")]),
        (114, 10, [(60, "RoBERTa-base"), (200, "72.4"), (300, "74.3")]),
        (128, 10, [(60, "Longformer-base"), (200, "75.0"), (300, "75.2")]),
        (142, 10, [(60, "Table"), (88, "8:"), (100, "Results"), (140, "on"), (155, "QA.")]),
        _prose(170, 60),
    ]
    (table,) = aligned_tables(_words(rows), page_width=600)
    assert table.label == "Table 8"
    assert table.header == ("Model", "WikiHop", "TriviaQA")
    assert table.rows == (("RoBERTa-base", "72.4", "74.3"), ("Longformer-base", "75.0", "75.2"))


def test_table_in_one_column_of_a_two_column_page_ignores_the_other_column():
    rows = [_prose(60 + 14 * i, 40, 6) for i in range(8)]  # left column prose, 6 words a line
    right = [
        (60, 10, [(320, "Table"), (348, "2:"), (362, "Speed.")]),
        (74, 10, [(320, "Reader"), (420, "Tokens/s")]),
        (88, 10, [(320, "Chunked"), (420, "410")]),
        (102, 10, [(320, "Global"), (420, "352")]),
    ]
    (table,) = aligned_tables(_words(rows + right), page_width=600)
    assert table.header == ("Reader", "Tokens/s") and table.rows == (("Chunked", "410"), ("Global", "352"))


def test_prose_and_a_single_number_line_make_no_table():
    rows = [_prose(60 + 14 * i, 40) for i in range(5)] + [(140, 10, [(40, "Total"), (300, "12")])]
    assert aligned_tables(_words(rows), page_width=600) == []


def test_ruled_grid_cells_split_under_wide_headers_are_merged():
    grid = [["", "Category", "", "", "Definition", ""], ["None", "", "", "No effect", "", ""], [None] * 6]
    assert clean_grid(grid) == [["Category", "Definition"], ["None", "No effect"]]
    assert clean_grid([["only one row", ""]]) == []


def test_numbers_and_table_pages_are_recognised():
    assert all(is_numeric(t) for t in ["94.8", "4,096", "12.5%", "75.0±0.2", "-", "(3.1)"])
    assert not any(is_numeric(t) for t in ["RoBERTa", "base-2", ""])
    assert might_hold_table("Some prose.\nTable 3-1. Common Sources of Precursors\nSource Description")
    assert might_hold_table("a 1.0 2.0 3.0\nb 4.0 5.0 6.0\nc 7.0 8.0 9.0")
    assert not might_hold_table("Table 3-1. Common Sources ......................... 27")  # contents
    assert not might_hold_table("Table 3-2 provides examples of functional impact categories.")


def test_cells_are_found_in_the_page_text_next_to_their_own_header():
    from longformer_core.documents.table_layout import RawTable

    # Two tables share a header; the second's cells must not be taken from the first (or from the prose).
    page = (
        "Table 1. First\nCategory Definition\nNone Nothing at all\n"
        "The value None is special.\nTable 2. Second\nCategory Definition\nNone No data lost\n"
    )
    raw = RawTable("Table 2", ("Category", "Definition"), (("None", "No data lost"),))
    table = locate(raw, page, page=1)
    (a, b), (c, d) = table.spans[0]
    assert page[a:b] == "None" and page[c:d] == "No data lost" and a > page.index("Table 2.")
    assert table.caption == "Table 2. Second" and page[slice(*table.caption_span)] == "Table 2. Second"


# --------------------------------------------------------------------------------------------------
# Generated PDF: tables through the PDF worker, cells as passages


def test_generated_pdf_tables_have_headers_and_cell_spans(report):
    tables = {t.label: t for t in report.tables}
    assert set(tables) == {"Table 2", "Table 3", "Table 4"}  # unruled, ruled, and beside prose (two columns)
    for label, rows in (("Table 2", RESULTS), ("Table 3", LENGTHS), ("Table 4", SPEEDS)):
        table = tables[label]
        assert list(table.header) == rows[0] and [list(r) for r in table.rows] == rows[1:]
        for row, cells in zip(table.spans, rows[1:]):
            assert [report.text[a:b] for a, b in row] == cells  # each cell is its own span of Document.text
    assert tables["Table 2"].page == 2 and tables["Table 4"].page == 5
    assert report.page_of(tables["Table 2"].spans[1][2][0]) == 2


def test_table_cell_passages_carry_caption_and_headers(report):
    found = passages(report)
    texts = dict(zip(found.texts, found.kinds))
    cell = (
        "Table 2: Accuracy of each model on long-document tasks (percent). / Longformer-base / WikiHop: 75.0"
    )
    assert texts[cell] == "cell"
    index = found.texts.index(cell)
    assert report.text[slice(*found.spans[index])] == "75.0"  # the span is the cell's own text
    table, row, column = found.cells[index]
    assert (report.tables[table].label, row, column) == ("Table 2", 1, 2)
    assert texts["Table 2: Accuracy of each model on long-document tasks (percent)."] == "caption"
    assert all(b1 <= a2 for (_, b1), (a2, _) in zip(found.spans, found.spans[1:]))
    assert [found.kinds[found.holding(report.text.index(f[2:]))] for f in FACTORS] == ["item"] * 3
    glossary = [t for t, k in texts.items() if k == "entry"]
    assert any(t.startswith("Salt - A non-secret value") for t in glossary)  # "Term - ..." is an entry too
    assert not any(t.startswith("Appendix A - Glossary") for t in glossary)  # a heading is no entry


def test_tables_off_reads_the_same_text(report_bytes):
    on = extract_pdf_pages(report_bytes, "report.pdf")
    off = extract_pdf_pages(report_bytes, "report.pdf", tables=False)
    assert on.text == off.text and on.pages == off.pages
    assert off.tables == () and len(on.tables) == 3


# --------------------------------------------------------------------------------------------------
# Question intents


@pytest.mark.parametrize(
    "question",
    [
        "What is the title of Table 3-1?",
        "What is Table 3-4 called?",
        "Which figure depicts the post-incident activity?",
        "Which table shows the accuracy on WikiHop?",
        "What does Figure 2 show?",
    ],
)
def test_questions_about_a_caption(question):
    assert asks_about_caption(question)


@pytest.mark.parametrize(
    "question",
    [
        "What is the average context length of TriviaQA in wordpieces?",
        "In Table 8, what is the accuracy of Longformer-base?",
        "What is a nonce?",
    ],
)
def test_questions_about_content_are_not_about_a_caption(question):
    assert not asks_about_caption(question)


def test_questions_asking_for_several_things():
    for question in [
        "What are the three authentication factors?",
        "Into which two types can information be divided?",
        "Which groups should the team talk to?",
        "List the steps of incident handling.",
        "What kinds of attacks are there?",
    ]:
        assert asks_for_several(question), question
    for question in [
        "What is a nonce?",
        "What makes a delayed containment strategy dangerous?",
        "Why avoid reporting to several agencies at once?",
        "Which office investigates violations of the law?",
    ]:
        assert not asks_for_several(question), question


def test_defined_terms():
    assert defined_term("What is a nonce?") == "nonce"
    assert defined_term("What does profiling mean in the context of incident analysis?") == "profiling"
    assert defined_term("How does the guide define a threat?") == "threat"
    assert defined_term("What is a vulnerability, according to the glossary?") == "vulnerability"
    assert defined_term("Define salt.") == "salt"
    assert defined_term("What is meant by token?") == "token"
    for question in [
        "What is the title of Table 3-1?",
        "What is the average context length of TriviaQA?",
        "What are the three authentication factors?",
        "What is Table 3-4 called?",
    ]:
        assert defined_term(question) is None, question
    intent = question_intent("What is Table 2 called?")
    assert intent.about_caption and intent.term is None and not intent.several


# --------------------------------------------------------------------------------------------------
# Answer shapes without a model


def test_inline_series_is_the_whole_a_b_and_c():
    text = (
        "Precursors come from many sources, with the most common being computer security software alerts, "
        "logs, publicly available information, and people. Next sentence."
    )
    at = text.index("logs")
    items = [text[a:b] for a, b in inline_series(text, (0, len(text)), (at, at + 4))]
    assert items == ["computer security software alerts", "logs", "publicly available information", "people"]
    text = "Information is divided into two types: business impact and technical."
    at = text.index("technical")
    assert [text[a:b] for a, b in inline_series(text, (0, len(text)), (at, at + 9))] == [
        "business impact",
        "technical",
    ]
    text = (
        "The team should discuss information sharing with the organization's public affairs office, legal "
        "department, and management before an incident occurs to establish policies and procedures."
    )
    head = (0, text.index("office") + 6)  # the reader's span runs from the sentence start into the list
    assert [text[a:b] for a, b in inline_series(text, (0, len(text)), head)] == [
        "the organization's public affairs office",
        "legal department",
        "management",
    ]
    assert inline_series("No list here at all.", (0, 20), (3, 7)) == []


def test_definition_is_the_entry_first_sentence(report):
    found = passages(report)
    nonce = next(i for i, t in enumerate(found.texts) if t.startswith("Nonce:"))
    a, b = definition_span(report, found, nonce, "nonce")
    assert report.text[a:b] == "A value used in security protocols that is never repeated with the same key."
    assert definition_span(report, found, nonce, "salt") is None


def test_evidence_strip_pages_start_at_one():
    from longformer_core.qa.report import evidence_strip_figure

    figure = evidence_strip_figure(3, {})
    assert figure.layout.xaxis.range == (0.5, 3.5) and figure.layout.xaxis.tick0 == 1


def test_table_and_list_html_escape_and_mark_the_cell(report):
    from ui.render import list_html, table_html

    html = table_html(report, (0, 1, 2))
    assert "outline:2px solid" in html and ">75.0</td>" in html.split("outline:2px solid")[1][:80]
    assert "<caption" in html and "Table 2: Accuracy" in html
    items = [(report.text.index(f), report.text.index(f) + len(f)) for f in FACTORS]
    assert list_html(report, items).count("<li>") == 3 and "<li>- " not in list_html(report, items)


# --------------------------------------------------------------------------------------------------
# Answers from the embedded model (real model: these are about its results)


@pytest.fixture(scope="module")
def report_reader(embedded_pair, report):
    from longformer_core.reading.document_reading import DocumentReader

    return DocumentReader(embedded_pair, report, strategy="question")


def _best(reader, question):
    from longformer_core.qa.answering import ask

    return ask(reader, question, views=("longformer",))["longformer"].best


@pytest.mark.slow
@pytest.mark.parametrize(
    ("question", "label", "row", "column"),
    [
        ("What is the accuracy of Longformer-base on WikiHop?", "Table 2", "Longformer-base", "WikiHop"),
        ("What is the average context length of TriviaQA in wordpieces?", "Table 3", "TriviaQA", "Average"),
        ("What is the 95th percentile context length of HotpotQA?", "Table 3", "HotpotQA", "95th percentile"),
        ("How many tokens per second does the global reader process?", "Table 4", "Global", "Tokens/s"),
    ],
)
def test_table_question_gets_the_cell_with_its_headers(report_reader, report, question, label, row, column):
    best = _best(report_reader, question)
    assert best.cell is not None, best.text
    table = report.tables[best.cell[0]]
    assert table.label == label
    assert table.rows[best.cell[1]][0] == row and table.header[best.cell[2]] == column
    assert best.text == table.rows[best.cell[1]][best.cell[2]] and not best.text.startswith("Table")


@pytest.mark.slow
def test_question_about_a_caption_gets_the_caption(report_reader):
    best = _best(report_reader, "Which table shows the average context length of the datasets?")
    assert best.text.startswith("Table 3: Average and 95th percentile")
    assert _best(report_reader, "What is Table 2 called?").text.startswith("Table 2: Accuracy")


@pytest.mark.slow
def test_list_question_gets_the_whole_list(report_reader, report):
    best = _best(report_reader, "What are the three authentication factors?")
    assert len(best.items) == 3
    assert [report.text[a:b] for a, b in best.items] == FACTORS


@pytest.mark.slow
def test_definition_question_gets_the_definition(report_reader):
    best = _best(report_reader, "What is a nonce?")
    assert best.text == "A value used in security protocols that is never repeated with the same key."
    assert _best(report_reader, "What does salt mean?").text.startswith("A non-secret value that is used")


def test_ruled_grid_from_rules_and_words_with_a_group_row():
    from longformer_core.documents.page_geometry import Rule
    from longformer_core.documents.table_layout import ruled_tables

    ys, xs = [100, 114, 128, 142, 156], [50, 150, 400]
    rules = [Rule(True, y, xs[0], xs[-1]) for y in ys]
    rules += [Rule(False, x, ys[0], ys[-1]) for x in (xs[0], xs[-1])]
    rules += [Rule(False, xs[1], y0, y1) for y0, y1 in ((100, 114), (128, 156))]  # the group row spans both
    rows = [
        (102, 10, [(55, "Category"), (155, "Definition")]),
        (60, 10, [(55, "Table"), (83, "3-2."), (110, "Impact")]),  # caption above the grid
        (116, 10, [(200, "Alerts")]),
        (130, 10, [(55, "Low"), (155, "Minimal"), (195, "effect")]),
        (144, 10, [(55, "High"), (155, "No"), (170, "service")]),
    ]
    (table,) = ruled_tables(_words(rows), rules)
    assert table.label == "Table 3-2" and table.header == ("Category", "Definition")
    assert (
        table.rows == (("Low", "Minimal effect"), ("High", "No service")) and table.groups == ("Alerts",) * 2
    )
    frame = [
        Rule(True, 10, 10, 500),
        Rule(True, 700, 10, 500),
        Rule(False, 10, 10, 700),
        Rule(False, 500, 10, 700),
    ]
    assert ruled_tables(_words(rows), frame) == []  # a box around the page is no table


def test_cell_answer_is_outlined_on_its_page(report_bytes, report):
    from longformer_core.documents.page_view import PdfPages, answer_page_spans

    table = next(t for t in report.tables if t.label == "Table 2")
    span = table.spans[1][2]  # Longformer-base / WikiHop: 75.0
    view = PdfPages(report_bytes).render(report, 2, answer_page_spans(span))
    (box,) = [b for b in view.boxes if b.kind == "answer"]
    left, top, right, bottom = box.rect
    assert 0 < right - left < 60 and 0 < bottom - top < 30  # one cell, not the row or the table


def test_table_reading_stops_at_its_budget_and_keeps_the_text(report_bytes):
    from longformer_core.documents.tables import TableReader

    text = extract_pdf_pages(report_bytes, "report.pdf", tables=False)
    page = text.text[slice(*text.pages[1][:2])]
    assert TableReader(report_bytes).page_tables(1, page)  # page 2 holds tables
    assert TableReader(report_bytes, budget_s=0.0).page_tables(1, page) == []  # budget spent: text only
    assert (
        TableReader(b"%PDF-1.4 not really").page_tables(1, page) == []
    )  # a broken file: no tables, no error


def test_named_labels_and_a_caption_of_another_table_is_no_answer(report):
    from longformer_core.qa.intent import named_label
    from longformer_core.qa.shaping import shape_span

    assert named_label("What is the title of Table 3-1?") == "table 3-1"
    assert named_label("Fig. 2: Life cycle") == "figure 2" and named_label("What is a nonce?") is None
    found = passages(report)
    caption = next(i for i, t in enumerate(found.texts) if t.startswith("Table 3: Average"))
    span = found.spans[caption]
    assert shape_span(report, found, span, caption, question_intent("What is Table 3 called?"))[0] == span
    assert shape_span(report, found, span, caption, question_intent("What is Table 2 called?")) is None
    assert shape_span(report, found, span, caption, question_intent("What is the average length?")) is None
    prose = next(i for i, k in enumerate(found.kinds) if k == "sentence")  # the reader pointed elsewhere
    elsewhere = found.spans[prose]
    named = shape_span(report, found, elsewhere, prose, question_intent("What is the title of Table 3?"))
    assert named is not None and report.text[slice(*named[0])].startswith("Table 3: Average")
    assert (
        shape_span(report, found, elsewhere, prose, question_intent("Which table shows lengths?"))[0]
        == elsewhere
    )


def test_a_contents_line_is_a_caption_without_its_leader():
    """The list of tables names every caption with dot leaders and a page number: each line is a caption passage
    (it answers "What is Table 3-1 called?") that stops before the leader, and the lines after it are no table."""
    from longformer_core.documents.model import Document, Page

    contents = (
        "List of Tables\n"
        "Table 3-1. Common Sources of Precursors and Indicators ..................................... 27\n"
        "Table 3-2. Functional Impact Categories . . . . . . . . . . . . . . . . . . . . . . . . . . . . . . 33\n"
        "Introduction\n"
        "This guide helps organizations establish computer security incident response capabilities and\n"
        "handle incidents efficiently and effectively.\n"
    )
    document = Document(
        text=contents, pages=(Page(0, len(contents), "ix"),), name="guide.pdf", kind="pdf", sha256="x"
    )
    found = dict(zip(passages(document).texts, passages(document).kinds))
    assert found["Table 3-1. Common Sources of Precursors and Indicators"] == "caption"
    assert found["Table 3-2. Functional Impact Categories"] == "caption"
    assert not any(kind == "row" for kind in found.values())  # no table follows a contents line


def test_an_item_without_a_full_stop_does_not_swallow_the_next_paragraph():
    """A short bullet line without closing punctuation has ended; the capitalised prose line after it is its own
    passage, while a long item wrapped onto the next line stays one item."""
    from longformer_core.documents.model import Document, Page

    prose = (
        "Multi-factor authentication requires two or more of the factors listed below before it grants access.\n"
        "Organizations should choose the factors according to the risk of the system and its users' needs.\n"
    )
    items = (
        "• Something you know\n"
        "• Something you have, such as a hardware token or a smart card issued by the organization to\n"
        "the user\n"
        "• Something you are\n"
    )
    after = "The next section describes how each factor is verified by the system before access is granted.\n"
    text = prose + items + after
    document = Document(
        text=text, pages=(Page(0, len(text), "1"),), name="factors.pdf", kind="pdf", sha256="x"
    )
    found = dict(zip(passages(document).texts, passages(document).kinds))
    assert found["• Something you know"] == "item"
    assert found["• Something you are"] == "item"
    assert found[after.strip()] == "sentence"  # prose, read by sentences
    wrapped = "• Something you have, such as a hardware token or a smart card issued by the organization to\nthe user"
    assert found[wrapped] == "item"


def test_touches_excluded_agrees_with_a_scan_of_every_header_line():
    """The binary search over running header/footer lines gives what a scan of all of them gives."""
    from longformer_core.documents.model import Document, Page

    body = "The {} team reviews every {} alert before it is escalated to the handlers on duty."
    words = [
        "red",
        "blue",
        "green",
        "night",
        "day",
        "audit",
        "network",
        "desk",
        "cloud",
        "mail",
        "field",
        "lab",
    ]
    page_texts = [
        f"Guide to Incident Handling\n{body.format(*words[2 * n : 2 * n + 2])}\n{body.format(*words[n : n + 2])}"
        f"\nPage {n + 1}"
        for n in range(6)
    ]
    text, pages = "", []
    for n, page in enumerate(page_texts, start=1):
        pages.append(Page(len(text), len(text) + len(page), str(n)))
        text += page + "\n\n"
    found = passages(Document(text=text, pages=tuple(pages), name="guide.pdf", kind="pdf", sha256="x"))
    assert len(found.excluded) == 12  # the title line and the page number of each page
    rng = np.random.default_rng(0)
    for _ in range(2000):
        a = int(rng.integers(0, len(text)))
        span = (a, a + int(rng.integers(1, 80)))
        scan = any(x < span[1] and span[0] < y for x, y in found.excluded)
        assert found.touches_excluded(span) == scan
