"""Plotly figures of the app: coverage, label scores, passage heatmap, collection map."""

from __future__ import annotations

import html
from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

from longformer_core.classify import ClassifyResult
from longformer_core.similarity import PassageMatrix
from ui.render import VIEW_COLORS, VIEW_TITLES, flat, snippet


def coverage_chart(n_tokens: int, baseline_reads: int, longformer_limit: int) -> go.Figure:
    """Bars: what the 512-token model reads, what the Longformer can read at once, the document's length."""
    names = ["A 512-token model reads", "The Longformer reads at once", "Your document"]
    values = [baseline_reads, longformer_limit, n_tokens]
    colors = [VIEW_COLORS["truncated"], VIEW_COLORS["longformer"], "#6b7280"]
    fig = go.Figure(
        go.Bar(
            x=values,
            y=names,
            orientation="h",
            marker_color=colors,
            text=[f"{v:,} tokens" for v in values],
            textposition="auto",
            hovertemplate="%{y}: %{x:,} tokens<extra></extra>",
        )
    )
    fig.update_layout(
        height=220,
        margin={"l": 10, "r": 10, "t": 10, "b": 30},
        xaxis_title="tokens",
        yaxis={"autorange": "reversed"},
        showlegend=False,
    )
    return fig


def scores_chart(results: dict[str, ClassifyResult]) -> go.Figure:
    """Grouped bars: each label's probability for each model."""
    fig = go.Figure()
    for view, result in results.items():
        labels = list(result.scores)
        fig.add_bar(
            x=labels,
            y=[result.scores[k] for k in labels],
            name=VIEW_TITLES[view],
            marker_color=VIEW_COLORS[view],
            hovertemplate="%{x}: %{y:.0%}<extra>" + VIEW_TITLES[view] + "</extra>",
        )
    fig.update_layout(
        barmode="group",
        height=360,
        margin={"l": 10, "r": 10, "t": 30, "b": 10},
        yaxis={"title": "probability", "tickformat": ".0%", "range": [0, 1]},
        legend={"orientation": "h", "y": 1.1},
    )
    return fig


def heatmap(m: PassageMatrix, name_a: str, name_b: str) -> go.Figure:
    """Passage-by-passage cosine; hover shows both passages' pages and snippets (escaped)."""
    hover = [
        [
            f"<b>{html.escape(name_a)}</b>, page {html.escape(pa.page_label)}: {snippet(pa.text)}<br>"
            f"<b>{html.escape(name_b)}</b>, page {html.escape(pb.page_label)}: {snippet(pb.text)}<br>"
            + (
                "similarity: not read by this model"
                if np.isnan(m.matrix[i, j])
                else f"similarity: {m.matrix[i, j]:.2f}"
            )
            for j, pb in enumerate(m.passages_b)
        ]
        for i, pa in enumerate(m.passages_a)
    ]
    z = np.where(np.isnan(m.matrix), None, m.matrix).tolist()  # None: a gap plotly leaves blank
    fig = go.Figure(
        go.Heatmap(
            z=z,
            text=hover,
            hovertemplate="%{text}<extra></extra>",
            colorscale="Viridis",
            colorbar={"title": "similarity"},
            x=list(range(1, len(m.passages_b) + 1)),
            y=list(range(1, len(m.passages_a) + 1)),
        )
    )
    fig.update_layout(
        height=520,
        margin={"l": 10, "r": 10, "t": 10, "b": 10},
        xaxis_title=f"passages of {html.escape(name_b)}",
        yaxis_title=f"passages of {html.escape(name_a)}",
        yaxis={"autorange": "reversed"},
    )
    return fig


def collection_figure(
    coords: np.ndarray, labels: np.ndarray, titles: Sequence[str], texts: Sequence[str]
) -> go.Figure:
    """The 2-D map: one dot per document, coloured by cluster; hover shows the title and a snippet (escaped)."""
    fig = go.Figure()
    for c in sorted(set(labels.tolist())):
        idx = np.flatnonzero(labels == c)
        fig.add_scatter(
            x=coords[idx, 0],
            y=coords[idx, 1],
            mode="markers",
            name=f"cluster {c + 1}",
            text=[f"<b>{html.escape(flat(titles[i], 90))}</b><br>{snippet(texts[i], 160)}" for i in idx],
            hovertemplate="%{text}<extra>cluster " + str(c + 1) + "</extra>",
            marker={"size": 8, "opacity": 0.8},
        )
    fig.update_layout(
        height=480,
        margin={"l": 10, "r": 10, "t": 10, "b": 10},
        xaxis={"title": "first direction of difference (PCA)"},
        yaxis={"title": "second direction (PCA)"},
        legend={"orientation": "h", "y": 1.08},
    )
    return fig
