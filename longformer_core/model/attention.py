"""Exact sliding-window + global attention for Hugging Face Longformer, fast on CPU (inference).

Same results as `transformers`' `LongformerSelfAttention` (to fp32 rounding), with less work:

* Band: queries are cut into blocks of `block` rows; block i reads one contiguous window of the keys,
  `block + 2w` rows (clamped at the sequence ends), so the scores need no chunk/diagonal reshuffling
  and the matmuls compute `(block + 2w) / (2w + 1)` times the band (1.12x for w=256, block=64)
  instead of HF's ~2x. The band mask `|i - j| <= w`, padding and global keys (which HF moves out of
  the band into columns of their own) are one additive bias per block::

        keys               ->        k0 ... k(n-1)
        query block 0  [q0 .. q63]    sees  keys [0,        63 + w]
        query block 1  [q64 .. q127]  sees  keys [64 - w,  127 + w]
                                ...
        scores of one block = [ global columns | block x (block + 2w) window ]
                                   (G cols)        band = diagonal strip of width 2w+1

  Each block's scores stay in cache: scores -> softmax (fp32 arithmetic) -> probs @ values, then the next
  block. The global columns' scores and their values are one matmul each per layer, outside the blocks.
  Blocks are shared out to single-threaded workers (see worker_pool) rather than split by OpenMP.
* Global columns: every query also scores the global tokens' keys (the *local* key projection, as HF).
* bf16 (autocast): q, k and v are laid out once per layer the way the blocks read them, since the bf16
  matmuls copy any operand not contiguous in its last dimension (bench/bf16_profile.py; docs/results.md).
* Global rows: only the global tokens attend to the whole sequence, with the *_global projections.
  HF projects every token with key_global and value_global in every layer; we fold those projections
  into the G global queries instead (q^T (W h) = (W^T q)^T h), which costs O(G * heads * hidden) per
  token instead of O(hidden^2). With many global tokens (G * heads >= hidden) we project as HF does.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

import torch
from torch import Tensor, nn
from transformers.models.longformer.modeling_longformer import LongformerSelfAttention

from longformer_core.model import cpu_attention
from longformer_core.model.workers import worker_pool

DEFAULT_BLOCK = 64  # query rows per block: fastest or tied among 32..256 at w=256 on the 2-core CPU
_M = TypeVar("_M", bound=nn.Module)


# --------------------------------------------------------------------------------------------------
# Core kernel


def sliding_window_attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    window: int,
    *,
    key_mask: Tensor | None = None,
    global_k: Tensor | None = None,
    global_v: Tensor | None = None,
    global_mask: Tensor | None = None,
    probs_heads: Sequence[int] | None = None,
    block: int | None = None,
) -> tuple[Tensor, Tensor | None]:
    """Sliding-window attention (band of 2*window+1 keys) plus optional global key columns.

    Args:
        q: (batch, seq, heads, head_dim) queries, already scaled by 1/sqrt(head_dim); any strides.
        k: (batch, seq, heads, head_dim) keys.
        v: (batch, seq, heads, head_dim) values.
        window: one-sided window w: query i attends to keys j with |i - j| <= w.
        key_mask: (batch, seq) bool, True for keys removed from every band (padding, and global
            tokens, whose keys enter through `global_k` instead, as in HF).
        global_k: (batch, n_global, heads, head_dim) keys that every query attends to.
        global_v: (batch, n_global, heads, head_dim) their values.
        global_mask: (batch, n_global) bool, True for unused global slots (examples with fewer
            global tokens than the batch maximum).
        probs_heads: heads whose attention probabilities to return; None returns none.
        block: query rows per block (any size is exact); default DEFAULT_BLOCK.
    Returns:
        (out, probs): out (batch, seq, heads, head_dim); probs None, or
        (batch, seq, len(probs_heads), n_global + 2w + 1) in HF's order: the global columns, then
        band column c for key i - w + c (0 outside the sequence and for masked keys).
        A query whose whole band is masked gets an arbitrary row (HF zeroes such padding rows).
    """
    job = _BandJob(q, k, v, window, block or DEFAULT_BLOCK, key_mask)
    if global_k is not None:
        job.add_globals(global_k, global_v, global_mask)
    if probs_heads is not None:
        job.keep_probs(probs_heads)
    # Autograd must not record from several threads into one output; it gets the plain loop.
    threads_ok = q.device.type == "cpu" and not (
        torch.is_grad_enabled() and any(t.requires_grad for t in (q, k, v))
    )
    _for_each(job.run, job.tasks(), threads_ok)
    job.add_global_values()
    return job.out, job.probs


class _BandJob:
    """Inputs, outputs and per-block work of one sliding_window_attention call."""

    def __init__(
        self, q: Tensor, k: Tensor, v: Tensor, window: int, block: int, key_mask: Tensor | None
    ) -> None:
        batch, n, heads, head_dim = q.shape
        self.batch, self.n, self.window, self.block, self.n_global = batch, n, window, block, 0
        # One copy per layer in the layouts the blocks read: slices of strided views made every block copy
        # its keys and values again (blocks overlap by 2w keys: ~9x the layer's keys at w=256, block=64;
        # the bf16 matmuls copy any operand that is not contiguous in its last dimension).
        self.queries = q.transpose(1, 2).contiguous()  # (batch, heads, seq, d)
        self.keys_t = k.permute(0, 2, 3, 1).contiguous()  # (batch, heads, d, seq)
        self.values = v.transpose(1, 2).contiguous()  # (batch, heads, seq, d)
        self.masks = _BlockMasks(key_mask, n, window, block, q.dtype, q.device)
        self.out = q.new_empty(batch, n, heads, head_dim)
        self.probs: Tensor | None = None
        self.probs_heads: list[int] = []

    def add_globals(self, global_k: Tensor, global_v: Tensor, global_mask: Tensor | None) -> None:
        """Global key columns for every query (see sliding_window_attention)."""
        self.n_global = global_k.shape[1]
        # Every query against the global keys in one matmul per layer, not two small ones per block.
        scores = torch.matmul(self.queries, global_k.permute(0, 2, 3, 1))  # (batch, heads, seq, n_global)
        if global_mask is not None:
            scores = scores.masked_fill(global_mask[:, None, None, :], torch.finfo(scores.dtype).min)
        self.global_scores = scores
        self.global_values = global_v.transpose(1, 2)  # (batch, heads, n_global, d)
        # The blocks' probabilities on the global columns, applied to global_values after the blocks.
        self.global_probs = scores.new_empty(scores.shape)

    def add_global_values(self) -> None:
        """out += every query's probabilities on the global columns @ the global values (one matmul)."""
        if self.n_global:
            mixed = torch.matmul(self.global_probs, self.global_values)  # (batch, heads, seq, d)
            self.out += mixed.transpose(1, 2).to(self.out.dtype)

    def keep_probs(self, heads: Sequence[int]) -> None:
        """Also fill self.probs for these heads, in HF's order."""
        self.probs_heads = list(heads)
        width = self.n_global + 2 * self.window + 1
        self.probs = self.out.new_zeros(self.batch, self.n, len(self.probs_heads), width)

    def tasks(self) -> list[tuple[int, int]]:
        """(example, first query) of every block."""
        return [(b, start) for b in range(self.batch) for start in range(0, self.n, self.block)]

    def run(self, task: tuple[int, int]) -> None:
        """Attention of example b's queries [start, start + block): scores, softmax, probs @ values."""
        b, start = task
        n_global, window = self.n_global, self.window
        rows = min(self.block, self.n - start)
        # Keys any row of the block may see, clamped to the sequence (no padded copies needed).
        lo, hi = max(0, start - window), min(self.n, start + rows + window)
        q_block = self.queries[b, :, start : start + rows]
        bias = self.masks.bias(b, start, rows, lo, hi)
        scores = torch.baddbmm(bias, q_block, self.keys_t[b, :, :, lo:hi])  # (heads, rows, hi - lo)
        if n_global:
            scores = torch.cat([self.global_scores[b, :, start : start + rows], scores], dim=-1)
        # fp32 scores: softmax in fp32. bf16 scores: torch's bf16 softmax accumulates in fp32 too and
        # rounds once (within 1 bf16 ulp of fp32-then-round, at half the cost: no fp32 copy of the scores).
        p = torch.softmax(scores, dim=-1)
        o = torch.bmm(p[..., n_global:], self.values[b, :, lo:hi])
        if n_global:
            self.global_probs[b, :, start : start + rows] = p[..., :n_global]
        self.out[b, start : start + rows] = o.transpose(0, 1)
        if self.probs is not None:
            first = lo - (start - window)  # window column of key `lo`
            self.probs[b, start : start + rows] = _hf_order_probs(
                p, n_global, window, first, self.probs_heads
            )


