"""A generated report PDF for the table, list and definition tests (fpdf2, a test requirement).

Page 1 prose; page 2 a results table without vertical rules (rows of numbers, as in papers) and a ruled table;
page 3 a bulleted list; page 4 a glossary ("Term: ...", "Term - ..."); page 5 a two-column page with a table
in its right column beside prose. Facts are invented or public (the Longformer paper's context lengths).
"""

from __future__ import annotations

PROSE = (
    "Long documents are common in science, law and industry. Models that read only the first few hundred "
    "words of a document miss most of what it says. This report compares several readers on tasks where "
    "the answer may be far from the start of the document, and it explains how the results were measured. "
)
RESULTS = [
    ["Model", "Hyperpartisan", "WikiHop", "TriviaQA"],
    ["RoBERTa-base", "87.4", "72.4", "74.3"],
    ["Longformer-base", "94.8", "75.0", "75.2"],
    ["Longformer-large", "95.1", "81.9", "77.3"],
]
LENGTHS = [
    ["Dataset", "Average", "95th percentile"],
    ["WikiHop", "1,535", "3,627"],
    ["TriviaQA", "6,589", "17,126"],
    ["HotpotQA", "1,316", "1,889"],
]
SPEEDS = [
    ["Reader", "Tokens/s", "Memory"],
    ["Chunked", "410", "1.2 GB"],
    ["Sliding", "385", "0.9 GB"],
    ["Global", "352", "1.4 GB"],
]
FACTORS = [
    "- something you know, such as a password;",
    "- something you have, such as a token;",
    "- something you are, such as a fingerprint.",
]
GLOSSARY = [
    (
        "Nonce: A value used in security protocols that is never repeated with the same key. For example, "
        "nonces used as challenges must be unpredictable."
    ),
    (
        "Salt - A non-secret value that is used in a cryptographic process, usually to ensure that the "
        "results of computations for one instance cannot be reused by an attacker."
    ),
    "Token: Something that the user possesses and controls, used to authenticate the user's identity.",
]


def build_report_pdf() -> bytes:
    """The five-page report as PDF bytes (see the module docstring)."""
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_auto_page_break(True, 20)
    pdf.set_font("Helvetica", size=10)

    def para(text: str) -> None:
        pdf.multi_cell(0, 5, text, new_x="LMARGIN", new_y="NEXT")
        pdf.ln(2)

    def table(rows: list[list[str]], layout: str) -> None:
        with pdf.table(borders_layout=layout, text_align="LEFT", width=160, line_height=6) as drawn:
            for cells in rows:
                row = drawn.row()
                for cell in cells:
                    row.cell(cell)
        pdf.ln(3)

    pdf.add_page()
    para("1 Introduction\n" + PROSE * 3)
    pdf.add_page()
    para(
        "2 Results\nWe evaluate every model on three long-document tasks and report accuracy in percent. "
        + PROSE
    )
    pdf.cell(
        0,
        6,
        "Table 2: Accuracy of each model on long-document tasks (percent).",
        new_x="LMARGIN",
        new_y="NEXT",
    )
    table(RESULTS, "HORIZONTAL_LINES")
    para("The larger model is best on every task. " + PROSE)
    pdf.cell(
        0,
        6,
        "Table 3: Average and 95th percentile of context length of datasets in wordpieces.",
        new_x="LMARGIN",
        new_y="NEXT",
    )
    table(LENGTHS, "ALL")
    para("Contexts in TriviaQA are much longer than in the other datasets. " + PROSE)
    pdf.add_page()
    para(
        "3 Authentication\nA system should confirm who a user is before it grants access to any document. "
        "There are three authentication factors:"
    )
    for item in FACTORS:
        pdf.cell(0, 5, item, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(2)
    para("Using more than one factor makes stolen passwords far less useful to an attacker. " + PROSE)
    pdf.add_page()
    para("Appendix A - Glossary\nSelected terms used in this report are defined below.")
    for entry in GLOSSARY:
        para(entry)
    pdf.add_page()
    _two_column_page(pdf)
    return bytes(pdf.output())


def _two_column_page(pdf: object) -> None:
    """Prose in the left column, a caption and an unruled table in the right one, at the same heights."""
    left = (PROSE * 4).split()
    y, line = 30.0, []
    for word in left:  # about 45 characters a line in the left column
        if len(" ".join(line + [word])) > 45:
            pdf.text(12, y, " ".join(line))  # type: ignore[attr-defined]
            y, line = y + 5, []
        line.append(word)
    pdf.text(110, 30, "Table 4: Speed of each reader.")  # type: ignore[attr-defined]
    for r, cells in enumerate(SPEEDS):
        for c, cell in enumerate(cells):
            pdf.text(110 + 32 * c, 40 + 5 * r, cell)  # type: ignore[attr-defined]
    pdf.text(110, 70, "The global reader is the slowest of the three.")  # type: ignore[attr-defined]
