"""Attention plots that work on whole documents (100 to 50,000 tokens): the data as numpy, plus plotly figures.

Tools such as bertviz draw a line per token pair and stall beyond a few hundred tokens; none knows
Longformer's band format. Everything here stays small however long the document is:

* **Attention pattern** (`pattern_grid`, `pattern_figure`): which keys each query may attend to
  (sliding band, global rows/columns, padding) with the 512 x 512 square a truncated model sees laid
  over it. It is computed per *cell* of an at most ~600 x 600 grid by interval arithmetic, never as
  an n x n matrix, and max-pooled so a single global row stays visible at 50,000 tokens.
  `pattern_region` gives the exact full-resolution pattern of a small region (zoom);
  `explainer_figure` a 32-token toy version labelled with words.
* **Per-token attention** (`compute_layer_attention`, `token_weights`, `token_attention_figure`,
  `token_text_html`): the model's real probabilities (from `attention.band_attention_probs`, in band
  format) for one layer and head (or the head average) turned into the weight one chosen token gives
  to every position, as a line over the document and as shaded text. `band_view` shows every token's
  attention to its neighbours (query x offset -w..w); `global_rows_view` what each global token reads.
* **Cost** (`attention_cost`): attended (query, key) pairs and attention FLOPs against full n^2 attention.

The package, by job: `pattern` (the pattern and its cost as data), `layers` (running the model for one
layer's attention, per-token weights), and the figures by family: `pattern_figures` (pattern, zoom,
explainer), `token_figures` (one token's attention as a line and as shaded HTML) and `band_figures` (band
view, global rows). The public names are
re-exported here: `from longformer_core import plots; plots.pattern_grid(...)` keeps working.

No streamlit here: the app's page (pages/attention.py, ui/attention.py) only lays these out.
"""

from longformer_core.plots.band_figures import (
    BandView,
    GlobalRowsView,
    band_figure,
    band_view,
    global_rows_figure,
    global_rows_view,
)
from longformer_core.plots.layers import (
    LayerAttention,
    TokenWeights,
    compute_layer_attention,
    document_token_weights,
    layer_attention,
    most_central_window,
    page_marks,
    reader_layer_attention,
    token_weights,
    token_window,
    word_matches,
)
from longformer_core.plots.pattern import (
    BAND,
    CODE_COLORS,
    CODE_NAMES,
    GLOBAL,
    MAX_CELLS,
    MAX_ZOOM,
    NOT_ATTENDED,
    PADDING,
    TRUNCATED_COLOR,
    AttentionCost,
    PatternGrid,
    PatternSpec,
    attention_cost,
    cell_edges,
    document_pattern_spec,
    padded_length_for,
    pattern_grid,
    pattern_region,
    pattern_spec,
    reader_pattern_spec,
)
from longformer_core.plots.pattern_figures import (
    explainer_figure,
    explainer_pattern,
    pattern_figure,
    zoom_figure,
)
from longformer_core.plots.token_figures import token_attention_figure, token_label, token_text_html

__all__ = [
    "BAND",
    "CODE_COLORS",
    "CODE_NAMES",
    "GLOBAL",
    "MAX_CELLS",
    "MAX_ZOOM",
    "NOT_ATTENDED",
    "PADDING",
    "TRUNCATED_COLOR",
    "AttentionCost",
    "BandView",
    "GlobalRowsView",
    "LayerAttention",
    "PatternGrid",
    "PatternSpec",
    "TokenWeights",
    "attention_cost",
    "band_figure",
    "band_view",
    "cell_edges",
    "compute_layer_attention",
    "document_pattern_spec",
    "document_token_weights",
    "explainer_figure",
    "explainer_pattern",
    "global_rows_figure",
    "global_rows_view",
    "layer_attention",
    "most_central_window",
    "padded_length_for",
    "page_marks",
    "pattern_figure",
    "pattern_grid",
    "pattern_region",
    "pattern_spec",
    "reader_layer_attention",
    "reader_pattern_spec",
    "token_attention_figure",
    "token_label",
    "token_text_html",
    "token_weights",
    "token_window",
    "word_matches",
    "zoom_figure",
]