class _BlockMasks:
    """Additive score bias of each query block: 0 where attention is allowed, dtype min elsewhere.

    Column c of block `start` is key start - w + c; row r is query start + r. Allowed: inside the band
    (0 <= c - r <= 2w) and not in `key_mask`. Blocks with no masked key in reach share one band bias,
    so the common case (a few global tokens, no padding) builds almost nothing per block.
    """

    def __init__(
        self,
        key_mask: Tensor | None,
        n: int,
        window: int,
        block: int,
        dtype: torch.dtype,
        device: torch.device,
    ) -> None:
        offset = (
            torch.arange(block + 2 * window, device=device)[None, :]
            - torch.arange(block, device=device)[:, None]
        )
        self.band = torch.zeros(offset.shape, dtype=dtype, device=device)
        self.band.masked_fill_((offset < 0) | (offset > 2 * window), torch.finfo(dtype).min)
        self.window = window
        self.key_mask = key_mask
        self.masked_before: list[list[int]] | None = None  # per example: masked keys among the first j
        if key_mask is not None and bool(key_mask.any()):
            counts = torch.nn.functional.pad(key_mask.long().cumsum(dim=1), (1, 0))
            self.masked_before = counts.tolist()

    def bias(self, b: int, start: int, rows: int, lo: int, hi: int) -> Tensor:
        """(rows, hi - lo) bias for queries [start, start+rows) against keys [lo, hi) of example b."""
        first = lo - (start - self.window)
        band = self.band[:rows, first : first + hi - lo]
        if self.masked_before is None or self.masked_before[b][hi] == self.masked_before[b][lo]:
            return band
        return band.masked_fill(self.key_mask[b, lo:hi], torch.finfo(band.dtype).min)


