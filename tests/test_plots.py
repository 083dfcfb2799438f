"""Attention plots (longformer_core.plots) and the attention page: the data behind every figure.

Pattern tests compare the interval arithmetic against brute-force full matrices on small inputs;
per-token tests compare against HF's own Longformer attention on a tiny random model (no download);
the page test runs pages/attention.py in AppTest with the real embedded model on a short document.
"""

from __future__ import annotations

import copy
import html
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import LongformerConfig, LongformerModel

from longformer_core import plots
from longformer_core.model.attention import band_attention_probs
from longformer_core.plots import BAND, GLOBAL, NOT_ATTENDED, PADDING
from longformer_core.reading.encoding import DocumentTokens, plan_windows
from longformer_core.reading.strategies import STRATEGIES

PAGE = Path(__file__).resolve().parent.parent / "pages" / "attention.py"


def brute_force_pooled(spec: plots.PatternSpec, edges: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(max-pooled codes, attended share) per cell from the full exact matrix (small specs only)."""
    exact = plots.pattern_region(spec, 0, spec.padded_length, 0, spec.padded_length)
    starts = edges[:-1]
    codes = np.maximum.reduceat(np.maximum.reduceat(exact, starts, axis=0), starts, axis=1)
    attended = (exact >= BAND).astype(np.float64)
    share = np.add.reduceat(np.add.reduceat(attended, starts, axis=0), starts, axis=1)
    return codes, share / np.outer(np.diff(edges), np.diff(edges))


def word_tokens(text: str) -> DocumentTokens:
    """Whitespace-separated words as tokens, with their character offsets."""
    spans = [(m.start(), m.end()) for m in re.finditer(r"\S+", text)]
    return DocumentTokens(np.zeros(len(spans), dtype=np.int64), np.array(spans, dtype=np.int64))


# --------------------------------------------------------------------------------------------------
# Pattern


def test_band_width_equals_the_window_at_full_resolution():
    w = 5
    spec = plots.pattern_spec(200, w)
    grid = plots.pattern_grid(spec)
    assert grid.cell == 1 and grid.codes.shape == (200, 200)
    widths = (grid.codes == BAND).sum(axis=1)
    assert (widths[w:-w] == 2 * w + 1).all()  # away from the edges the band is exactly 2w+1 keys
    assert widths[0] == w + 1 and widths[-1] == w + 1
    q = np.arange(200)
    assert (grid.codes[q, q] == BAND).all()
    assert grid.codes[100, 100 + w] == BAND and grid.codes[100, 100 + w + 1] == NOT_ATTENDED
    np.testing.assert_array_equal(grid.codes, plots.pattern_region(spec, 0, 200, 0, 200))


def test_global_rows_and_columns_are_full_and_padding_empty():
    n, padded, globals_ = 100, 128, [0, 50]
    spec = plots.pattern_spec(n, 3, globals_, padded_length=padded)
    grid = plots.pattern_grid(spec)
    for g in globals_:
        assert (grid.codes[g, :n] == GLOBAL).all() and (grid.codes[:n, g] == GLOBAL).all()
        assert grid.coverage[g, :n].min() == 1.0
    assert (grid.codes[n:, :] == PADDING).all() and (grid.codes[:, n:] == PADDING).all()
    assert grid.coverage[n:, :].max() == 0.0 and grid.coverage[:, n:].max() == 0.0
    # A non-global row reads its band plus the two global columns, nothing else.
    assert set(np.flatnonzero(grid.codes[30] >= BAND)) == set(range(27, 34)) | {0, 50}


def test_truncated_square_is_exactly_512_tokens_in_a_1000_token_example():
    spec = plots.pattern_spec(1000, 256, [0])
    fig = plots.pattern_figure(plots.pattern_grid(spec))
    (square,) = [s for s in fig.layout.shapes if s.name == "truncated"]
    assert (square.x0, square.y0) == (-0.5, -0.5)
    assert square.x1 - square.x0 == 512 and square.y1 - square.y0 == 512
    heatmap = fig.data[0]
    assert heatmap.x[0] == -0.5 and heatmap.x[-1] == 999.5  # cell edges in token units: the square lines up


def test_max_pooling_keeps_a_single_global_row_visible_at_50k_tokens():
    n, g = 50_000, 31_337
    spec = plots.pattern_spec(n, 256, [g])
    grid = plots.pattern_grid(spec)
    assert max(grid.codes.shape) <= plots.MAX_CELLS and grid.cell > 1
    row = np.searchsorted(grid.row_edges, g, side="right") - 1
    assert (grid.codes[row] == GLOBAL).all() and (grid.codes[:, row] == GLOBAL).all()
    assert 0 < grid.coverage[row, 0] < 0.05  # one row of 84 in the cell is read: visible, yet honest
    assert (grid.codes[row + 5] == GLOBAL).sum() == 1  # other rows only cross the global column
    assert (grid.codes == PADDING).sum() == 0


@pytest.mark.parametrize("seed", range(6))
def test_downsampled_grid_equals_max_pooling_of_the_exact_matrix(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(300, 1000))
    w = int(rng.integers(0, 40))
    if seed % 2:  # one pass, padded like HF
        spec = plots.pattern_spec(
            n, w, rng.choice(n, 7, replace=False), padded_length=plots.padded_length_for(n, w)
        )
    else:  # several overlapping windows: globals reach only their windows
        windows = plan_windows(n, int(rng.integers(n // 4, n // 2)), 2 * w + 10)
        spec = plots.document_pattern_spec(n, w, rng.random(n) < 0.01, True, windows)
        assert len(spec.windows) > 1
    grid = plots.pattern_grid(spec, max_cells=int(rng.integers(20, 120)))
    codes, share = brute_force_pooled(spec, grid.row_edges)
    np.testing.assert_array_equal(grid.codes, codes)
    np.testing.assert_allclose(grid.coverage, share, atol=1e-12)


def test_zoom_is_exact_and_bounded():
    spec = plots.pattern_spec(5000, 256, [0, 4000], padded_length=5120)
    region = plots.pattern_region(spec, 3900, 4100, 0, 600)
    assert region.shape == (200, 600)
    assert (region[100] == GLOBAL).all()  # query 4000 is global: its whole row
    assert (region[:, 0] == GLOBAL).all()  # key 0 is global: the whole column
    assert (region[0, 1:] == NOT_ATTENDED).all()  # query 3900 is far from keys 1..599
    fig = plots.zoom_figure(spec, 4900, 5120, 4900, 5120)
    assert (np.asarray(fig.data[0].z)[-20:, :] == PADDING).all()
    with pytest.raises(ValueError):
        plots.pattern_region(spec, 0, 1001, 0, 10)
    with pytest.raises(ValueError):
        plots.pattern_region(spec, 5000, 5121, 0, 10)


def test_pattern_payload_at_50k_tokens_is_small():
    spec = plots.pattern_spec(50_000, 256, np.arange(0, 50_000, 100), padded_length=50_176)
    fig = plots.pattern_figure(plots.pattern_grid(spec))
    assert len(fig.to_json()) < 5_000_000


def test_document_pattern_spec_one_pass_uses_input_positions():
    doc_global = np.zeros(100, dtype=bool)
    doc_global[[10, 20]] = True
    spec = plots.document_pattern_spec(100, 8, doc_global, True, [(0, 100)])
    assert spec.n == 102 and spec.padded_length == 112  # [CLS] + 100 + [SEP], padded to a multiple of 16
    np.testing.assert_array_equal(spec.global_positions, [0, 11, 21])
    none = plots.document_pattern_spec(100, 8, np.zeros(100, bool), False, [(0, 100)])
    assert none.n_global == 0


def test_cost_counts_exactly_the_attended_pairs():
    spec = plots.pattern_spec(700, 20, [0, 333], padded_length=720)
    exact = plots.pattern_region(spec, 0, 720, 0, 720)
    cost = plots.attention_cost(spec, heads=12, head_dim=32, layers=6)
    assert cost.attended_pairs == int((exact >= BAND).sum())
    assert cost.n_global == 2 and cost.full_pairs == 700 * 700
    assert cost.flops == 4 * 32 * 12 * 6 * cost.attended_pairs
    assert cost.saving == pytest.approx(700 * 700 / cost.attended_pairs)
    band_only = plots.attention_cost(plots.pattern_spec(10_000, 256))
    assert band_only.attended_pairs == 10_000 * 513 - 256 * 257  # the band minus its two clipped corners


@pytest.mark.parametrize("strategy", list(STRATEGIES))
def test_explainer_shows_the_strategy_in_words(strategy):
    words, spec = plots.explainer_pattern(strategy)
    assert len(words) == 32 and spec.window == 4
    fig = plots.explainer_figure(strategy)
    z = np.asarray(fig.data[0].z)
    assert z.shape == (32, 32)
    assert (z[spec.n :, :] == PADDING).all()
    assert (z[0, : spec.n] == GLOBAL).all() == (strategy != "none")  # [CLS] is global except for "none"
    assert "[CLS]" in fig.data[0].x[0] and STRATEGIES[strategy].label in fig.layout.title.text
    if strategy == "question":
        assert set(spec.global_positions) == {0, 1, 2, 3, 4, 5}


# --------------------------------------------------------------------------------------------------
# Per-token attention against the model's probabilities (tiny random Longformer, no download)


@pytest.fixture(scope="module")
def tiny():
    """(fast model, HF reference copy, inputs): 2 layers, 4 heads, window 4 (w=2), 40 tokens, 5 padding."""
    torch.manual_seed(0)
    config = LongformerConfig(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=37,
        attention_window=4,
        vocab_size=99,
        max_position_embeddings=512,
    )
    model = LongformerModel(config).eval()
    reference = copy.deepcopy(model)  # band_attention_probs swaps in the fast kernel in place
    length, real, globals_ = 40, 35, [0, 17]
    ids = torch.randint(3, 99, (1, length))
    attention = torch.zeros(1, length, dtype=torch.long)
    attention[0, :real] = 1
    global_mask = torch.zeros(1, length, dtype=torch.long)
    global_mask[0, globals_] = 1
    return model, reference, ids, attention, global_mask, real, globals_


def hf_dense_row(out, layer: int, head: int, q: int, globals_: list[int], w: int, length: int) -> np.ndarray:
    """One query's attention over all keys, rebuilt from HF's eager outputs (output_attentions=True)."""
    local = out.attentions[layer][0, head].numpy()  # (L, G + 2w + 1): global columns, then the band
    if q in globals_:
        return out.global_attentions[layer][0, head, :, globals_.index(q)].numpy().astype(np.float64)
    row = np.zeros(length)
    for j, g in enumerate(globals_):
        row[g] += local[q, j]
    for c in range(2 * w + 1):
        if 0 <= q - w + c < length:
            row[q - w + c] += local[q, len(globals_) + c]
    return row


def test_token_weights_equal_the_model_probabilities(tiny):
    model, reference, ids, attention, global_mask, real, globals_ = tiny
    probs = band_attention_probs(model, ids, attention, global_mask)
    with torch.no_grad():
        out = reference(
            input_ids=ids, attention_mask=attention, global_attention_mask=global_mask, output_attentions=True
        )
    length = ids.shape[1]
    for layer in range(2):
        for head in range(4):
            att = plots.layer_attention(probs[layer], layer, head, head_index=head)
            for q in range(length):
                weights = plots.token_weights(att, q)
                if q >= real:
                    assert weights.sum() == 0.0  # padding reads nothing
                    continue
                np.testing.assert_allclose(
                    weights, hf_dense_row(out, layer, head, q, globals_, 2, length), atol=1e-6
                )
                assert weights.sum() == pytest.approx(1.0, abs=1e-5)  # band + globals hold all of it
                assert weights[real:].max() == 0.0  # nothing goes to padding


def test_head_average_and_single_head_pass(tiny):
    model, _, ids, attention, global_mask, _, _ = tiny
    probs = band_attention_probs(model, ids, attention, global_mask, layers=[1])
    per_head = [plots.token_weights(plots.layer_attention(probs[1], 1, h, head_index=h), 9) for h in range(4)]
    average = plots.token_weights(plots.layer_attention(probs[1], 1, None), 9)
    np.testing.assert_allclose(average, np.mean(per_head, axis=0), atol=1e-6)
    assert average.sum() == pytest.approx(1.0, abs=1e-5)
    # compute_layer_attention runs the model for one head only and gives the same numbers.
    from longformer_core.reading.encoding import WindowInput

    window = WindowInput(
        ids,
        attention,
        torch.zeros_like(ids),
        global_mask,
        doc_start=1,
        doc_range=(100, 133),
        question_range=None,
    )
    att = plots.compute_layer_attention(model, window, 1, head=2)
    np.testing.assert_allclose(plots.token_weights(att, 9), per_head[2], atol=1e-6)
    tw = plots.document_token_weights(att, 108)  # input position 1 + (108 - 100) = 9
    np.testing.assert_allclose(tw.weights, per_head[2][1:34], atol=1e-6)
    assert tw.specials["start marker"] == pytest.approx(per_head[2][0])
    assert tw.total == pytest.approx(1.0, abs=1e-5)
    np.testing.assert_array_equal(
        tw.global_tokens, [116]
    )  # input 17 -> document token 116; [CLS] is no doc token


def test_band_and_global_views_hold_the_probabilities(tiny):
    model, _, ids, attention, global_mask, _, globals_ = tiny
    probs = band_attention_probs(model, ids, attention, global_mask, layers=[0])
    att = plots.layer_attention(probs[0], 0, 1, head_index=1)
    band = plots.band_view(att)
    np.testing.assert_allclose(band.values, att.local, atol=0)  # small: no pooling
    np.testing.assert_array_equal(band.offset_edges, np.arange(-2, 4))
    pooled = plots.band_view(att, max_rows=8)
    assert pooled.values.shape == (8, 5)
    np.testing.assert_allclose(pooled.values[0], att.local[:5].max(axis=0))
    rows = plots.global_rows_view(att)
    np.testing.assert_allclose(rows.values, att.global_rows, atol=0)
    np.testing.assert_array_equal(rows.doc_tokens, globals_)
    fig = plots.global_rows_figure(rows, ["[CLS]", "<b>x</b>"])
    assert "&lt;b&gt;x&lt;/b&gt;" in fig.layout.yaxis.ticktext


# --------------------------------------------------------------------------------------------------
# Text view and labels: every piece of document text is escaped


def test_text_view_escapes_document_text_and_shades_by_weight():
    text = "Hello <script>alert('x')</script> & friends " * 3 + "end"
    tokens = word_tokens(text)
    n = len(tokens)
    weights = np.full(n, 0.5 / (n - 1))
    weights[2] = 0.5
    tw = plots.TokenWeights(
        token=1,
        doc_range=(0, n),
        weights=weights,
        specials={"start marker": 0.0},
        global_tokens=np.array([], dtype=np.int64),
        window=2,
    )
    out = plots.token_text_html(text, tokens, tw, top_far=3, page_of=lambda _: 1)
    assert "<script>" not in out and "</script>" not in out
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in out and "&amp;" in out
    assert "outline:2px solid" in out  # the chosen token
    assert "rgba(245,133,24,1.00)" in out  # the most-read token is the darkest
    assert "Most-read words further away" in out
    fig = plots.token_attention_figure(tw, label="<script>", marks=[(3, "<i>2</i>")])
    assert "<script>" not in fig.layout.title.text and "&lt;script&gt;" in fig.layout.title.text
    assert all("<i>" not in (a.text or "") for a in fig.layout.annotations)
    np.testing.assert_allclose(np.asarray(fig.data[0].y), weights.astype(np.float32))


def test_word_matches_is_literal_and_whole_word():
    text = "Risk (a.k.a. risk) and risky risk.\nRISK"
    assert [m for m, _ in plots.word_matches(text, "risk")] == [0, 13, 29, 35]  # not "risky"
    assert [m for m, _ in plots.word_matches(text, "a.k.a")] == [6]
    assert plots.word_matches(text, "r.sk") == []  # what users type is not a regex
    assert plots.word_matches(text, "   ") == []
    assert "\n" not in plots.word_matches(text, "RISK")[-1][1]


def test_most_central_window():
    windows = [(0, 100), (60, 160), (120, 220)]
    assert plots.most_central_window(windows, 10) == (0, 100)
    assert plots.most_central_window(windows, 95) == (60, 160)
    assert plots.most_central_window(windows, 215) == (120, 220)
    with pytest.raises(ValueError):
        plots.most_central_window(windows, 220)


# --------------------------------------------------------------------------------------------------
# The real embedded model and the page


def test_real_model_weights_sum_to_one_and_match_band_probs(embedded_pair):
    from longformer_core.documents import text_document
    from longformer_core.reading.document_reading import DocumentReader
    from longformer_core.reading.encoding import build_input

    doc = text_document("The tenant pays rent monthly. Pets are not allowed in the building. " * 40)
    reader = DocumentReader(embedded_pair, doc, strategy="sentences")
    doc_range = plots.token_window(reader, 300)
    assert doc_range == (0, len(reader.long_tokens))
    att = plots.reader_layer_attention(reader, doc_range, layer=5, head=7)
    win = build_input(
        embedded_pair.longformer.tokenizer,
        reader.long_tokens,
        doc_range,
        doc_global=reader.plan.doc_mask,
        global_first=True,
    )
    probs = band_attention_probs(
        embedded_pair.longformer.model,
        win.input_ids,
        win.attention_mask,
        win.global_attention_mask,
        layers=[5],
        heads=[7],
    )[5]
    q = win.doc_start + 300
    local = probs["local"][0, 0, q].numpy()
    weights = plots.token_weights(att, q)
    np.testing.assert_allclose(weights[q - 256 : q + 257][local > 0], local[local > 0], atol=1e-7)
    tw = plots.document_token_weights(att, 300)
    assert tw.total == pytest.approx(1.0, abs=1e-4)
    assert len(tw.global_tokens) == reader.plan.n_doc_global


@pytest.mark.slow
def test_long_document_uses_the_window_around_the_token(embedded_pair):
    from longformer_core.documents import text_document
    from longformer_core.reading.document_reading import DocumentReader

    sentence = "Incident handling teams review every alert, record evidence and report to management. "
    doc = text_document(sentence * 1400)  # ~20,000 tokens: more than one 16,384-token pass
    reader = DocumentReader(embedded_pair, doc, strategy="cls")
    n = len(reader.long_tokens)
    assert n > 16_384
    token = n - 100
    start, end = plots.token_window(reader, token)
    assert start > 0 and end == n and end - start <= 16_382
    att = plots.reader_layer_attention(reader, (start, end), layer=0)
    tw = plots.document_token_weights(att, token)
    assert tw.total == pytest.approx(1.0, abs=1e-4)
    spec = plots.reader_pattern_spec(reader)
    assert len(spec.windows) == 2 and spec.n == n


def test_page_renders_the_plots_with_the_real_model(embedded_pair):
    from streamlit.testing.v1 import AppTest

    from longformer_core.documents import text_document

    text = (
        "The lease starts in May. <script>alert(1)</script> Rent is due each month. Pets are not allowed.\n"
        * 25
    )
    at = AppTest.from_file(str(PAGE), default_timeout=180)
    at.session_state["document"] = text_document(text, "lease.txt")
    at.session_state["strategy"] = "sentences"
    at.run()
    assert not at.exception
    charts = at.get("plotly_chart")
    assert len(charts) == 6  # explainer, pattern, zoom, per-token line, band view, global rows
    assert [m.label for m in at.metric][:2] == ["Tokens", "Global tokens"]
    body = at.get("html")[0].proto.body
    assert "<script" not in body and "</script" not in body
    visible = html.unescape(re.sub(r"<[^>]+>", "", body))  # what a browser shows as text
    assert "<script>alert(1)</script>" in visible

    at.radio(key="attn_mode").set_value("by searching a word").run()
    at.text_input(key="attn_word").input("rent").run()
    assert not at.exception and len(at.selectbox(key="attn_match").options) == 25
    at.selectbox(key="attn_head").set_value(3).run()
    assert not at.exception and len(at.get("plotly_chart")) == 6


def test_page_asks_for_a_document_first():
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(PAGE), default_timeout=60).run()
    assert not at.exception
    assert at.info[0].value.startswith("Choose a document first")
    assert not at.get("plotly_chart")


@pytest.mark.parametrize(
    ("text", "strategy", "keywords", "charts", "error"),
    [
        ("Hi", "none", None, 5, None),  # one token, no global tokens: no global-rows plot, no position slider
        (
            "Rent is due.",
            "keywords",
            None,
            0,
            "Type at least one keyword",
        ),  # the reader's message, shown as is
        ("Rent is due. Pets are not allowed.", "keywords", "rent, pets", 6, None),  # the sidebar's raw text
        ("Rent is due. Pets are not allowed.", "auto", None, 6, None),  # the sidebar's "auto" reads as "cls"
    ],
)
def test_page_edge_cases(embedded_pair, text, strategy, keywords, charts, error):
    from streamlit.testing.v1 import AppTest

    from longformer_core.documents import text_document

    at = AppTest.from_file(str(PAGE), default_timeout=120)
    at.session_state["document"] = text_document(text)
    at.session_state["strategy"] = strategy
    if keywords is not None:
        at.session_state["keywords"] = keywords
    at.run()
    assert not at.exception
    assert len(at.get("plotly_chart")) == charts
    if error is None:
        assert not at.error
    else:
        assert at.error[0].value.startswith(error)
