"""The C attention kernel (longformer_core/model/cpu_attention.c) against PyTorch's attention."""

from __future__ import annotations

import math
import platform

import pytest
import torch

from longformer_core.model import cpu_attention

pytestmark = pytest.mark.skipif(cpu_attention.library() is None, reason="no C compiler to build the kernel")


def _qkv(batch: int, lq: int, lk: int, heads: int, dim: int, dtype: torch.dtype, seed: int = 0):
    """q, k, v as transformers hands them over: (batch, heads, seq, dim) views of (batch, seq, heads, dim)."""
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(batch, lq, heads, dim, generator=g).to(dtype).transpose(1, 2)
    k = torch.randn(batch, lk, heads, dim, generator=g).to(dtype).transpose(1, 2)
    v = torch.randn(batch, lk, heads, dim, generator=g).to(dtype).transpose(1, 2)
    return q, k, v


def _reference(q, k, v, keep, scale):
    mask = None if keep is None else keep[:, None, None, :]
    out = torch.nn.functional.scaled_dot_product_attention(
        q.double(), k.double(), v.double(), attn_mask=mask, scale=scale
    )
    return out.transpose(1, 2)


@pytest.mark.parametrize("dim", [16, 32, 64])
@pytest.mark.parametrize("lq, lk", [(512, 512), (37, 37), (5, 70)])
def test_fp32_matches_pytorch(dim, lq, lk):
    q, k, v = _qkv(3, lq, lk, 2, dim, torch.float32)
    keep = torch.ones(3, lk, dtype=torch.bool)
    keep[1, lk // 2 :] = False  # a padded row
    out = cpu_attention.attention(q, k, v, keep, 1 / math.sqrt(dim))
    assert out.shape == (3, lq, 2, dim) and out.dtype == torch.float32
    torch.testing.assert_close(
        out.double(), _reference(q, k, v, keep, 1 / math.sqrt(dim)), atol=2e-6, rtol=1e-5
    )


def test_bf16_is_as_close_to_exact_as_pytorch():
    """bf16 in and out (and bf16 products where the CPU has them): no further from fp64 than PyTorch's bf16."""
    q, k, v = _qkv(4, 512, 512, 12, 32, torch.bfloat16)
    keep = torch.ones(4, 512, dtype=torch.bool)
    keep[2, 300:] = False
    exact = _reference(q, k, v, keep, 32**-0.5)
    ours = cpu_attention.attention(q, k, v, keep, 32**-0.5)
    assert ours.dtype == torch.bfloat16
    ours = ours.double()
    theirs = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=keep[:, None, None, :])
    ours_err = (ours - exact).norm() / exact.norm()
    theirs_err = (theirs.transpose(1, 2).double() - exact).norm() / exact.norm()
    assert ours_err < 1.5 * theirs_err + 1e-4


def _band_reference(q, k, v, window, keep, global_k, global_v, global_keep):
    """Dense attention with Longformer's band: query i sees kept key j when |i - j| <= window, plus the globals."""
    n = q.shape[2]
    idx = torch.arange(n)
    allowed = ((idx[:, None] - idx[None, :]).abs() <= window)[None, None] & keep[:, None, None, :]
    scores = (q.double() @ k.double().transpose(-1, -2)).masked_fill(~allowed, float("-inf"))
    extra = (q.double() @ global_k.double().transpose(-1, -2)).masked_fill(
        ~global_keep[:, None, None, :], float("-inf")
    )
    probs = torch.cat([extra, scores], dim=-1).softmax(-1)
    return (probs @ torch.cat([global_v, v], dim=2).double()).transpose(1, 2)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("n, window", [(100, 8), (70, 40), (33, 100)])
def test_band_with_global_keys_matches_the_dense_definition(dtype, n, window):
    q, k, v = _qkv(2, n, n, 3, 32, dtype, seed=n)
    global_k, global_v, _ = _qkv(2, 3, 3, 3, 32, dtype, seed=n + 1)
    keep = torch.rand(2, n, generator=torch.Generator().manual_seed(n)) > 0.2
    global_keep = torch.tensor([[True, True, True], [True, False, True]])
    out = cpu_attention.attention(
        q, k, v, keep, 1.0, window=window, global_k=global_k, global_v=global_v, global_keep=global_keep
    )
    expected = _band_reference(q, k, v, window, keep, global_k, global_v, global_keep)
    tol = {"atol": 2e-6, "rtol": 1e-5} if dtype == torch.float32 else {"atol": 0.05, "rtol": 0.02}
    torch.testing.assert_close(out.double(), expected, **tol)