def _hf_order_probs(p: Tensor, n_global: int, window: int, first: int, heads: Sequence[int]) -> Tensor:
    """One block's probs -> (rows, len(heads), n_global + 2w + 1) in HF's order.

    Args:
        p: (heads, rows, n_global + keys) probs: global columns, then the block's keys.
        first: window column of the block's first key (> 0 where the window was clamped at the start).
    """
    picked = list(heads)
    _, rows, width = p.shape
    span = rows + 2 * window
    # Re-inflate a clamped window to full width so every row's band sits at column r of it.
    local = torch.nn.functional.pad(p[picked, :, n_global:], (first, span - first - (width - n_global)))
    # Row r's band is a diagonal strip: a strided view, no gather needed.
    band = local.as_strided((len(picked), rows, 2 * window + 1), (local.stride(0), span + 1, 1))
    return torch.cat([p[picked, :, :n_global], band], dim=-1).transpose(0, 1)


def _for_each(fn: Callable[[tuple[int, int]], None], tasks: list[tuple[int, int]], threads_ok: bool) -> None:
    """fn(task) for every task, on the worker pool when allowed and useful, else in this thread.

    Grad mode, inference mode and autocast are thread-local: workers run without autograd (threads
    are only allowed when no gradient is needed) and under the caller's inference mode and CPU autocast.
    """
    pool = worker_pool() if threads_ok and len(tasks) > 1 else None
    if pool is None:
        for task in tasks:
            fn(task)
        return
    autocast = torch.is_autocast_enabled("cpu"), torch.get_autocast_dtype("cpu")
    inference = torch.is_inference_mode_enabled()  # thread-local too: inference tensors need it to be written

    def in_caller_modes(task: tuple[int, int]) -> None:
        with (
            torch.inference_mode(inference),
            torch.no_grad(),
            torch.autocast("cpu", dtype=autocast[1], enabled=autocast[0]),
        ):
            fn(task)

    for _ in pool.map(in_caller_modes, tasks):  # consuming the results re-raises a worker's exception
        pass


