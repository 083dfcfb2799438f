"""The all-blocks-at-once attention used by gradient passes: same outputs and gradients as the references."""

from __future__ import annotations

import pytest
import torch
from transformers.models.longformer.modeling_longformer import LongformerSelfAttention

from longformer_core.model.attention import fast_attention_layers, sliding_window_attention
from longformer_core.model.grad_attention import autograd_attention, blocked_window_attention
from longformer_core.model.registry import load_checkpoint

CASES = [  # batch, seq, heads, head_dim, window, n_global, block
    (1, 37, 2, 4, 4, 0, 3),  # a short last block, no globals
    (2, 100, 3, 8, 8, 3, 8),  # two examples, the second with an unused global slot
    (1, 513, 2, 8, 16, 2, 128),  # block larger than the window (clamped)
    (2, 50, 2, 4, 4, 2, 2),
    (1, 5, 1, 4, 8, 1, 256),  # a sequence shorter than the window
]


def _inputs(batch: int, n: int, heads: int, head_dim: int, n_global: int, seed: int = 0) -> dict:
    gen = torch.Generator().manual_seed(seed)
    q, k, v = (torch.randn(batch, n, heads, head_dim, generator=gen) for _ in range(3))
    key_mask = torch.rand(batch, n, generator=gen) < 0.1
    extra = {}
    if n_global:
        global_mask = torch.zeros(batch, n_global, dtype=torch.bool)
        global_mask[1:, -1] = True
        extra = {
            "global_k": torch.randn(batch, n_global, heads, head_dim, generator=gen),
            "global_v": torch.randn(batch, n_global, heads, head_dim, generator=gen),
            "global_mask": global_mask,
        }
    return {"q": q, "k": k, "v": v, "key_mask": key_mask, **extra}


@pytest.mark.parametrize(("batch", "n", "heads", "head_dim", "window", "n_global", "block"), CASES)
def test_blocked_kernel_equals_the_inference_kernel(batch, n, heads, head_dim, window, n_global, block):
    inputs = _inputs(batch, n, heads, head_dim, n_global)
    reference, _ = sliding_window_attention(window=window, **inputs)
    out = blocked_window_attention(window=window, block=block, **inputs)
    assert out.shape == reference.shape and out.is_contiguous()
    torch.testing.assert_close(out, reference, atol=2e-6, rtol=1e-5)


def test_blocked_kernel_gradients_equal_the_loop_kernels():
    """Gradients w.r.t. queries, keys, values and the global keys/values match the block loop's (autograd
    through the inference kernel's plain loop, slow but exact)."""
    inputs = _inputs(2, 70, 2, 4, 3, seed=1)
    leaves = {k: v.requires_grad_(True) for k, v in inputs.items() if v.dtype.is_floating_point}
    weights = torch.randn(2, 70, 2, 4)

    def grads(fn) -> tuple[torch.Tensor, ...]:
        out = fn()
        return torch.autograd.grad((out * weights).sum(), list(leaves.values()))

    reference = grads(lambda: sliding_window_attention(window=6, **inputs)[0])
    blocked = grads(lambda: blocked_window_attention(window=6, block=4, **inputs))
    for name, a, b in zip(leaves, blocked, reference, strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4, msg=name)


def test_autograd_attention_matches_hf_gradients_and_restores_the_model(tiny_checkpoint):
    """Inside the context a whole tiny Longformer QA model gives HF's input gradients; afterwards the layers
    are the inference kernel again and the parameters trainable as before."""
    fast = load_checkpoint(str(tiny_checkpoint("longformer-qa"))).model
    hf = load_checkpoint(str(tiny_checkpoint("longformer-qa")), fast_attention=False).model
    assert fast_attention_layers(fast) and not fast_attention_layers(hf)
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(5, hf.config.vocab_size, (1, 61), generator=gen)
    global_mask = torch.zeros_like(ids)
    global_mask[0, :4] = 1

    def input_grad(model: torch.nn.Module) -> torch.Tensor:
        emb = model.get_input_embeddings()(ids).detach().requires_grad_(True)
        out = model(inputs_embeds=emb, attention_mask=torch.ones_like(ids), global_attention_mask=global_mask)
        (grad,) = torch.autograd.grad(out.start_logits[0, 30] + out.end_logits[0, 33], emb)
        return grad

    reference = input_grad(hf)
    with autograd_attention(fast) as switched:
        assert switched == fast.config.num_hidden_layers
        assert not any(p.requires_grad for p in fast.parameters())
        grad = input_grad(fast)
    torch.testing.assert_close(grad, reference, atol=1e-5, rtol=1e-4)
    assert all(p.requires_grad for p in fast.parameters())
    assert all("_local" not in layer.__dict__ for layer in fast_attention_layers(fast))
    assert all(isinstance(m, LongformerSelfAttention) for m in fast_attention_layers(fast))
