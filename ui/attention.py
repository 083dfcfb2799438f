"""The Attention page: which words each word can read, and what one word actually reads.

All model work and figure building is in longformer_core.plots. Heavy results are cached per document
sha256 + model + strategy (+ layer, head and pass for the model's probabilities).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass

import plotly.graph_objects as go
import streamlit as st

from longformer_core import plots
from longformer_core.documents import Document
from longformer_core.model.registry import ModelPair
from longformer_core.reading.document_reading import DocumentReader
from longformer_core.reading.encoding import DocumentTokens
from longformer_core.reading.strategies import STRATEGIES
from ui.feedback import attempt
from ui.render import md
from ui.state import (
    ATTN_BAND,
    ATTN_BAND_DOWNLOAD,
    ATTN_EXPLAINER,
    ATTN_GLOBALS,
    ATTN_GLOBALS_DOWNLOAD,
    ATTN_HEAD,
    ATTN_LAYER,
    ATTN_MATCH,
    ATTN_MODE,
    ATTN_PATTERN,
    ATTN_PATTERN_DOWNLOAD,
    ATTN_POS,
    ATTN_TOKEN,
    ATTN_TOKEN_DOWNLOAD,
    ATTN_WORD,
    ATTN_ZOOM,
    ATTN_ZOOM_K,
    ATTN_ZOOM_Q,
    ATTN_ZOOM_SAME,
    HTML_FILE,
    PNG_FILE,
    Settings,
    record_figure,
    widget_key,
)
from ui.tasks import reader_for

HAS_KALEIDO = importlib.util.find_spec("kaleido") is not None  # PNG export is optional


# --------------------------------------------------------------------------------------------------
# The choices made in the shared sidebar, and the cached computations keyed by them


@dataclass(frozen=True)
class Selection:
    """The document, model pair and global-attention strategy chosen in the shared sidebar."""

    document: Document
    pair: ModelPair
    strategy: str
    keywords: tuple[str, ...]
    every_k: int


@st.cache_resource(max_entries=8, show_spinner=False)
def cached_pattern(
    doc_sha: str,
    model_name: str,
    strategy: str,
    keywords: tuple[str, ...],
    every_k: int,
    _reader: DocumentReader,
) -> tuple[plots.PatternSpec, plots.PatternGrid]:
    spec = plots.reader_pattern_spec(_reader)
    return spec, plots.pattern_grid(spec)


@st.cache_resource(max_entries=4, show_spinner=False)
def cached_layer_attention(
    doc_sha: str,
    model_name: str,
    strategy: str,
    keywords: tuple[str, ...],
    every_k: int,
    doc_range: tuple[int, int],
    layer: int,
    head: int | None,
    _reader: DocumentReader,
) -> plots.LayerAttention:
    # cache_resource: a 16k-token pass holds ~100 MB of numpy; copying it on every rerun would cost more
    # than it protects (the arrays are only read).
    return plots.reader_layer_attention(_reader, doc_range, layer, head)


# --------------------------------------------------------------------------------------------------
# Small UI helpers


def download_buttons(fig: go.Figure, name: str, key: str) -> None:
    """HTML download (interactive, works offline); PNG only when kaleido is installed."""
    cols = st.columns(2)
    cols[0].download_button(
        "Download as HTML",
        data=lambda: fig.to_html(include_plotlyjs=True, full_html=True),  # built only when clicked
        file_name=f"{name}.html",
        mime="text/html",
        key=widget_key(key, HTML_FILE),
        on_click="ignore",
    )
    if HAS_KALEIDO:
        cols[1].download_button(
            "Download as PNG",
            data=lambda: fig.to_image(format="png", scale=2),
            file_name=f"{name}.png",
            mime="image/png",
            key=widget_key(key, PNG_FILE),
            on_click="ignore",
        )
    else:
        cols[1].caption(
            "PNG export needs the optional `kaleido` package; the HTML file keeps the plot interactive."
        )


def strategy_label(strategy: str) -> str:
    """The strategy's name as the sidebar shows it ("question tokens"), for captions."""
    known = STRATEGIES.get(strategy)
    return f"global attention: {known.label if known else strategy}"


def show_cost(cost: plots.AttentionCost, heads: int, layers: int) -> None:
    """The cost numbers next to the pattern."""
    st.metric("Tokens", f"{cost.n_tokens:,}")
    st.metric("Global tokens", f"{cost.n_global:,}")
    st.metric("Pairs read", f"{cost.attended_pairs:,}", help="(reading, read) token pairs per head and layer")
    st.metric("Share of all pairs", f"{cost.share:.2%}")
    st.metric("Attention work", f"{cost.flops / 1e9:,.1f} GFLOP", help=f"{heads} heads x {layers} layers")
    st.metric(
        "Full attention would need",
        f"{cost.full_flops / 1e9:,.0f} GFLOP",
        f"{cost.saving:,.0f}x more",
        delta_color="off",
    )


