"""Sliding-window + global attention as a few large tensor ops, for passes that need gradients.

The fast inference kernel (attention.py) loops over query blocks in Python and writes each block into
one output tensor. Under autograd every such write is a `CopySlices` node whose backward clones the whole
gradient, so a 4,096-token backward did ~64 full-size copies per layer (372 s where the forward took
1 s). Hugging Face's chunked attention backpropagates through padding, `as_strided` and slice
assignments: most of its backward is `copy_`/`fill_` of zero-filled buffers (26 of 44 s CPU in a
profile of the evidence pass, docs/results.md, "Evidence time").

Here every query block is one "batch row" of PyTorch's fused `scaled_dot_product_attention` (forward and
backward without materialising the probabilities). Keys and values are padded by `w` on both sides and
`unfold`ed into overlapping windows of `block + 2w` rows, one per block, behind the global keys; one
additive mask per block (shared by the heads) keeps the band and drops masked keys::

    keys (padded)      [ w zeros | k0 ... k(n-1) | pad + w zeros ]
    keys of block i    [ global keys | i*block - w ... (i+1)*block + w )     (G + block + 2w)
    allowed            global slot in use, or 0 <= key - query + w <= 2w, key in [0, n), not masked

It computes the band `(block + 2w) / (2w + 1)` times over (1.5x for block = w = 256: fastest of 64, 128
and 256 per CPU second on this machine). The core runs in fp32 even under bf16 autocast: on CPU the fused
kernel was slower in bf16 than in fp32 (casts), and softmax gradients are more precise. Same results as
the inference kernel to fp32 rounding; used only while `autograd_attention` is active.
"""

from __future__ import annotations

import contextlib
import functools
import math
from collections.abc import Iterator, Sequence

import torch
from torch import Tensor, nn

GRAD_BLOCK = 256  # query rows per block; clamped to the window so every padded query row sees a real key