# --------------------------------------------------------------------------------------------------
# Drop-in replacement for HF's LongformerSelfAttention


@dataclass
class _GlobalIndex:
    """Where the global tokens are: per example, their positions in ascending order, padded to the max."""

    positions: Tensor  # (batch, n_global) long; padded slots hold a position that is not global
    valid: Tensor  # (batch, n_global) bool

    @classmethod
    def of(cls, is_global: Tensor) -> _GlobalIndex:
        """Build from the (batch, seq) bool mask of global tokens."""
        counts = is_global.sum(dim=1)
        n_global = int(counts.max())
        # Stable sort puts each example's global positions first, in order (as HF's nonzero()).
        order = torch.sort((~is_global).to(torch.int8), dim=1, stable=True).indices[:, :n_global]
        valid = torch.arange(n_global, device=is_global.device)[None, :] < counts[:, None]
        return cls(order, valid)

    @property
    def count(self) -> int:
        return self.positions.shape[1]

    def gather(self, x: Tensor) -> Tensor:
        """Rows of x (batch, seq, ...) at the global positions -> (batch, n_global, ...)."""
        index = self.positions.view(*self.positions.shape, *([1] * (x.dim() - 2)))
        return x.gather(1, index.expand(-1, -1, *x.shape[2:]))


@dataclass
class _Probe:
    """What band_attention_probs asked one layer to keep, and what it kept."""

    heads: list[int]
    kept: dict[str, Tensor] = field(default_factory=dict)


