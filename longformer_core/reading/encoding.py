"""Tokens with character offsets, long-document windows, and one model pass over a whole document.

The document is tokenized once (no special tokens) and every view is a set of windows over that one
token array:

- longformer: windows of up to `max_tokens` (16,384 for the embedded default), overlapping by
  `LONG_OVERLAP` tokens when a document is longer than one window;
- truncated: the first window only, of 512 tokens (special tokens included);
- chunked: consecutive 512-token windows overlapping by `CHUNK_OVERLAP` tokens, each run on its own.

A pass returns the last-layer state of every token the view saw, merged so that each token takes its
state from the window where it sits furthest from an edge. The pass does not depend on the question,
so it is computed once per (document, model, view, strategy) and reused for every question. States are
written into their final array as each batch comes back (no per-window copies are kept), in the dtype the
caller asks for (float32 by default; the app's reader keeps float16, see `document_reading`) and in an array
the caller may provide (`allocate`: e.g. a memory-mapped file for a document too big for memory).

Windows run in batches (padded to the longest in the batch, padding masked out): as many as fit in
`BATCH_TOKENS` tokens per forward pass, scaled by the model's width, so a 512-token chunk of the
embedded MiniLM goes 16 at a time and a 16k-token Longformer window alone. Forward passes run under
`LoadedModel.autocast()` (bf16 where the CPU has it natively, see models.compute_dtype); states leave the
model as float32 and are stored in the pass's dtype.

Tokenization and the input of one pass are in `tokenization.py`, the windows of each view in `windows.py`;
this module runs the passes, and re-exports the public names of both.
"""

from __future__ import annotations

import contextlib
import itertools
import threading
import time
from collections.abc import Callable, Iterator, Sequence

import numpy as np
import torch
from transformers import PreTrainedTokenizerBase

from longformer_core.model.registry import LoadedModel
from longformer_core.reading.priority import yield_in_background
from longformer_core.reading.states import DocumentPass, window_owners  # re-exported, as above
from longformer_core.reading.tokenization import (  # re-exported: callers import the whole encoding API from here
    DocumentTokens,
    SpecialTemplate,
    WindowInput,
    build_input,
    special_template,
    tokenize,
    tokenizer_call,
)
from longformer_core.reading.windows import (  # re-exported, as above
    CHUNK_OVERLAP,
    LONG_OVERLAP,
    VIEWS,
    plan_windows,
    view_windows,
    window_capacity,
)

__all__ = [
    "BATCH_TOKENS",
    "CHUNK_OVERLAP",
    "LONG_OVERLAP",
    "REFERENCE_HIDDEN",
    "VIEWS",
    "Allocate",
    "DocumentPass",
    "DocumentTokens",
    "Progress",
    "SpecialTemplate",
    "WindowInput",
    "batch_size_for",
    "build_input",
    "collate",
    "embed_texts",
    "encode_document",
    "model_kwargs",
    "plan_batches",
    "plan_windows",
    "run_windows",
    "scaled",
    "special_template",
    "split_output",
    "tokenize",
    "tokenizer_call",
    "view_windows",
    "window_capacity",
    "window_owners",
]

# Padded tokens per forward pass at hidden size REFERENCE_HIDDEN; wider models get proportionally fewer,
# so activation memory per pass stays about the same (16 chunks of 512 for MiniLM, 8 for a 768-wide
# base model). On the shared 2-core CPU, 24 chunks took 91 / 45 / 36 / 25 s at 1 / 4 / 8 / 16 chunks
# per pass (fp32, bench/batch_sizes.py; docs/results.md, "Chunked view batch sizes").
BATCH_TOKENS = 8192
REFERENCE_HIDDEN = 384
Progress = Callable[[float, str], None]  # (fraction done, message)
Allocate = Callable[[tuple[int, int], np.dtype], np.ndarray]  # (shape, dtype) -> a zeroed array to fill


def scaled(progress: Progress | None, lo: float, hi: float) -> Progress | None:
    """A progress callback mapping [0, 1] onto [lo, hi] of `progress` (for work done in steps)."""
    if progress is None:
        return None
    return lambda fraction, message: progress(lo + (hi - lo) * fraction, message)


