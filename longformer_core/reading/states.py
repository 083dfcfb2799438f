"""Token states: what one view's pass keeps (`DocumentPass`), and where a reader keeps it (`StateStore`).

Memory per token is what decides how long a document the app can read (docs/results.md, "Memory per token"). The
states of a pass are only ever compared (cosines with a question, means over a passage or a document), so the
app's reader keeps them in float16 (`STATE_DTYPE`): half of float32, and means are still taken in float32
(`DocumentPass.pooled`). A reader keeps states in memory up to its budget (by default half of LONGDOC_CACHE_MB, so
at least two long documents fit the cache); a pass that would go past it is written into a memory-mapped file
under LONGDOC_CACHE/states instead. The file is unlinked as soon as it is mapped (POSIX): no name is left on disk,
and its space is freed when the last array using it is dropped. The operating system keeps the pages it can in
memory and writes the rest out, so a document too long for the budget still reads, more slowly, instead of
pushing the server out of memory.
"""

from __future__ import annotations

import logging
import math
import mmap
import os
import tempfile
import threading
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from longformer_core import settings
from longformer_core.reading.cache import cache_limit_bytes

logger = logging.getLogger(__name__)

STATE_DTYPE = np.float16  # the app's reader keeps token states in half precision (they are only compared)
STATES_FOLDER = "states"  # under LONGDOC_CACHE: memory-mapped token states of documents past the budget
STATES_SHARE_OF_CACHE = 0.5  # one reader's in-memory states may take this share of LONGDOC_CACHE_MB


@dataclass
class DocumentPass:
    """Token states from one view of the document (question-independent, cacheable)."""

    view: str
    hidden: np.ndarray  # (n_seen, hidden) last layer, merged over windows; float32 or float16, maybe mapped
    last4: np.ndarray | None  # (n_seen, hidden) sum of the last 4 layers (same dtype), when asked for
    window_first: np.ndarray  # (n_windows, hidden) float32 state of each window's first token ([CLS] / <s>)
    windows: list[tuple[int, int]]  # document token ranges, one per forward pass
    n_global: int  # global tokens used (all windows)
    seconds: float
    seen: tuple[int, int] = field(default=(0, 0))  # document tokens the view could see

    @property
    def n_seen(self) -> int:
        return self.seen[1] - self.seen[0]

    def states(self, layers: str = "last") -> np.ndarray:
        """The kept states of `layers` ("last" or "last4"), (n_seen, hidden) in the pass's dtype.

        Raises:
            ValueError: "last4" from a pass that did not keep it (read the view again with last4=True).
        """
        if layers == "last":
            return self.hidden
        if layers == "last4" and self.last4 is not None:
            return self.last4
        raise ValueError(
            f"This {self.view} pass did not keep the layers '{layers}': read the view with last4=True."
        )

    def pooled(
        self, start: int = 0, end: int | None = None, layers: str = "last", how: str = "mean"
    ) -> np.ndarray:
        """Mean (or sum, `how="sum"`) of the states of tokens [start, end), accumulated in float32 whatever the
        stored dtype (a float16 sum over a long document would overflow).

        Returns:
            (hidden,) float32.
        """
        block = self.states(layers)[start:end]
        if how == "sum":
            return block.sum(0, dtype=np.float32)
        return block.mean(0, dtype=np.float32)

    def arrays(self) -> list[np.ndarray]:
        """The token-state arrays this pass keeps (what its size is made of)."""
        return [a for a in (self.hidden, self.last4) if a is not None]


def window_owners(n_tokens: int, windows: Sequence[tuple[int, int]]) -> np.ndarray:
    """For each token, the window where it sits furthest from an edge (the first such window on ties).

    A token's merged state comes from its owner, so each batch of windows can be written into the final array
    as soon as it is computed.

    Returns:
        (n_tokens,) int32 window index (-1 for a token no window covers).
    """
    owner = np.full(n_tokens, -1, dtype=np.int32)
    best = np.full(n_tokens, -1, dtype=np.int32)
    for i, (s, e) in enumerate(windows):
        pos = np.arange(s, e, dtype=np.int32)
        margin = np.minimum(pos - s, e - 1 - pos)
        better = margin > best[s:e]
        owner[s:e][better] = i
        best[s:e][better] = margin[better]
    return owner


def states_budget_bytes() -> int:
    """Bytes of token states one reader keeps in memory: half of LONGDOC_CACHE_MB (2 GB by default)."""
    return int(cache_limit_bytes() * STATES_SHARE_OF_CACHE)