class FastLongformerSelfAttention(LongformerSelfAttention):
    """HF's LongformerSelfAttention with the same weights, inputs and outputs, computed block-banded.

    A subclass, so the parameter names (state_dict keys) and every attribute HF reads stay the same.
    In training mode with dropout it runs HF's own forward, so it is exact there too.
    """

    probe: _Probe | None = None  # set by band_attention_probs for the duration of one forward

    @classmethod
    def from_hf(cls, hf_module: LongformerSelfAttention) -> FastLongformerSelfAttention:
        """Wrap an HF LongformerSelfAttention, sharing (not copying) its projection layers.

        Args:
            hf_module: the module to replace.
        Returns:
            a FastLongformerSelfAttention whose parameters are the very tensors of `hf_module`.
        """
        fast = cls.__new__(cls)
        nn.Module.__init__(fast)  # the parent __init__ would allocate fresh weights
        for name, child in hf_module.named_children():
            fast.add_module(name, child)
        for attr in (
            "num_heads",
            "head_dim",
            "embed_dim",
            "dropout",
            "layer_id",
            "one_sided_attn_window_size",
            "config",
        ):
            setattr(fast, attr, getattr(hf_module, attr))
        return fast.train(hf_module.training)

    def forward(
        self,
        hidden_states: Tensor,
        attention_mask: Tensor | None = None,
        is_index_masked: Tensor | None = None,
        is_index_global_attn: Tensor | None = None,
        is_global_attn: bool | None = None,
        output_attentions: bool = False,
    ) -> tuple[Tensor, ...]:
        """Same contract as LongformerSelfAttention.forward.

        Args:
            hidden_states: (batch, seq, hidden).
            attention_mask: (batch, seq) float: 0 local, negative masked (padding), positive global.
            is_index_masked: (batch, seq) bool, attention_mask < 0 (derived when None).
            is_index_global_attn: (batch, seq) bool, attention_mask > 0 (derived when None).
            is_global_attn: whether any token is global (derived when None).
            output_attentions: also return the probabilities.
        Returns:
            (attn_output (batch, seq, hidden),) then, with output_attentions, the local probs
            (batch, seq, heads, n_global + 2w + 1) (zero rows for padding and global tokens) and, when a
            token is global, the global tokens' probs (batch, heads, n_global, seq).
        """
        if self.training and self.dropout > 0:
            return super().forward(
                hidden_states,
                attention_mask,
                is_index_masked,
                is_index_global_attn,
                is_global_attn,
                output_attentions,
            )
        batch, n, _ = hidden_states.shape
        if attention_mask is None:
            attention_mask = hidden_states.new_zeros(batch, n)
        if is_index_masked is None:
            is_index_masked = attention_mask < 0
        if is_index_global_attn is None:
            is_index_global_attn = attention_mask > 0
        if is_global_attn is None:
            is_global_attn = bool(is_index_global_attn.any())
        glob = _GlobalIndex.of(is_index_global_attn) if is_global_attn else None
        probs_heads = list(range(self.num_heads)) if output_attentions else (self.probe and self.probe.heads)

        out, probs = self._local(hidden_states, attention_mask != 0, glob, probs_heads)
        padding = is_index_masked.nonzero(as_tuple=True)  # HF zeroes padding rows; index only those
        out[padding] = 0.0
        global_probs = None
        if glob is not None:
            global_out, global_probs = self._global_rows(hidden_states, glob, is_index_masked)
            rows = glob.valid.nonzero(as_tuple=True)
            out[rows[0], glob.positions[rows]] = global_out[rows].to(out.dtype)  # autocast may mix dtypes
        if probs is not None:
            probs[padding] = 0.0
            if glob is not None:
                probs[rows[0], glob.positions[rows]] = 0.0  # HF: global rows live in global_probs
        if self.probe is not None:
            self._keep(probs, global_probs, glob, output_attentions)

        outputs = (out.view(batch, n, self.embed_dim),)
        if output_attentions:
            outputs += (probs,)
            if is_global_attn:
                outputs += (global_probs,)
        return outputs

    def _local(
        self,
        hidden_states: Tensor,
        key_mask: Tensor,
        glob: _GlobalIndex | None,
        probs_heads: Sequence[int] | None,
    ) -> tuple[Tensor, Tensor | None]:
        """Every token's band + global-column attention (global tokens' rows are overwritten later)."""
        batch, n, _ = hidden_states.shape
        shape = (batch, n, self.num_heads, self.head_dim)
        q = self.query(hidden_states)
        q /= math.sqrt(self.head_dim)  # divide like HF, so fp32 results match to the last bits
        k = self.key(hidden_states).view(shape)
        v = self.value(hidden_states).view(shape)
        if probs_heads is None and cpu_attention.supports(q.view(shape), k, v):
            return self._c_kernel(q.view(shape), k, v, key_mask, glob), None
        if probs_heads is None and n <= 2 * self.one_sided_attn_window_size + 1:
            return self._dense_local(q.view(shape), k, v, key_mask, glob), None
        extra = {}
        if glob is not None:
            extra = {"global_k": glob.gather(k), "global_v": glob.gather(v), "global_mask": ~glob.valid}
        return sliding_window_attention(
            q.view(shape),
            k,
            v,
            self.one_sided_attn_window_size,
            key_mask=key_mask,
            probs_heads=probs_heads,
            **extra,
        )

    def _c_kernel(
        self, q: Tensor, k: Tensor, v: Tensor, key_mask: Tensor, glob: _GlobalIndex | None
    ) -> Tensor:
        """The band + global columns in longformer_core/model/cpu_attention.c: one pass per (example, head); at
        MiniLM's head width 32 the whole 4,096-token model runs 1.49x faster than with the blocks' matmuls
        (docs/results.md, "Books")."""
        extra = {}
        if glob is not None:
            extra = {
                "global_k": glob.gather(k).transpose(1, 2),
                "global_v": glob.gather(v).transpose(1, 2),
                "global_keep": glob.valid,
            }
        return cpu_attention.attention(
            q.transpose(1, 2),
            k.transpose(1, 2),
            v.transpose(1, 2),
            ~key_mask,
            1.0,  # q is already scaled
            window=self.one_sided_attn_window_size,
            **extra,
        )

    def _dense_local(
        self, q: Tensor, k: Tensor, v: Tensor, key_mask: Tensor, glob: _GlobalIndex | None
    ) -> Tensor:
        """The band + global columns as one masked dense attention, for inputs of at most 2w + 1 tokens.

        There the band already spans about the whole sequence, so one fused call over every key, masked to the
        same keys (band keys not in `key_mask`, plus the global tokens), does no more arithmetic than the
        blocks and spares their per-block overhead: a retrieved 300-token region is read ~2x faster.

        Args:
            q, k, v: (batch, seq, heads, head_dim), q already scaled.
            key_mask: (batch, seq) bool, True for padding and global tokens (their keys come back as globals).
            glob: the batch's global tokens, or None.
        Returns:
            (batch, seq, heads, head_dim); padding and global rows are overwritten by the caller.
        """
        n = key_mask.shape[1]
        idx = torch.arange(n, device=q.device)
        band = (idx[:, None] - idx[None, :]).abs() <= self.one_sided_attn_window_size  # (seq, seq)
        allowed = band[None] & ~key_mask[:, None, :]  # (batch, seq, seq)
        if glob is not None:
            is_global = torch.zeros_like(key_mask)
            rows = glob.valid.nonzero(as_tuple=True)
            is_global[rows[0], glob.positions[rows]] = True
            allowed |= is_global[:, None, :]
        # A padding row may see only padding; its own key keeps its softmax finite (the row is zeroed later).
        allowed |= torch.eye(n, dtype=torch.bool, device=q.device)
        out = nn.functional.scaled_dot_product_attention(
            q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), attn_mask=allowed[:, None], scale=1.0
        )
        return out.transpose(1, 2).contiguous()

    def _global_rows(
        self, hidden_states: Tensor, glob: _GlobalIndex, is_index_masked: Tensor
    ) -> tuple[Tensor, Tensor]:
        """Global tokens attending to every token with the *_global projections.

        Returns:
            (out (batch, n_global, heads, head_dim), probs (batch, heads, n_global, seq)); unused slots
            get uniform probs, as in HF.
        """
        batch, n, hidden = hidden_states.shape
        heads, head_dim, n_global = self.num_heads, self.head_dim, glob.count
        q = self.query_global(glob.gather(hidden_states))
        q /= math.sqrt(head_dim)
        q = q.view(batch, n_global, heads, head_dim)
        # Folding W_k into the few global queries beats projecting every token while G*heads < hidden.
        folded = n_global * heads < hidden
        if folded:
            w_k = self.key_global.weight.view(heads, head_dim, hidden)
            q_hidden = torch.einsum("bghd,hde->bhge", q, w_k).reshape(batch, heads * n_global, hidden)
            # key_global's bias adds q.b to a whole row of scores; softmax does not see it.
            scores = torch.bmm(q_hidden, hidden_states.transpose(1, 2)).view(batch, heads, n_global, n)
        else:
            k = self.key_global(hidden_states).view(batch, n, heads, head_dim)
            scores = torch.einsum("bghd,bnhd->bhgn", q, k)
        hidden_mask = is_index_masked[:, None, None, :] | ~glob.valid[:, None, :, None]
        scores = scores.masked_fill(hidden_mask, torch.finfo(scores.dtype).min)
        probs = torch.softmax(scores, dim=-1, dtype=torch.float32).to(scores.dtype)
        if folded:
            mixed = torch.bmm(probs.view(batch, heads * n_global, n), hidden_states)
            w_v = self.value_global.weight.view(heads, head_dim, hidden)
            # Each row of probs sums to 1, so value_global's bias passes through unchanged.
            out = torch.einsum("bhge,hde->bghd", mixed.view(batch, heads, n_global, hidden), w_v)
            out = out + self.value_global.bias.view(heads, head_dim)
        else:
            v = self.value_global(hidden_states).view(batch, n, heads, head_dim)
            out = torch.einsum("bhgn,bnhd->bghd", probs, v)
        return out, probs

    def _keep(
        self, probs: Tensor, global_probs: Tensor | None, glob: _GlobalIndex | None, all_heads: bool
    ) -> None:
        """Store the probe's heads, in band_attention_probs' format."""
        heads = self.probe.heads
        picked = probs[:, :, heads] if all_heads else probs  # (batch, seq, h, G + 2w + 1)
        n_global = 0 if glob is None else glob.count
        self.probe.kept = {
            "local": picked[..., n_global:].permute(0, 2, 1, 3).contiguous(),
            "global_columns": picked[..., :n_global].permute(0, 2, 1, 3).contiguous(),
        }
        if glob is not None:
            self.probe.kept["global_rows"] = global_probs[:, heads].contiguous()
            self.probe.kept["global_positions"] = glob.positions.masked_fill(~glob.valid, -1)