def _in_window_order(batches: list[list[int]]) -> list[list[int]]:
    """Batches ordered by their first window, indices within a batch ascending (progress reads in order)."""
    return sorted((sorted(b) for b in batches), key=lambda b: b[0])


def model_kwargs(model: LoadedModel, win: WindowInput) -> dict[str, torch.Tensor]:
    """The forward-pass arguments this model accepts, on its device."""
    kwargs = {"input_ids": win.input_ids, "attention_mask": win.attention_mask}
    if getattr(model.model.config, "type_vocab_size", 1) > 1:  # RoBERTa has one type; BERT two
        kwargs["token_type_ids"] = win.token_type_ids
    if model.is_longformer:
        kwargs["global_attention_mask"] = win.global_attention_mask
    return {k: v.to(model.device) for k, v in kwargs.items()}


def batch_size_for(model: LoadedModel, seq_len: int, token_budget: int | None = None) -> int:
    """How many sequences of `seq_len` tokens go in one forward pass of this model (at least 1).

    The budget (default BATCH_TOKENS) is in tokens at hidden size REFERENCE_HIDDEN; a model twice as
    wide gets half as many.
    """
    token_budget = BATCH_TOKENS if token_budget is None else token_budget
    hidden = int(getattr(model.encoder.config, "hidden_size", REFERENCE_HIDDEN))
    budget = token_budget * REFERENCE_HIDDEN // max(hidden, 1)
    return max(1, budget // max(seq_len, 1))


def plan_batches(
    lengths: Sequence[int], model: LoadedModel, token_budget: int | None = None
) -> list[list[int]]:
    """Group sequence indices into batches: sorted by length (little padding), each within the token budget.

    Args:
        lengths: input length of each sequence.
        model: decides the width the budget scales with.
        token_budget: padded tokens per pass at hidden size REFERENCE_HIDDEN (default BATCH_TOKENS).
    Returns:
        lists of indices into `lengths`, batches in order of increasing length.
    """
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    batches: list[list[int]] = []
    current: list[int] = []
    for i in order:
        # A batch's cost is its size times its longest (last, as sorted) member.
        if current and (len(current) + 1) > batch_size_for(model, lengths[i], token_budget):
            batches.append(current)
            current = []
        current.append(i)
    if current:
        batches.append(current)
    return batches


def collate(tokenizer: PreTrainedTokenizerBase, wins: Sequence[WindowInput]) -> WindowInput:
    """Stack windows into one batch, right-padded to the longest (padding: attention 0, never global).

    Returns a WindowInput whose tensors are (batch, L_max); its doc_start/doc_range/question_range are
    the first window's (use the individual windows for positions).
    """
    if len(wins) == 1:
        return wins[0]
    longest = max(w.input_ids.shape[1] for w in wins)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0

    def padded(name: str, value: int) -> torch.Tensor:
        rows = [getattr(w, name) for w in wins]
        return torch.cat(
            [torch.nn.functional.pad(r, (0, longest - r.shape[1]), value=value) for r in rows], dim=0
        )  # (batch, L_max)

    first = wins[0]
    return WindowInput(
        input_ids=padded("input_ids", pad_id),
        attention_mask=padded("attention_mask", 0),
        token_type_ids=padded("token_type_ids", 0),
        global_attention_mask=padded("global_attention_mask", 0),
        doc_start=first.doc_start,
        doc_range=first.doc_range,
        question_range=first.question_range,
    )


def _one_of_batch(value: object, i: int, length: int, padded_len: int) -> object:
    """Example i of a batched model output, trimmed to its own length, floating tensors as float32."""
    if isinstance(value, torch.Tensor):
        row = value[i : i + 1]
        if row.dim() >= 2 and row.shape[1] == padded_len and length < padded_len:
            row = row[:, :length]
        return row.float() if row.is_floating_point() else row
    if isinstance(value, tuple):
        return tuple(_one_of_batch(v, i, length, padded_len) for v in value)
    return value


def split_output(out: object, i: int, length: int, padded_len: int) -> object:
    """The output of example i alone, as if it had run on its own (same class, batch of 1)."""
    if isinstance(out, dict):  # transformers' ModelOutput is an ordered dict of its non-None fields
        return type(out)(**{k: _one_of_batch(v, i, length, padded_len) for k, v in out.items()})
    return _one_of_batch(out, i, length, padded_len)


@torch.inference_mode()
def run_windows(
    model: LoadedModel,
    doc: DocumentTokens,
    view: str,
    question_ids: Sequence[int] | None = None,
    doc_global: np.ndarray | None = None,
    global_first: bool = False,
    global_question: bool = False,
    progress: Progress | None = None,
    windows: Sequence[tuple[int, int]] | None = None,
    module: torch.nn.Module | None = None,
) -> Iterator[tuple[WindowInput, object]]:
    """Run the task model (with its head) over every window a view reads; yields (input, model output).

    Global attention applies only when the model is a Longformer. Windows run several per forward
    pass (see plan_batches); each output is example i's alone, float32, trimmed to its input length.
    windows: document-token ranges to read instead of the view's windows (retrieve-then-read).
    module: the network to run instead of `model.model` (e.g. `model.span_model`).
    """
    n_question = len(question_ids) if question_ids is not None else 0
    if windows is None:
        windows = view_windows(model, model.tokenizer, len(doc), view, n_question=n_question)
    else:  # given regions are clipped to what one pass holds
        capacity = window_capacity(model, model.tokenizer, n_question)
        windows = [(s, min(e, s + capacity)) for s, e in windows]
    module = module if module is not None else model.model
    long = model.is_longformer
    wins = [
        build_input(
            model.tokenizer,
            doc,
            (s, e),
            question_ids=question_ids,
            doc_global=doc_global if long else None,
            global_first=global_first and long,
            global_question=global_question and long,
        )
        for s, e in windows
    ]
    lengths = [w.input_ids.shape[1] for w in wins]
    done = 0
    # Several windows per forward pass; results come back in window order, each as if run alone.
    for batch in _in_window_order(plan_batches(lengths, model)):
        stacked = collate(model.tokenizer, [wins[i] for i in batch])
        with model.autocast():
            out = module(**model_kwargs(model, stacked))
        padded_len = stacked.input_ids.shape[1]
        for j, i in enumerate(batch):
            yield wins[i], split_output(out, j, lengths[i], padded_len)
        done += len(batch)
        if progress:
            progress(done / len(windows), f"{view}: window {done} of {len(windows)}")


@contextlib.contextmanager
def _summing_last_layers(encoder: torch.nn.Module, n_layers: int) -> Iterator[dict[str, torch.Tensor]]:
    """Sum the outputs of the encoder's last `n_layers` layers as they run, into `yielded["sum"]` (float32).

    The same as summing `output_hidden_states[-n:]`, without keeping every layer's states: at a 16k-token
    window that tuple alone is ~175 MB in fp32. The sum may be longer than the input (a Longformer pads
    to a multiple of its window inside); positions line up from the start.
    """
    found: dict[str, torch.Tensor] = {}
    # hidden_states = (embeddings output, layer 1, ..., layer N): a model of fewer than n layers sums the
    # embeddings too, as hidden_states[-n:] would.
    stages = [encoder.embeddings, *encoder.encoder.layer]
    layers = stages[-n_layers:] if n_layers else []

    owner = threading.get_ident()

    def add(_module: torch.nn.Module, _inputs: object, output: object) -> None:
        # Hooks belong to the module, not the call: another thread (a question's embedding while a
        # background reading runs) may use the same model meanwhile, and must not be summed in.
        if threading.get_ident() != owner:
            return
        states = (output[0] if isinstance(output, tuple) else output).float()  # (batch, L, hidden)
        found["sum"] = states.clone() if "sum" not in found else found["sum"] + states

    handles = [layer.register_forward_hook(add) for layer in layers]
    try:
        yield found
    finally:
        for handle in handles:
            handle.remove()


def _zeros(shape: tuple[int, int], dtype: np.dtype) -> np.ndarray:
    return np.zeros(shape, dtype=dtype)


def _keep_states(
    window: tuple[int, int],
    index: int,
    doc_start: int,
    owner: np.ndarray,
    states: np.ndarray,
    merged: np.ndarray,
) -> None:
    """Write one window's states (L, hidden) into `merged` (n_seen, hidden) for the tokens it owns."""
    s, e = window
    mine = owner[s:e] == index  # (e - s,) the tokens this window is most central for
    merged[s:e][mine] = states[doc_start : doc_start + (e - s)][mine]  # cast to the kept dtype here


@torch.inference_mode()
def encode_document(
    model: LoadedModel,
    doc: DocumentTokens,
    view: str,
    doc_global: np.ndarray | None = None,
    global_first: bool = True,
    keep_last4: bool = False,
    progress: Progress | None = None,
    state_dtype: type | np.dtype = np.float32,
    allocate: Allocate | None = None,
) -> DocumentPass:
    """Run one view of the model over the document and keep every token's state.

    Window inputs are built one batch at a time and each batch's states are written straight into the
    merged arrays (each token from the window where it is most central), so a pass holds its result plus
    one batch, whatever the document's length.

    Args:
        model: the Longformer (view "longformer") or the 512-token baseline.
        doc: document tokens.
        view: "truncated" | "chunked" | "longformer".
        doc_global: (len(doc),) bool global attention mask from a strategy (Longformer only).
        global_first: give [CLS] global attention (Longformer only; what the paper does by default).
        keep_last4: also keep the sum of the last four layers (the seed project's embedding).
        progress: called with (fraction, message) after each batch.
        state_dtype: dtype of the kept states (float32; float16 halves them, for states that are only compared).
        allocate: makes the (n_seen, hidden) arrays the states are written into (default: zeroed numpy arrays;
            a memory-mapped file works the same).
    Returns:
        DocumentPass with merged token states.
    """
    t0 = time.perf_counter()
    windows = view_windows(model, model.tokenizer, len(doc), view)
    if len(doc) == 0:
        raise ValueError("The document has no text to read.")
    long = model.is_longformer
    doc_global, global_first = (doc_global, global_first) if long else (None, False)  # Longformer only
    template = special_template(model.tokenizer)
    n_special = len(template.single_prefix) + len(template.single_suffix)
    n_seen = windows[-1][1]
    owner = window_owners(n_seen, windows)
    allocate = allocate or _zeros
    hidden_size = int(model.encoder.config.hidden_size)
    merged = allocate((n_seen, hidden_size), np.dtype(state_dtype))
    merged4 = allocate((n_seen, hidden_size), np.dtype(state_dtype)) if keep_last4 else None
    firsts = np.zeros((len(windows), hidden_size), dtype=np.float32)
    n_global = 0
    done = 0
    for batch in _in_window_order(plan_batches([e - s + n_special for s, e in windows], model)):
        wins = [
            build_input(model.tokenizer, doc, windows[i], doc_global=doc_global, global_first=global_first)
            for i in batch
        ]
        n_global += sum(int(w.global_attention_mask.sum()) for w in wins) if long else 0
        stacked = collate(model.tokenizer, wins)
        with model.autocast(), _summing_last_layers(model.encoder, 4 if keep_last4 else 0) as last4:
            out = model.encoder(**model_kwargs(model, stacked))
        last = out.last_hidden_state.float().cpu().numpy()  # (batch, L_max, hidden)
        summed = last4["sum"].cpu().numpy() if keep_last4 else None  # (batch, >= L_max, hidden)
        for j, (i, win) in enumerate(zip(batch, wins, strict=True)):
            _keep_states(windows[i], i, win.doc_start, owner, last[j], merged)
            if merged4 is not None and summed is not None:
                _keep_states(windows[i], i, win.doc_start, owner, summed[j], merged4)
            firsts[i] = last[j, 0]
        done += len(batch)
        if progress:
            progress(done / len(windows), f"{view}: window {done} of {len(windows)}")
    return DocumentPass(
        view=view,
        hidden=merged,
        last4=merged4,
        window_first=firsts,
        windows=windows,
        n_global=n_global,
        seconds=time.perf_counter() - t0,
        seen=(0, n_seen),
    )


_TOKENIZE_TEXTS = 4096  # texts tokenized per call by embed_texts (their Python lists are short-lived)


def _token_ids(model: LoadedModel, texts: Sequence[str], limit: int) -> tuple[np.ndarray, np.ndarray]:
    """Every text's token ids (special tokens included, truncated to `limit`), flat, with each text's start.

    Only the ids are kept (int32, 4 bytes a token): a batch's attention mask and token types are rebuilt from
    the lengths. Tokenized a few thousand texts at a time, so the tokenizer's Python lists never hold more.

    Returns:
        (ids (total,) int32, starts (len(texts) + 1,) int64: text i is ids[starts[i]:starts[i + 1]]).
    """
    pieces: list[np.ndarray] = []
    lengths: list[int] = []
    for i in range(0, len(texts), _TOKENIZE_TEXTS):
        yield_in_background()  # a background reading pauses here too while a question runs (~0.1 s a chunk)
        chunk = list(texts[i : i + _TOKENIZE_TEXTS])
        encoded = tokenizer_call(
            model.tokenizer,
            chunk,
            truncation=True,
            max_length=limit,
            return_attention_mask=False,
            return_token_type_ids=False,
        )["input_ids"]
        lengths += [len(ids) for ids in encoded]
        pieces.append(np.fromiter(itertools.chain.from_iterable(encoded), dtype=np.int32))
    starts = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=starts[1:])
    return np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.int32), starts