def test_no_mask_and_fully_masked_rows():
    q, k, v = _qkv(2, 20, 20, 3, 32, torch.float32, seed=1)
    out = cpu_attention.attention(q, k, v, None, 0.2)
    torch.testing.assert_close(out.double(), _reference(q, k, v, None, 0.2), atol=2e-6, rtol=1e-5)
    keep = torch.ones(2, 20, dtype=torch.bool)
    keep[0] = False  # a batch row with no key to see
    out = cpu_attention.attention(q, k, v, keep, 0.2)
    assert torch.all(out[0] == 0)
    torch.testing.assert_close(out[1].double(), _reference(q, k, v, keep, 0.2)[1], atol=2e-6, rtol=1e-5)


def test_supports_only_what_it_computes():
    q, k, v = _qkv(1, 8, 8, 2, 32, torch.float32)
    assert cpu_attention.supports(q, k, v)
    assert not cpu_attention.supports(*_qkv(1, 8, 8, 2, 8, torch.float32))  # head width 8
    assert not cpu_attention.supports(q.half(), k.half(), v.half())
    with torch.enable_grad():
        assert not cpu_attention.supports(q.requires_grad_(), k, v)


def _bert(model_type: str):
    from transformers import AutoConfig, AutoModel

    torch.manual_seed(0)
    config = AutoConfig.for_model(
        model_type,
        vocab_size=100,
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=96,
        max_position_embeddings=80,
    )
    return AutoModel.from_config(config).eval()


@pytest.mark.parametrize("model_type", ["bert", "roberta"])
def test_encoder_with_the_kernel_matches_sdpa(model_type):
    model = _bert(model_type)
    ids = torch.randint(5, 100, (3, 60))
    mask = torch.ones(3, 60, dtype=torch.long)
    mask[1, 25:] = 0
    with torch.inference_mode():
        before = model(input_ids=ids, attention_mask=mask).last_hidden_state
        assert cpu_attention.enable(model)
        after = model(input_ids=ids, attention_mask=mask).last_hidden_state
        unpadded = model(input_ids=ids[:1]).last_hidden_state  # no mask at all
    keep = mask.bool()
    torch.testing.assert_close(after[keep], before[keep], atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(unpadded, before[:1], atol=1e-5, rtol=1e-4)


def test_training_falls_back_to_pytorch_and_gets_gradients():
    model = _bert("bert")
    assert cpu_attention.enable(model)
    model.train()
    ids = torch.randint(5, 100, (2, 30))
    mask = torch.ones(2, 30, dtype=torch.long)
    mask[0, 20:] = 0
    model(input_ids=ids, attention_mask=mask).last_hidden_state.sum().backward()
    grad = model.encoder.layer[0].attention.self.query.weight.grad
    assert grad is not None and torch.isfinite(grad).all() and grad.abs().sum() > 0


def test_turned_off_by_the_setting(monkeypatch):
    monkeypatch.setenv("LONGDOC_CPU_KERNEL", "0")
    assert cpu_attention.library() is None
    assert not cpu_attention.enable(_bert("bert"))


def test_a_mask_other_than_padding_goes_to_pytorch():
    """A (batch, 1, lq, lk) mask (a pattern, not padding) is not the kernel's: PyTorch's SDPA gets it as it is."""
    q, k, v = _qkv(2, 12, 12, 2, 32, torch.float32)
    causal = torch.ones(12, 12, dtype=torch.bool).tril()[None, None].expand(2, 1, 12, 12)
    out, _ = cpu_attention._forward(torch.nn.Module().eval(), q, k, v, causal, scaling=0.2)
    expected = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=causal, scale=0.2)
    torch.testing.assert_close(out, expected.transpose(1, 2))


@pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64"), reason="builds for an x86-64 level")
def test_a_build_without_avx512_is_correct_but_not_used(tmp_path, monkeypatch):
    """Built for AVX2 the kernel still computes the same, but says it is not fast here (the loader skips it)."""
    lib = cpu_attention.load(cpu_attention.build(tmp_path, march="x86-64-v3"))
    assert lib.ld_fast_here() == 0
    monkeypatch.setitem(cpu_attention._state, "lib", lib)
    q, k, v = _qkv(2, 40, 40, 2, 32, torch.float32, seed=3)
    keep = torch.ones(2, 40, dtype=torch.bool)
    keep[1, 30:] = False
    out = cpu_attention.attention(q, k, v, keep, 1.0, window=8)
    expected = _band_reference(q, k, v, 8, keep, q[:, :, :0], v[:, :, :0], torch.ones(2, 0, dtype=torch.bool))
    seen = expected.isfinite().all(-1)  # rows 38-39 of example 1 have no key to see: any row will do there
    assert seen.sum() == 2 * 40 * 2 - 2 * 2
    torch.testing.assert_close(out.double()[seen], expected[seen], atol=2e-6, rtol=1e-5)