def zoom_ranges(length: int) -> tuple[int, int, int, int]:
    """Sliders for the exact zoom; returns (q0, q1, k0, k1), each range at most plots.MAX_ZOOM long."""
    last = max(length - 1, 1)  # a slider needs two distinct ends
    default = (0, min(last, 299))
    q0, q1 = st.slider("Zoom: reading positions", 0, last, default, key=ATTN_ZOOM_Q)
    if st.checkbox("Read positions: the same range", value=True, key=ATTN_ZOOM_SAME):
        k0, k1 = q0, q1
    else:
        k0, k1 = st.slider("Zoom: read positions", 0, last, default, key=ATTN_ZOOM_K)
    if q1 - q0 + 1 > plots.MAX_ZOOM or k1 - k0 + 1 > plots.MAX_ZOOM:
        st.caption(f"The zoom shows at most {plots.MAX_ZOOM:,} positions a side: the start of your range.")

    def clip(a: int, b: int) -> tuple[int, int]:
        return a, min(b + 1, a + plots.MAX_ZOOM, length)

    return *clip(q0, q1), *clip(k0, k1)


def choose_token(document: Document, tokens: DocumentTokens) -> int:
    """A document token, chosen by searching a word or with a position slider."""
    n = len(tokens)
    if n == 1:  # a slider needs two distinct ends
        st.caption("The document has a single token.")
        return 0
    mode = st.radio("Choose a word", ["by position", "by searching a word"], horizontal=True, key=ATTN_MODE)
    if mode == "by searching a word":
        word = st.text_input("Word to look for", key=ATTN_WORD, placeholder="e.g. incident")
        matches = plots.word_matches(document.text, word)
        if matches:
            pick = st.selectbox(
                f"{len(matches)} place(s) found" + (" (first 50)" if len(matches) == 50 else ""),
                range(len(matches)),
                format_func=lambda i: f"page {document.page_of(matches[i][0])}: {matches[i][1]}",
                key=ATTN_MATCH,
            )
            return tokens.token_at(matches[pick][0])
        st.caption("No match yet: type a word from the document. Meanwhile the slider's word is shown.")
    return st.slider("Token position in the document", 0, n - 1, n // 2, key=ATTN_POS)


def head_choice(heads: int) -> int | None:
    options = [None, *range(heads)]
    return st.selectbox(
        "Head",
        options,
        format_func=lambda h: "average of all heads" if h is None else f"head {h + 1}",
        key=ATTN_HEAD,
    )


def global_labels(
    view: plots.GlobalRowsView, document: Document, tokens: DocumentTokens, label_of: Callable[[int], str]
) -> list[str]:
    """A readable label per global token: its word and page, or the start marker."""
    labels = []
    for t in view.doc_tokens:
        if t < 0:
            labels.append("[CLS] start marker")
        else:
            labels.append(f'"{label_of(int(t))}" (p. {document.page_of(int(tokens.offsets[t, 0]))})')
    return labels


# --------------------------------------------------------------------------------------------------
# The page's sections


def pattern_section(sel: Selection, reader: DocumentReader, key: tuple) -> None:
    spec, grid = cached_pattern(*key, _reader=reader)
    config = sel.pair.longformer.model.config
    heads, layers = config.num_attention_heads, config.num_hidden_layers
    cost = plots.attention_cost(spec, heads=heads, head_dim=config.hidden_size // heads, layers=layers)
    st.subheader("Who can read whom, over the whole document")
    where = (
        "Position 0 is the summary token [CLS]; the document starts at 1."
        if not spec.windows
        else f"The document is longer than one pass, so it is read in {len(spec.windows)} overlapping windows "
        "(dotted squares); positions are document tokens."
    )
    st.caption(
        f"Each row is a token reading; each column a token being read. Blue: its {2 * spec.window + 1}-token "
        f"neighbourhood. Orange: global tokens. The red square is everything a 512-token model reads. {where}"
    )
    left, right = st.columns([3, 1])
    with left:
        fig = plots.pattern_figure(grid)
        st.plotly_chart(fig, theme=None, key=ATTN_PATTERN)
        record_figure(
            sel.document,
            "attention_pattern",
            f"Attention: who can read whom ({strategy_label(sel.strategy)}; {cost.n_tokens:,} tokens, "
            f"{cost.n_global:,} global; {cost.share:.2%} of all token pairs)",
            fig,
        )
        download_buttons(fig, "attention_pattern", ATTN_PATTERN_DOWNLOAD)
    with right:
        show_cost(cost, heads, layers)
    with st.expander("Zoom in, token by token", expanded=False):
        q0, q1, k0, k1 = zoom_ranges(spec.padded_length)
        st.plotly_chart(plots.zoom_figure(spec, q0, q1, k0, k1), theme=None, key=ATTN_ZOOM)


def token_section(sel: Selection, reader: DocumentReader, key: tuple) -> None:
    document, tokens = sel.document, reader.long_tokens
    config = sel.pair.longformer.model.config
    st.subheader("What one word reads")
    st.caption(
        "The model's real attention: how much of its attention the chosen word gives to every other word."
    )
    token = choose_token(document, tokens)
    c1, c2 = st.columns(2)
    with c1:
        layer = st.selectbox(
            "Layer",
            range(config.num_hidden_layers),
            index=config.num_hidden_layers - 1,
            format_func=lambda i: f"layer {i + 1}",
            key=ATTN_LAYER,
        )
    with c2:
        head = head_choice(config.num_attention_heads)
    doc_range = plots.token_window(reader, token)
    with st.spinner(f"Running the model on tokens {doc_range[0]:,}-{doc_range[1] - 1:,} (one pass)..."):
        att = cached_layer_attention(*key, doc_range, layer, head, _reader=reader)
    tw = plots.document_token_weights(att, token)

    def label_of(t: int) -> str:
        return plots.token_label(document.text, tokens, t)

    page = document.page_of(int(tokens.offsets[token, 0]))
    st.markdown(f"Token **{token:,}** of {len(tokens):,}, page {page}.")
    fig = plots.token_attention_figure(tw, label=label_of(token), marks=plots.page_marks(document, tokens))
    st.plotly_chart(fig, theme=None, key=ATTN_TOKEN)
    head_name = "all heads" if head is None else f"head {head + 1}"
    record_figure(
        document,
        "attention_token",
        f'Attention: what "{label_of(token)}" (token {token:,}, page {page}) reads, layer {layer + 1}, '
        f"{head_name} ({strategy_label(sel.strategy)})",
        fig,
    )
    download_buttons(fig, "token_attention", ATTN_TOKEN_DOWNLOAD)
    st.markdown("**In the text** (darker = read more; hover a word for its share)")
    st.html(plots.token_text_html(document.text, tokens, tw, page_of=document.page_of))

    st.subheader("Every word and its neighbours")
    st.caption(
        "Each row is a word; columns are its neighbours from 256 before to 256 after. Bright stripes show "
        "habits, such as always reading the previous word."
    )
    band = plots.band_figure(plots.band_view(att))
    st.plotly_chart(band, theme=None, key=ATTN_BAND)
    download_buttons(band, "band_view", ATTN_BAND_DOWNLOAD)
    if att.global_positions.size:
        st.subheader("What the global tokens read")
        view = plots.global_rows_view(att)
        fig_g = plots.global_rows_figure(view, global_labels(view, document, tokens, label_of))
        st.plotly_chart(fig_g, theme=None, key=ATTN_GLOBALS)
        record_figure(
            document,
            "attention_globals",
            f"Attention: what the global tokens read, layer {layer + 1}, {head_name} "
            f"({strategy_label(sel.strategy)})",
            fig_g,
        )
        download_buttons(fig_g, "global_rows", ATTN_GLOBALS_DOWNLOAD)


def show(settings: Settings, document: Document) -> None:
    """The page below its title: the strategy in use, the explainer, the pattern and one word's attention."""
    reader = attempt(lambda: reader_for(document, settings, "classify"), doing="reading the document")
    if reader is None:  # keyword strategy without keywords, ...: the message says what to do
        return
    sel = Selection(document, settings.pair, reader.strategy, reader.keywords, reader.every_k)
    key = (document.sha256, settings.model_key, reader.strategy, reader.keywords, reader.every_k)
    strategy = STRATEGIES.get(sel.strategy)
    st.markdown(f"**{md(sel.document.name)}** · strategy: **{strategy.label if strategy else sel.strategy}**")
    with st.expander("How to read these pictures", expanded=False):
        st.plotly_chart(plots.explainer_figure(sel.strategy), theme=None, key=ATTN_EXPLAINER)
        st.markdown(
            "Every word in Longformer reads only its neighbours (here 4 either side, in the real model 256), so "
            "the work grows with the document's length instead of its square. A few **global** words read "
            "everything and are read by everything: they link distant parts. **Padding** fills the last block "
            "and is never read. A 512-token model (red square) reads everything, but only at the start."
        )
    pattern_section(sel, reader, key)
    token_section(sel, reader, key)
