"""Exactness of longformer_core.model.attention against HF's LongformerSelfAttention (tiny random models, no downloads)."""

from __future__ import annotations

import copy

import pytest
import torch
from transformers import LongformerConfig, LongformerForQuestionAnswering, LongformerModel, PreTrainedModel
from transformers.models.longformer.modeling_longformer import LongformerSelfAttention

from longformer_core.model import attention
from longformer_core.model.attention import (
    FastLongformerSelfAttention,
    band_attention_probs,
    hf_layer_inputs,
    sliding_window_attention,
    use_fast_attention,
)

LAYER_TOL = 1e-5
MODEL_TOL = 1e-4


def tiny_config(window: int | list[int] = 4, **overrides) -> LongformerConfig:
    """The shape HF's own Longformer tests use."""
    settings = {
        "vocab_size": 99,
        "hidden_size": 32,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "intermediate_size": 37,
        "max_position_embeddings": 512,
        "attention_window": window,
        "hidden_act": "gelu",
        "type_vocab_size": 2,
    }
    return LongformerConfig(**(settings | overrides))


def masks(lengths: list[int], globals_: list[list[int]], seq: int) -> tuple[torch.Tensor, torch.Tensor]:
    """attention_mask (1 = token) and global_attention_mask (1 = global) for a padded batch."""
    attention = torch.zeros(len(lengths), seq, dtype=torch.long)
    global_ = torch.zeros(len(lengths), seq, dtype=torch.long)
    for b, (length, positions) in enumerate(zip(lengths, globals_)):
        attention[b, :length] = 1
        global_[b, positions] = 1
    return attention, global_


def hf_and_fast_layer(
    window: int = 8, hidden: int = 32, heads: int = 4
) -> tuple[LongformerSelfAttention, FastLongformerSelfAttention]:
    config = tiny_config([window], hidden_size=hidden, num_attention_heads=heads)
    torch.manual_seed(0)
    hf = LongformerSelfAttention(config, layer_id=0).eval()
    for linear in hf.children():  # HF's init leaves biases at zero; random ones test the bias handling
        torch.nn.init.normal_(linear.bias, std=0.02)
    return hf, FastLongformerSelfAttention.from_hf(hf)