def blocked_window_attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    window: int,
    *,
    key_mask: Tensor | None = None,
    global_k: Tensor | None = None,
    global_v: Tensor | None = None,
    global_mask: Tensor | None = None,
    block: int = GRAD_BLOCK,
) -> Tensor:
    """Sliding-window attention (|i - j| <= window) plus optional global key columns, all blocks at once.

    Same contract as `attention.sliding_window_attention` without probabilities.

    Args:
        q: (batch, seq, heads, head_dim) queries, already scaled by 1/sqrt(head_dim).
        k: (batch, seq, heads, head_dim) keys.
        v: (batch, seq, heads, head_dim) values.
        window: one-sided window w.
        key_mask: (batch, seq) bool, True for keys removed from every band (padding, global tokens).
        global_k: (batch, n_global, heads, head_dim) keys every query attends to.
        global_v: (batch, n_global, heads, head_dim) their values.
        global_mask: (batch, n_global) bool, True for unused global slots.
        block: query rows per block; clamped to [1, window] so no row's window is all padding.
    Returns:
        (batch, seq, heads, head_dim) fp32, contiguous, a new tensor (safe to write into).
    """
    batch, n, heads, head_dim = q.shape
    block = max(1, min(block, window, n))
    n_blocks = -(-n // block)
    tail = n_blocks * block - n  # query rows added to fill the last block
    with torch.autocast(q.device.type, enabled=False):
        q, k, v = q.float(), k.float(), v.float()
        queries = nn.functional.pad(q.transpose(1, 2), (0, 0, 0, tail))  # (batch, heads, n_blocks*block, d)
        queries = queries.view(batch, heads, n_blocks, block, head_dim).transpose(1, 2)
        keys, values = _windows(k, window, block, tail), _windows(v, window, block, tail)
        allowed = _allowed(key_mask, batch, n, window, block, n_blocks, tail, q.device)
        if global_k is not None:
            n_global = global_k.shape[1]
            used = torch.ones(batch, n_global, dtype=torch.bool, device=q.device)
            if global_mask is not None:
                used = ~global_mask
            allowed = torch.cat([used[:, None, None, :].expand(-1, n_blocks, block, -1), allowed], dim=-1)
            keys = torch.cat([_per_block(global_k.float(), n_blocks), keys], dim=3)
            values = torch.cat([_per_block(global_v.float(), n_blocks), values], dim=3)
        bias = torch.zeros(allowed.shape, dtype=q.dtype, device=q.device)
        bias.masked_fill_(~allowed, torch.finfo(q.dtype).min)  # (batch, n_blocks, block, keys per block)
        out = nn.functional.scaled_dot_product_attention(
            queries.reshape(batch * n_blocks, heads, block, head_dim),
            keys.reshape(batch * n_blocks, heads, -1, head_dim),
            values.reshape(batch * n_blocks, heads, -1, head_dim),
            attn_mask=bias.view(batch * n_blocks, 1, block, -1),
            scale=1.0,  # q is already scaled
        )  # (batch * n_blocks, heads, block, d)
        out = out.view(batch, n_blocks, heads, block, head_dim).transpose(2, 3)
        # A copy: the fused kernel's output may already lie in this layout, and callers write into it.
        return out.reshape(batch, n_blocks * block, heads, head_dim)[:, :n].clone(
            memory_format=torch.contiguous_format
        )


def _windows(x: Tensor, window: int, block: int, tail: int) -> Tensor:
    """(batch, seq, heads, d) -> (batch, n_blocks, heads, block + 2w, d): each block's keys, a view."""
    padded = nn.functional.pad(x.transpose(1, 2), (0, 0, window, tail + window))
    return padded.unfold(2, block + 2 * window, block).permute(0, 2, 1, 4, 3)


def _per_block(x: Tensor, n_blocks: int) -> Tensor:
    """(batch, n_global, heads, d) -> (batch, n_blocks, heads, n_global, d), a broadcast view."""
    return x.transpose(1, 2)[:, None].expand(-1, n_blocks, -1, -1, -1)


def _allowed(
    key_mask: Tensor | None,
    batch: int,
    n: int,
    window: int,
    block: int,
    n_blocks: int,
    tail: int,
    device: torch.device,
) -> Tensor:
    """(batch, n_blocks, block, block + 2w) bool: which window column each query row may read."""
    span = block + 2 * window
    offset = torch.arange(span, device=device)[None, :] - torch.arange(block, device=device)[:, None]
    band = (offset >= 0) & (offset <= 2 * window)  # (block, span)
    real = torch.ones(batch, n, dtype=torch.bool, device=device)
    if key_mask is not None:
        real = ~key_mask
    real = nn.functional.pad(real, (window, tail + window), value=False)  # (batch, n + tail + 2w)
    keys_ok = real.unfold(1, span, block)  # (batch, n_blocks, span)
    return band[None, None] & keys_ok[:, :, None, :]


def _blocked_local(
    layer: nn.Module,
    hidden_states: Tensor,
    key_mask: Tensor,
    glob: object | None,
    probs_heads: Sequence[int] | None,
) -> tuple[Tensor, Tensor | None]:
    """`FastLongformerSelfAttention._local` with the all-blocks-at-once kernel (no probabilities)."""
    if probs_heads is not None:  # attention maps asked for: the inference kernel keeps them
        return type(layer)._local(layer, hidden_states, key_mask, glob, probs_heads)
    batch, n, _ = hidden_states.shape
    shape = (batch, n, layer.num_heads, layer.head_dim)
    q = layer.query(hidden_states) / math.sqrt(layer.head_dim)
    k = layer.key(hidden_states).view(shape)
    v = layer.value(hidden_states).view(shape)
    extra = {}
    if glob is not None:
        extra = {"global_k": glob.gather(k), "global_v": glob.gather(v), "global_mask": ~glob.valid}
    out = blocked_window_attention(
        q.view(shape), k, v, layer.one_sided_attn_window_size, key_mask=key_mask, **extra
    )
    return out.to(v.dtype), None  # the layer's dtype (bf16 under autocast), as the inference kernel


@contextlib.contextmanager
def autograd_attention(module: nn.Module) -> Iterator[int]:
    """For the duration: the fast attention layers of `module` run the all-blocks kernel, weights frozen.

    The kernel is exact, so an inference pass of the same (shared) model running meanwhile stays correct.
    Parameters get `requires_grad=False` (restored afterwards): gradients are wanted only for the input,
    and autograd then neither saves the activations that weight gradients need nor computes them.
    Models without the fast layers (HF attention) keep their attention.

    Yields:
        how many attention layers were switched.
    """
    try:
        from longformer_core.model.attention import fast_attention_layers
    except ImportError:  # the fast kernel is optional
        layers = []
    else:
        layers = fast_attention_layers(module)
    trainable = [p for p in module.parameters() if p.requires_grad]
    for layer in layers:
        layer._local = functools.partial(_blocked_local, layer)
    for p in trainable:
        p.requires_grad_(False)
    try:
        yield len(layers)
    finally:
        for layer in layers:
            layer.__dict__.pop("_local", None)
        for p in trainable:
            p.requires_grad_(True)