# --------------------------------------------------------------------------------------------------
# Model-level helpers


def use_fast_attention(model: _M) -> _M:
    """Swap every HF LongformerSelfAttention inside `model` for FastLongformerSelfAttention, in place.

    Works on LongformerModel and every Longformer task model; idempotent; weights are shared.

    Args:
        model: any module containing LongformerSelfAttention layers (others are left alone).
    Returns:
        the same model.
    """
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, LongformerSelfAttention) and not isinstance(
                child, FastLongformerSelfAttention
            ):
                setattr(parent, name, FastLongformerSelfAttention.from_hf(child))
    for module in model.modules():
        if hasattr(module, "_pad_to_window_size") and fast_attention_layers(module):
            _pad_only_for_training(module)
    _one_row_padding_mask()
    return model


def _one_row_padding_mask() -> None:
    """Stop LongformerModel.forward from building a (batch, 1, seq, seq) mask only to keep its first row.

    transformers 5 builds the padding mask with `create_bidirectional_mask` (materialised) and then slices
    `[:, 0, 0, :]`: at 16k tokens that is a 1 GB float mask plus a 256 MB bool one, ~1.4 GB of peak memory
    and ~2 s of CPU per window, for a row that depends only on the keys. Here the mask is built for one query
    and expanded (a view): the row is the same tensor values, so every model's output is unchanged.
    Patches the name in HF's Longformer module only; idempotent.
    """
    from transformers.models.longformer import modeling_longformer

    original = modeling_longformer.create_bidirectional_mask
    if getattr(original, "_one_row", False):
        return

    def one_row(config, inputs_embeds: Tensor, attention_mask: Tensor | None, **kwargs: object) -> object:
        if (
            attention_mask is None
            or attention_mask.dim() != 2
            or set(kwargs) - {"allow_is_bidirectional_skip"}
        ):
            return original(config, inputs_embeds, attention_mask, **kwargs)
        row = original(config, inputs_embeds[:, :1], attention_mask, **kwargs)  # (batch, 1, 1, seq)
        if not isinstance(row, Tensor) or row.dim() != 4:
            return original(config, inputs_embeds, attention_mask, **kwargs)
        return row.expand(-1, -1, inputs_embeds.shape[1], -1)  # (batch, 1, seq, seq), no copy

    one_row._one_row = True
    one_row.original = original
    modeling_longformer.create_bidirectional_mask = one_row