def dense_reference(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    window: int,
    key_mask: torch.Tensor | None = None,
    global_k: torch.Tensor | None = None,
    global_v: torch.Tensor | None = None,
    global_mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Plain seq x seq attention with the band mask: the definition the kernel must match."""
    batch, n, _, _ = q.shape
    idx = torch.arange(n)
    allowed = ((idx[:, None] - idx[None, :]).abs() <= window).expand(batch, n, n)
    if key_mask is not None:
        allowed = allowed & ~key_mask[:, None, :]
    scores = torch.einsum("bihd,bjhd->bhij", q, k).masked_fill(~allowed[:, None], float("-inf"))
    values = v
    if global_k is not None:
        extra = torch.einsum("bihd,bghd->bhig", q, global_k)
        if global_mask is not None:
            extra = extra.masked_fill(global_mask[:, None, None, :], float("-inf"))
        scores = torch.cat([extra, scores], dim=-1)
        values = torch.cat([global_v, v], dim=1)
    return torch.einsum("bhij,bjhd->bihd", scores.softmax(-1), values)


# --------------------------------------------------------------------------------------------------
# Kernel


@pytest.mark.parametrize(
    ("n", "window", "block"),
    [(37, 4, None), (13, 4, 3), (5, 8, None), (64, 2, 5), (40, 6, 64)],
    ids=["odd-length", "block-not-dividing", "shorter-than-window", "many-blocks", "block-larger-than-seq"],
)
def test_kernel_matches_dense_reference(n: int, window: int, block: int | None) -> None:
    torch.manual_seed(n)
    q, k, v = (torch.randn(2, n, 3, 8) for _ in range(3))
    key_mask = torch.rand(2, n) < 0.2
    key_mask[0, n - n // 3 :] = True  # padding at the end of example 0
    out, probs = sliding_window_attention(q, k, v, window, key_mask=key_mask, block=block)
    expected = dense_reference(q, k, v, window, key_mask)
    assert probs is None
    keep = ~key_mask  # a query whose own key is allowed has a non-empty row; the module zeroes the others
    assert (out - expected)[keep].abs().max() <= LAYER_TOL


def test_kernel_global_columns_and_probs() -> None:
    torch.manual_seed(1)
    n, window = 21, 3
    q, k, v = (torch.randn(2, n, 2, 4) for _ in range(3))
    global_k, global_v = torch.randn(2, 2, 2, 4), torch.randn(2, 2, 2, 4)
    global_mask = torch.tensor([[False, False], [False, True]])
    out, probs = sliding_window_attention(
        q,
        k,
        v,
        window,
        global_k=global_k,
        global_v=global_v,
        global_mask=global_mask,
        probs_heads=[1],
        block=4,
    )
    expected = dense_reference(q, k, v, window, None, global_k, global_v, global_mask)
    assert (out - expected).abs().max() <= LAYER_TOL
    assert probs.shape == (2, n, 1, 2 + 2 * window + 1)
    assert torch.allclose(probs.sum(-1), torch.ones(2, n, 1), atol=1e-6)
    assert (probs[1, :, :, 1] == 0).all()  # the unused global slot
    assert (probs[:, 0, :, 2 : 2 + window] == 0).all()  # keys before the sequence start
    assert (probs[:, -1, :, -window:] == 0).all()  # keys after its end


def test_worker_pool_and_inline_loop_agree(monkeypatch: pytest.MonkeyPatch) -> None:
    torch.manual_seed(2)
    q, k, v = (torch.randn(2, 50, 2, 4) for _ in range(3))
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        pooled = sliding_window_attention(q, k, v, 4, block=4)[0]
        assert torch.get_num_threads() == 2  # the single-threaded workers leave the caller's setting alone
    finally:
        torch.set_num_threads(threads)
    monkeypatch.setattr(attention, "worker_pool", lambda: None)
    assert torch.equal(sliding_window_attention(q, k, v, 4, block=4)[0], pooled)


def test_worker_threads_follow_callers_grad_mode() -> None:
    """Inputs that require grad, used under no_grad: workers must not record autograd either."""
    q, k, v = (torch.randn(1, 40, 2, 4, requires_grad=True) for _ in range(3))
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with torch.no_grad():
            out = sliding_window_attention(q, k, v, 4, block=4)[0]
    finally:
        torch.set_num_threads(threads)
    assert not out.requires_grad
    assert (out - dense_reference(q, k, v, 4)).abs().max() <= LAYER_TOL


# --------------------------------------------------------------------------------------------------
# One layer against HF's LongformerSelfAttention (same weights)

LAYER_CASES = {
    "local-only": ([32], [[]]),
    "one-global": ([32], [[0]]),
    "many-globals": ([48], [[0, 1, 2, 3, 7, 20, 21, 40, 47]]),
    "padding": ([29], [[0]]),
    "mixed-batch": ([48, 17, 33], [[0, 5, 6], [], [32]]),
}


@pytest.mark.parametrize("case", LAYER_CASES)
def test_layer_matches_hf(case: str) -> None:
    lengths, globals_ = LAYER_CASES[case]
    hf, fast = hf_and_fast_layer(window=8)
    seq = -(-max(lengths) // 8) * 8  # what LongformerModel hands its layers: a multiple of the window
    attention, global_ = masks(lengths, globals_, seq)
    inputs = hf_layer_inputs(attention, global_)
    hidden = torch.randn(len(lengths), seq, 32)
    with torch.no_grad():
        expected = hf(hidden, output_attentions=True, **inputs)
        got = fast(hidden, output_attentions=True, **inputs)
    assert len(got) == len(expected)
    for ours, theirs in zip(got, expected):
        assert ours.shape == theirs.shape
        assert (ours - theirs).abs().max() <= LAYER_TOL


@pytest.mark.skipif(attention.cpu_attention.library() is None, reason="no C compiler to build the kernel")
@pytest.mark.parametrize("case", LAYER_CASES)
def test_layer_with_the_c_kernel_matches_hf(case: str) -> None:
    """Head width 32 (MiniLM's): the band and global columns go through cpu_attention.c."""
    lengths, globals_ = LAYER_CASES[case]
    hf, fast = hf_and_fast_layer(window=8, hidden=64, heads=2)
    seq = -(-max(lengths) // 8) * 8
    attention_mask, global_ = masks(lengths, globals_, seq)
    inputs = hf_layer_inputs(attention_mask, global_)
    hidden = torch.randn(len(lengths), seq, 64)
    with torch.no_grad():
        expected, got = hf(hidden, **inputs)[0], fast(hidden, **inputs)[0]
    assert (got - expected).abs().max() <= LAYER_TOL


def test_many_globals_use_hf_projection_path() -> None:
    """With G*heads >= hidden the global rows project every token, like HF; still exact."""
    hf, fast = hf_and_fast_layer(window=4, hidden=16, heads=4)
    attention, global_ = masks([16, 12], [list(range(0, 16, 3)), [1, 2, 3, 4]], 16)
    inputs = hf_layer_inputs(attention, global_)
    hidden = torch.randn(2, 16, 16)
    with torch.no_grad():
        expected, got = hf(hidden, **inputs)[0], fast(hidden, **inputs)[0]
    assert (got - expected).abs().max() <= LAYER_TOL


def test_layer_without_mask_arguments_means_all_local() -> None:
    hf, fast = hf_and_fast_layer(window=4)
    hidden = torch.randn(1, 16, 32)
    inputs = hf_layer_inputs(torch.ones(1, 16, dtype=torch.long))
    with torch.no_grad():
        assert (fast(hidden)[0] - hf(hidden, **inputs)[0]).abs().max() <= LAYER_TOL


def test_gradients_match_hf() -> None:
    """With autograd on, the kernel runs its plain loop; gradients flow like HF's."""
    hf, fast = hf_and_fast_layer(window=4)
    inputs = hf_layer_inputs(*masks([16], [[0, 9]], 16))
    hidden = torch.randn(1, 16, 32, requires_grad=True)
    grads = []
    for layer in (hf, fast):
        (layer(hidden, **inputs)[0] ** 2).sum().backward()
        grads.append((hidden.grad.clone(), layer.key_global.weight.grad.clone()))
        hidden.grad = None
        layer.zero_grad()
    for ours, theirs in zip(grads[1], grads[0]):
        assert (ours - theirs).abs().max() <= LAYER_TOL


def test_training_mode_with_dropout_is_hf() -> None:
    hf, fast = hf_and_fast_layer(window=4)
    hf.dropout = fast.dropout = 0.5
    hf.train(), fast.train()
    inputs = hf_layer_inputs(*masks([16], [[0]], 16))
    hidden = torch.randn(1, 16, 32)
    torch.manual_seed(3)
    expected = hf(hidden, **inputs)[0]
    torch.manual_seed(3)
    assert torch.equal(fast(hidden, **inputs)[0], expected)


# --------------------------------------------------------------------------------------------------
# Whole models after use_fast_attention


def model_pair(
    cls: type[PreTrainedModel], window: int | list[int]
) -> tuple[PreTrainedModel, PreTrainedModel]:
    """An HF Longformer model with random weights, and a deep copy of it with fast attention."""
    torch.manual_seed(0)
    hf = cls(tiny_config(window)).eval()
    return hf, use_fast_attention(copy.deepcopy(hf))


def model_inputs(lengths: list[int], globals_: list[list[int]], seq: int) -> dict[str, torch.Tensor]:
    torch.manual_seed(sum(lengths))
    attention, global_ = masks(lengths, globals_, seq)
    ids = torch.randint(3, 99, (len(lengths), seq)).masked_fill(attention == 0, 1)
    return {"input_ids": ids, "attention_mask": attention, "global_attention_mask": global_}


MODEL_CASES = {
    "local-only": (4, [23], [[]]),
    "per-layer-windows-odd-length": ([4, 8], [37], [[0]]),
    "mixed-batch": ([4, 8], [41, 9, 30], [[0, 1, 2], [], [29]]),
    "many-globals": (4, [26], [list(range(0, 26, 2))]),
}


@pytest.mark.parametrize("case", MODEL_CASES)
def test_model_matches_hf(case: str) -> None:
    window, lengths, globals_ = MODEL_CASES[case]
    hf, fast = model_pair(LongformerModel, window)
    inputs = model_inputs(lengths, globals_, max(lengths))
    with torch.no_grad():
        expected = hf(**inputs, output_attentions=True)
        got = fast(**inputs, output_attentions=True)
    assert (got.last_hidden_state - expected.last_hidden_state).abs().max() <= MODEL_TOL
    assert len(got.attentions) == len(expected.attentions)
    for ours, theirs in zip(got.attentions, expected.attentions):
        assert ours.shape == theirs.shape
        assert (ours - theirs).abs().max() <= LAYER_TOL
    assert (got.global_attentions is None) == (expected.global_attentions is None)
    for ours, theirs in zip(got.global_attentions or (), expected.global_attentions or ()):
        # (batch, heads, seq, n_global): HF keeps its window padding as extra key positions (probability 0
        # for a real global token); inference here reads no padding. An example with fewer global tokens
        # than the batch has arbitrary columns in the unused slots.
        n = ours.shape[2]
        for b, used in enumerate(inputs["global_attention_mask"].sum(1).tolist()):
            assert torch.allclose(ours[b, ..., :used], theirs[b, :, :n, :used], atol=LAYER_TOL, rtol=0)
            assert not theirs[b, :, n:, :used].any()


def test_question_answering_logits_match_hf() -> None:
    hf, fast = model_pair(LongformerForQuestionAnswering, [4, 8])
    inputs = model_inputs([30, 19], [[0, 1, 2, 3], [0, 1]], 30)
    with torch.no_grad():
        expected, got = hf(**inputs), fast(**inputs)
    assert (got.start_logits - expected.start_logits).abs().max() <= MODEL_TOL
    assert (got.end_logits - expected.end_logits).abs().max() <= MODEL_TOL


def test_model_under_inference_mode_matches_hf() -> None:
    """inference_mode is thread-local: the worker threads must write the caller's inference tensors."""
    hf, fast = model_pair(LongformerModel, 4)
    inputs = model_inputs([70], [[0]], 70)
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with torch.inference_mode():
            got = fast(**inputs).last_hidden_state
            expected = hf(**inputs).last_hidden_state
    finally:
        torch.set_num_threads(threads)
    assert (got - expected).abs().max() <= MODEL_TOL


def test_use_fast_attention_shares_weights_and_is_idempotent() -> None:
    torch.manual_seed(0)
    model = LongformerForQuestionAnswering(tiny_config([4, 8])).eval()
    before = model.state_dict()
    weight = model.longformer.encoder.layer[1].attention.self.key_global.weight
    assert use_fast_attention(model) is model
    layers = [layer.attention.self for layer in model.longformer.encoder.layer]
    assert all(type(layer) is FastLongformerSelfAttention for layer in layers)
    assert layers[1].key_global.weight is weight
    assert [layer.one_sided_attn_window_size for layer in layers] == [2, 4]
    use_fast_attention(model)
    assert [layer.attention.self for layer in model.longformer.encoder.layer] == layers
    after = model.state_dict()
    assert list(after) == list(before)
    assert all(after[key].data_ptr() == before[key].data_ptr() for key in before)


def test_bf16_autocast_close_to_fp32() -> None:
    hf, fast = model_pair(LongformerModel, [4, 8])
    inputs = model_inputs([40, 25], [[0], [0, 3]], 40)
    with torch.no_grad():
        reference = hf(**inputs).last_hidden_state
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low = fast(**inputs).last_hidden_state
    assert low.isfinite().all()
    cosine = torch.nn.functional.cosine_similarity(low.float().flatten(1), reference.flatten(1), dim=-1)
    assert cosine.min() >= 0.999


# --------------------------------------------------------------------------------------------------
# band_attention_probs


def test_band_attention_probs_match_hf_attentions() -> None:
    hf, fast = model_pair(LongformerModel, [4, 8])
    inputs = model_inputs([21, 14], [[0, 5], [2]], 21)
    with torch.no_grad():
        expected = hf(**inputs, output_attentions=True)
    probes = band_attention_probs(fast, **inputs, layers=[1], heads=[0, 3])
    assert list(probes) == [1]
    layer = probes[1]
    window = layer["window"]
    assert window == 4
    # HF's attentions: (batch, heads, seq, n_global + 2w + 1); n_global = 2 here.
    hf_local = expected.attentions[1][:, [0, 3]]
    assert layer["local"].shape == (2, 2, 21, 2 * window + 1)
    assert (layer["local"] - hf_local[..., 2:]).abs().max() <= LAYER_TOL
    assert (layer["global_columns"] - hf_local[..., :2]).abs().max() <= LAYER_TOL
    hf_rows = expected.global_attentions[1][:, [0, 3]].transpose(2, 3)[..., :21]
    assert layer["global_positions"].tolist() == [[0, 5], [2, -1]]
    valid = layer["global_positions"] >= 0  # the unused slot's row is arbitrary (uniform over HF's padding)
    diff = (layer["global_rows"] - hf_rows).abs().amax(dim=(1, 3))
    assert diff[valid].max() <= LAYER_TOL
    assert all(
        module.probe is None for module in fast.modules() if isinstance(module, FastLongformerSelfAttention)
    )


def test_band_attention_probs_swaps_in_fast_attention_and_handles_no_globals() -> None:
    torch.manual_seed(0)
    model = LongformerModel(tiny_config(4)).eval()
    ids = torch.randint(3, 99, (1, 10))
    probes = band_attention_probs(model, ids)
    assert sorted(probes) == [0, 1]
    assert "global_rows" not in probes[0]
    assert probes[0]["local"].shape == (1, 4, 10, 5)
    assert torch.allclose(probes[0]["local"].sum(-1), torch.ones(1, 4, 10), atol=1e-6)
    assert isinstance(model.encoder.layer[0].attention.self, FastLongformerSelfAttention)


@pytest.mark.parametrize("case", MODEL_CASES)
def test_model_under_bf16_autocast_and_inference_mode_tracks_fp32(case: str) -> None:
    """The reading path (longformer_core.reading.encoding) runs this way where the CPU has native bf16:
    padding, global tokens and the worker threads must all keep working in bf16."""
    window, lengths, globals_ = MODEL_CASES[case]
    hf, fast = model_pair(LongformerModel, window)
    inputs = model_inputs(lengths, globals_, max(lengths))
    threads = torch.get_num_threads()
    torch.set_num_threads(2)  # the worker pool, so its threads inherit the caller's autocast
    try:
        with torch.inference_mode():
            reference = hf(**inputs).last_hidden_state
            with torch.autocast("cpu", dtype=torch.bfloat16):
                low = fast(**inputs, output_attentions=True)
    finally:
        torch.set_num_threads(threads)
    real = inputs["attention_mask"].bool()
    got = low.last_hidden_state.float()[real]
    assert got.isfinite().all()
    cosine = torch.nn.functional.cosine_similarity(got, reference[real], dim=-1)
    assert cosine.min() >= 0.999, cosine.min()
    for probs in low.attentions:  # the probabilities the attention plots read are finite in bf16 too
        assert probs.isfinite().all()


def test_inference_reads_only_the_real_tokens_training_pads_to_the_window() -> None:
    """HF pads every input to a multiple of the window for its chunked attention; the band kernel does not
    need it, so at inference the layers see only the real tokens (the result is the same: test above)."""
    _, fast = model_pair(LongformerModel, 8)
    seen: list[int] = []
    fast.encoder.layer[0].register_forward_hook(lambda m, args, out: seen.append(args[0].shape[1]))
    inputs = model_inputs([21], [[0]], 21)
    with torch.no_grad():
        fast(**inputs)
        fast.train()
        fast(**inputs)
    assert seen == [21, 24]


@pytest.mark.parametrize(
    ("window", "lengths", "globals_"),
    [(16, [15, 6], [[0, 3], [1]]), (16, [17], [[]]), ([16, 32], [12, 17, 3], [[0], [], [0, 1, 2]])],
    ids=["mixed-batch", "exactly-the-band", "per-layer-windows"],
)
def test_inputs_within_the_band_take_the_dense_path_and_match_hf(
    window: int | list[int], lengths: list[int], globals_: list[list[int]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Inputs of at most 2w + 1 tokens run one masked dense attention; outputs equal HF's (padded) model."""
    from longformer_core.model import attention

    hf, fast = model_pair(LongformerForQuestionAnswering, window)
    inputs = model_inputs(lengths, globals_, max(lengths))

    def no_band(*args: object, **kwargs: object) -> None:
        raise AssertionError("the band kernel ran for an input within the band")

    monkeypatch.setattr(attention, "sliding_window_attention", no_band)
    with torch.no_grad():
        expected, got = hf(**inputs), fast(**inputs)
    real = inputs["attention_mask"].bool()
    for name in ("start_logits", "end_logits"):
        diff = (getattr(got, name) - getattr(expected, name)).abs()[real].max()
        assert diff <= MODEL_TOL, (name, diff)