def states_folder() -> Path:
    """Where token states past the memory budget are mapped: LONGDOC_CACHE/states."""
    return settings.cache_dir() / STATES_FOLDER


def is_mapped(array: np.ndarray) -> bool:
    """Whether an array's buffer is a memory-mapped file (a np.memmap, or a view of one)."""
    current: object = array
    while isinstance(current, np.ndarray):
        if isinstance(current, np.memmap):
            return True
        current = current.base
    return isinstance(current, mmap.mmap)


def _remove_quietly(path: str) -> None:
    try:
        os.remove(path)
    except OSError:
        logger.warning("Could not remove the states file %s", path)


def mapped_zeros(shape: tuple[int, ...], dtype: np.dtype | type, folder: Path | None = None) -> np.ndarray:
    """A zeroed array backed by a new file under `folder` (default LONGDOC_CACHE/states), mapped read-write.

    The file is unlinked at once where the system allows it (its space goes with the last reference to the
    array); elsewhere it is removed when the array is garbage-collected.

    Raises:
        OSError: the folder cannot be created or the file written (disk full, read-only cache).
    """
    nbytes = math.prod(shape) * np.dtype(dtype).itemsize
    if nbytes == 0:
        return np.zeros(shape, dtype=dtype)
    folder = folder or states_folder()
    folder.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(prefix="states-", suffix=".bin", dir=folder)
    try:
        os.ftruncate(handle, nbytes)  # sparse: blocks are written as the states come
        array = np.memmap(name, dtype=dtype, mode="r+", shape=shape)
    finally:
        os.close(handle)
    try:
        os.unlink(name)  # POSIX: the mapping stays valid; no name is left on disk
    except OSError:
        weakref.finalize(array, _remove_quietly, name)
    return array


class StateStore:
    """Hands out the arrays a reader's passes write their states into: in memory while the reader's in-memory
    states stay within `budget_bytes`, else memory-mapped files under `folder`. Thread-safe.

    Args:
        budget_bytes: in-memory bytes allowed (default `states_budget_bytes()`).
        folder: where mapped files go (default LONGDOC_CACHE/states, read when first needed).
    """

    def __init__(self, budget_bytes: int | None = None, folder: Path | None = None) -> None:
        self.budget_bytes = states_budget_bytes() if budget_bytes is None else int(budget_bytes)
        self.folder = folder
        self.in_memory_bytes = 0
        self.mapped_bytes = 0
        self._owned: dict[
            int, weakref.ref[np.ndarray]
        ] = {}  # what this store handed out, by id (arrays are unhashable)
        self._lock = threading.Lock()

    def allocate(self, shape: tuple[int, int], dtype: np.dtype) -> np.ndarray:
        """A zeroed (n, hidden) array: in memory if it fits what is left of the budget, else mapped."""
        nbytes = math.prod(shape) * np.dtype(dtype).itemsize
        with self._lock:
            if self.in_memory_bytes + nbytes <= self.budget_bytes:
                self.in_memory_bytes += nbytes
                array = np.zeros(shape, dtype=dtype)
                self._own(array)
                return array
            self.mapped_bytes += nbytes
        logger.info(
            "Token states of %.0f MB go to a memory-mapped file (in memory already: %.0f MB of %.0f MB).",
            nbytes / 2**20,
            self.in_memory_bytes / 2**20,
            self.budget_bytes / 2**20,
        )
        array = mapped_zeros(shape, dtype, self.folder)
        with self._lock:
            self._own(array)
        return array

    def _own(self, array: np.ndarray) -> None:
        self._owned = {
            key: ref for key, ref in self._owned.items() if ref() is not None
        }  # a reader has a few
        self._owned[id(array)] = weakref.ref(array)

    def _owns(self, array: np.ndarray) -> bool:
        ref = self._owned.get(id(array))
        return ref is not None and ref() is array

    def forget(self, arrays: Sequence[np.ndarray]) -> None:
        """Arrays of a pass that is being replaced: their bytes no longer count against the budget (arrays
        another reader's store handed out are not this store's to forget)."""
        with self._lock:
            for array in arrays:
                if not self._owns(array):
                    continue
                del self._owned[id(array)]
                if is_mapped(array):
                    self.mapped_bytes = max(0, self.mapped_bytes - array.nbytes)
                else:
                    self.in_memory_bytes = max(0, self.in_memory_bytes - array.nbytes)