def _padded_batch(
    model: LoadedModel, ids: np.ndarray, starts: np.ndarray, idx: Sequence[int]
) -> dict[str, torch.Tensor]:
    """The forward-pass inputs of texts `idx`, right-padded to the longest: input ids, attention mask and,
    where the tokenizer has them, token types (all 0 for a single text)."""
    lengths = starts[np.asarray(idx) + 1] - starts[np.asarray(idx)]
    width = int(lengths.max())
    input_ids = np.full((len(idx), width), model.tokenizer.pad_token_id or 0, dtype=np.int64)
    mask = np.zeros((len(idx), width), dtype=np.int64)
    for row, (j, n) in enumerate(zip(idx, lengths, strict=True)):
        input_ids[row, :n] = ids[starts[j] : starts[j] + n]
        mask[row, :n] = 1
    batch = {"input_ids": torch.from_numpy(input_ids), "attention_mask": torch.from_numpy(mask)}
    if "token_type_ids" in model.tokenizer.model_input_names:
        batch["token_type_ids"] = torch.zeros_like(batch["input_ids"])
    return {k: v.to(model.device) for k, v in batch.items()}


@torch.inference_mode()
def embed_texts(
    model: LoadedModel,
    texts: Sequence[str],
    batch_size: int = 256,
    progress: Progress | None = None,
    token_budget: int | None = None,
) -> np.ndarray:
    """Mean-pooled, L2-normalised embeddings of short texts, each read on its own (sentence-transformers style).

    Texts are tokenized once (only their ids are kept, `_token_ids`), sorted by length and run in batches of
    similar lengths (little padding), each within the token budget (see plan_batches) and at most `batch_size`
    texts; a batch's inputs are built when it runs and dropped after. Texts longer than the model's limit are
    truncated.

    Returns:
        (len(texts), hidden) float32.
    """
    limit = min(model.max_tokens, 512)
    hidden_size = model.encoder.config.hidden_size
    result = np.zeros((len(texts), hidden_size), dtype=np.float32)
    if not texts:
        return result
    ids, starts = _token_ids(model, texts, limit)
    lengths = np.diff(starts).tolist()
    batches = [
        batch[i : i + batch_size]
        for batch in plan_batches(lengths, model, token_budget)
        for i in range(0, len(batch), batch_size)
    ]
    done = 0
    for idx in batches:
        # Padded here, not with tokenizer.pad: that changes the shared Rust tokenizer's padding state, which a
        # reading in another thread would see half-way ("Unable to create tensor").
        enc = _padded_batch(model, ids, starts, idx)
        with model.autocast():
            hidden = model.encoder(**enc).last_hidden_state.float()  # (b, L, hidden)
        mask = enc["attention_mask"].unsqueeze(-1).float()
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1)
        result[idx] = torch.nn.functional.normalize(pooled, dim=-1).cpu().numpy()
        done += len(idx)
        if progress:
            progress(done / len(texts), f"embedding sentences: {done} of {len(texts)}")
    return result