def _pad_only_for_training(encoder: nn.Module) -> None:
    """Stop a LongformerModel from padding every input to a multiple of its attention window at inference.

    HF's chunked attention needs that padding; the band kernel takes any length, and the padding keys were
    masked anyway, so the real tokens' results are the same and the padding was only work: a 280-token
    region was read as 512 tokens. Training with dropout still pads (FastLongformerSelfAttention falls back
    to HF's attention there). Idempotent.
    """
    if getattr(encoder, "_pads_only_for_training", False):
        return
    pad = encoder._pad_to_window_size

    def pad_to_window_size(**inputs: Tensor | int | None) -> tuple:
        if encoder.training:
            return pad(**inputs)
        keys = ("input_ids", "attention_mask", "token_type_ids", "position_ids", "inputs_embeds")
        return (0, *(inputs[k] for k in keys))

    encoder._pad_to_window_size = pad_to_window_size
    encoder._pads_only_for_training = True


def fast_attention_layers(model: nn.Module) -> list[FastLongformerSelfAttention]:
    """The model's FastLongformerSelfAttention modules in layer order (empty before use_fast_attention)."""
    return [m for m in model.modules() if isinstance(m, FastLongformerSelfAttention)]


@torch.no_grad()
def band_attention_probs(
    model: nn.Module,
    input_ids: Tensor,
    attention_mask: Tensor | None = None,
    global_attention_mask: Tensor | None = None,
    layers: Sequence[int] | None = None,
    heads: Sequence[int] | None = None,
) -> dict[int, dict[str, Tensor | int]]:
    """Attention probabilities of chosen layers/heads in band format, never materialising seq x seq.

    Runs the model's encoder once (swapping in fast attention first, in place, if needed).

    Args:
        model: an HF Longformer model (LongformerModel or a task model).
        input_ids: (batch, seq) token ids.
        attention_mask: (batch, seq) 1 for tokens, 0 for padding; default all ones.
        global_attention_mask: (batch, seq) 1 for global tokens; default none.
        layers: layer indices to keep; default all.
        heads: head indices to keep; default all.
    Returns:
        {layer: {
            "window": one-sided window w of that layer,
            "local": (batch, h, seq, 2w+1) probs; column c is key i - w + c; zero rows for padding and
                global tokens (their attention is in "global_rows"),
            "global_columns": (batch, h, seq, n_global) each token's attention to the global tokens,
            "global_rows": (batch, h, n_global, seq) the global tokens' attention to every token,
            "global_positions": (batch, n_global) long, the global tokens' positions (-1: unused slot),
        }} with the two global keys present only when some token is global. seq is input_ids' length
        (HF's padding to a multiple of the window is cut off).
    """
    use_fast_attention(model)
    modules = fast_attention_layers(model)
    chosen = range(len(modules)) if layers is None else layers
    n = input_ids.shape[1]
    encoder = getattr(model, getattr(model, "base_model_prefix", ""), model)
    for i in chosen:
        modules[i].probe = _Probe(list(range(modules[i].num_heads)) if heads is None else list(heads))
    try:
        encoder(
            input_ids=input_ids, attention_mask=attention_mask, global_attention_mask=global_attention_mask
        )
        result: dict[int, dict[str, Tensor | int]] = {}
        for i in chosen:
            kept = modules[i].probe.kept
            result[i] = {"window": modules[i].one_sided_attn_window_size} | {
                "local": kept["local"][:, :, :n],
                "global_columns": kept["global_columns"][:, :, :n],
            }
            if "global_rows" in kept:
                result[i]["global_rows"] = kept["global_rows"][..., :n]
                result[i]["global_positions"] = kept["global_positions"]
        return result
    finally:
        for i in chosen:
            modules[i].probe = None


