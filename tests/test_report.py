"""The shared report (longformer_core.qa.report): one self-contained HTML file with the session's figures."""

from __future__ import annotations

import re

from longformer_core import plots
from longformer_core.documents import text_document
from longformer_core.qa.report import build_report
from ui.state import record_figure, session_figures

PLOTLY_LIBRARY = "plotly.js v"  # the banner at the top of the inlined library


def _attention_figures() -> list[tuple[str, object]]:
    spec = plots.pattern_spec(4096, 256, [0, 1, 2, 900], padded_length=4096)
    return [
        (
            "Attention: who can read whom (global attention: question tokens)",
            plots.pattern_figure(plots.pattern_grid(spec)),
        ),
        ("How to read these pictures", plots.explainer_figure("question")),
    ]


def test_report_embeds_the_attention_figures_with_plotly_inlined_once():
    document = text_document("The lighthouse is painted red and white. " * 40, "harbour.txt")
    html = build_report(document, [], figures=_attention_figures())
    assert "<h3>Attention: who can read whom (global attention: question tokens)</h3>" in html
    assert html.count(PLOTLY_LIBRARY) == 1  # the library once, however many figures
    assert html.count("Plotly.newPlot(") == 2  # one call per figure
    assert len(re.findall(r'class="plotly-graph-div"', html)) == 2
    # Self-contained: no script, stylesheet or font is fetched from anywhere.
    assert not re.search(r"<script[^>]+src=", html) and not re.search(r"<link[^>]+href=['\"]?https?:", html)


def test_figures_are_kept_per_document_and_replaced_by_name():
    state: dict = {}
    lease, harbour = (
        text_document("Rent is due.", "lease.txt"),
        text_document("Ferries leave.", "harbour.txt"),
    )
    (caption, pattern), (_, explainer) = _attention_figures()
    record_figure(lease, "attention_pattern", caption, pattern, state)
    record_figure(harbour, "attention_pattern", "harbour pattern", explainer, state)
    record_figure(lease, "attention_token", "token", explainer, state)
    record_figure(lease, "attention_pattern", "redrawn", explainer, state)  # a rerun draws it again
    kept = session_figures(lease, state)
    assert [(f.name, f.caption) for f in kept] == [
        ("attention_pattern", "redrawn"),
        ("attention_token", "token"),
    ]
    assert kept[0].figure is explainer
    assert [f.caption for f in session_figures(harbour, state)] == ["harbour pattern"]
    for i in range(20):  # the session keeps a bounded number
        record_figure(lease, f"figure_{i}", str(i), explainer, state)
    assert len(state["session_figures"]) == 12 and session_figures(harbour, state) == []