def hf_layer_inputs(
    attention_mask: Tensor, global_attention_mask: Tensor | None = None, dtype: torch.dtype = torch.float32
) -> dict[str, Tensor | bool]:
    """The keyword arguments LongformerModel passes to each self-attention layer.

    Args:
        attention_mask: (batch, seq) 1 for tokens, 0 for padding.
        global_attention_mask: (batch, seq) 1 for global tokens; default none.
        dtype: dtype of the hidden states.
    Returns:
        dict with attention_mask (0 local, dtype min padding, dtype max global), is_index_masked,
        is_index_global_attn and is_global_attn, ready for `layer(hidden, **inputs)`.
    """
    is_global = torch.zeros_like(attention_mask, dtype=torch.bool)
    if global_attention_mask is not None:
        is_global = global_attention_mask.bool() & attention_mask.bool()
    mask = torch.zeros(attention_mask.shape, dtype=dtype, device=attention_mask.device)
    mask.masked_fill_(~attention_mask.bool(), torch.finfo(dtype).min)
    mask.masked_fill_(is_global, torch.finfo(dtype).max)
    return {
        "attention_mask": mask,
        "is_index_masked": mask < 0,
        "is_index_global_attn": mask > 0,
        "is_global_attn": bool(is_global.any()),
    }
