"""A cache bounded by bytes, not by entries: least-recently-used entries go once the total is over budget.

A reader keeps ~1.7 kB per token (float16 token states of two views, vectors, indexes: docs/results.md, "Memory
per token"): ~80 MB for a 79-page PDF, ~1.8 GB for a 1,000-page book, a few hundred kB for a news article, so a
limit in entries (the app kept 8) bounds nothing. Token states in memory-mapped files count as nothing. `ByteBudgetCache` measures every entry
(`estimate_nbytes`, or `reader_nbytes` for a `DocumentReader`), measures it again when a user is done
with it (a reader grows as views are read), and evicts least-recently-used entries past its budget.

An entry in use is never evicted: a `lease` (a `with` block) or a holder's pin (`get(..., holder=h)`:
until `release(h)` or until `h` is garbage-collected, e.g. with the Streamlit session that owns it)
keeps it. If everything in the cache is in use the total may exceed the budget until a user lets go.

The budget is `LONGDOC_CACHE_MB` (default 4096 MB: on a 24 GB machine that leaves room for the models,
~0.6 GB, and for the passes of documents being read, ~0.5 GB each at peak, with plenty to spare).
All methods are thread-safe. No Streamlit here: the app holds one cache per server process.
"""

from __future__ import annotations

import contextlib
import logging
import mmap
import sys
import threading
import types
import weakref
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import numpy as np

from longformer_core import settings

logger = logging.getLogger(__name__)

CACHE_MB_ENV = "LONGDOC_CACHE_MB"
DEFAULT_CACHE_MB = int(settings.BY_NAME[CACHE_MB_ENV].default)

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

# Objects an estimate never walks into: code, classes, modules, locks, and the models (shared by every
# reader, loaded once per server; they are not part of any one document's cost).
_OPAQUE_TYPES: tuple[type, ...] = (
    type,
    types.ModuleType,
    types.FunctionType,
    types.BuiltinFunctionType,
    types.MethodType,
    type(threading.Lock()),
    type(threading.RLock()),
    threading.Condition,
    threading.Event,
)
_OPAQUE_MODULE_PREFIXES = (
    "torch.nn",
    "transformers",
    "tokenizers",
    "longformer_core.model.registry",
    "threading",
)
_MAX_OBJECTS = 2_000_000  # stop walking after this many objects (a guess beyond is still a big number)
_SAMPLE_ABOVE = 20_000  # lists and tuples longer than this are measured on a sample...
_SAMPLE_SIZE = 2_000  # ...of this many items, evenly spaced, and scaled


def cache_limit_bytes() -> int:
    """The cache budget: LONGDOC_CACHE_MB (settings.py) if a positive number, else 4096 MB.

    Returns:
        The budget in bytes.
    """
    return int(settings.positive_number(CACHE_MB_ENV) * 1024 * 1024)


def _is_opaque(obj: object) -> bool:
    if isinstance(obj, _OPAQUE_TYPES):
        return True
    module = type(obj).__module__ or ""
    return module.startswith(_OPAQUE_MODULE_PREFIXES)


def _tensor_nbytes(obj: object) -> int | None:
    """Bytes of a torch tensor's elements, without importing torch; None if `obj` is no tensor."""
    if type(obj).__module__.startswith("torch") and hasattr(obj, "element_size") and hasattr(obj, "nelement"):
        return int(obj.element_size() * obj.nelement())  # type: ignore[attr-defined]
    return None


def _array_nbytes(array: np.ndarray, stack: list[object]) -> int:
    """Memory of a numpy array's own buffer (0 for a memory-mapped file: the system pages it in and out); a
    view of another array pushes that array to be counted once."""
    if isinstance(array, np.memmap) or isinstance(array.base, mmap.mmap):
        return sys.getsizeof(array) - (array.nbytes if array.flags.owndata else 0)
    total = sys.getsizeof(array)  # includes the buffer when the array owns it
    if not array.flags.owndata:
        if isinstance(array.base, np.ndarray):
            stack.append(array.base)  # a view: the buffer is its base's, counted once there
        else:
            total += array.nbytes  # a view of foreign memory (bytes, a tensor): count it here
    return total


def _children(obj: object) -> list[object]:
    """What a container or object refers to (for the walk); [] for leaves."""
    if isinstance(obj, dict):
        return [item for pair in list(obj.items()) for item in pair]
    if isinstance(obj, (list, tuple, set, frozenset)):
        return list(obj)
    children = []
    attributes = getattr(obj, "__dict__", None)
    if isinstance(attributes, dict):
        children.extend(list(attributes.values()))
    for slot in getattr(type(obj), "__slots__", ()):
        if isinstance(slot, str) and slot not in ("__dict__", "__weakref__") and hasattr(obj, slot):
            children.append(getattr(obj, slot))
    return children


def _walk(stack: list[object], seen: set[int], budget: list[int]) -> int:
    """Bytes reachable from `stack`, each object once (see estimate_nbytes); `budget[0]` objects at most."""
    total = 0
    while stack and budget[0] > 0:
        obj = stack.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        budget[0] -= 1
        if isinstance(obj, np.ndarray):
            total += _array_nbytes(obj, stack)
            continue
        tensor_bytes = _tensor_nbytes(obj)
        if tensor_bytes is not None:
            total += tensor_bytes
            continue
        if _is_opaque(obj):
            continue
        total += sys.getsizeof(obj)
        if isinstance(obj, (str, bytes, bytearray, int, float, complex, bool, type(None), memoryview)):
            continue
        try:
            children = _children(obj)
        except RuntimeError:  # changed size while we looked (another thread is filling it): a lower bound
            continue
        if isinstance(obj, (list, tuple)) and len(children) > _SAMPLE_ABOVE:
            # A long sequence (a book's spans: hundreds of thousands of tuples) is measured on an even sample
            # and scaled: walking every item took seconds under the cache's lock.
            step = len(children) / _SAMPLE_SIZE
            sample = [children[int(k * step)] for k in range(_SAMPLE_SIZE)]
            total += round(_walk(sample, seen, budget) * step)
        else:
            stack.extend(children)
    return total


def estimate_nbytes(root: object, skip: tuple[object, ...] = ()) -> int:
    """Approximate memory held by `root` and everything reachable from it, each object counted once.

    Counts numpy arrays by their buffers (a view counts its base once; a memory-mapped file counts nothing:
    the system keeps in memory only the pages in use and can drop them), torch tensors by their elements,
    strings, bytes, numbers and containers by `sys.getsizeof`, and walks lists, tuples, sets, dicts,
    dataclasses and other objects' attributes (`__dict__` and `__slots__`). A list or tuple of more than
    `_SAMPLE_ABOVE` items is measured on `_SAMPLE_SIZE` of them, evenly spaced, and scaled. Never walks into
    code, modules, locks or models (torch modules, transformers/tokenizers objects,
    `longformer_core.model.registry`).

    Args:
        root: the object to measure.
        skip: objects not to count (and not to walk into), e.g. the shared models of a reader.

    Returns:
        The estimate in bytes (Python object overheads included, allocator slack not).
    """
    return _walk([root], {id(obj) for obj in skip}, [_MAX_OBJECTS])


def reader_nbytes(reader: Any) -> int:
    """Memory one `DocumentReader` holds for its document: token states of each view read so far,
    tokens and offsets, sentence and passage vectors, indexes, the document text; not the models.

    Walks the reader's attributes (`estimate_nbytes`) so that whatever a reader caches on itself is
    counted, whatever it is called. Vectors it shares with other readers in a module-level table are
    not counted here.

    Args:
        reader: a `longformer_core.reading.document_reading.DocumentReader` (anything with a `pair` of models works).

    Returns:
        The estimate in bytes.
    """
    pair = getattr(reader, "pair", None)
    shared: tuple[object, ...] = () if pair is None else (pair, *vars(pair).values())
    return estimate_nbytes(reader, skip=shared)


@dataclass(frozen=True)
class CacheStats:
    """A snapshot of a cache, for logs, tests and the soak report."""

    entries: int
    nbytes: int  # estimated total of all entries
    max_bytes: int
    in_use: int  # entries held by a lease or a holder
    hits: int
    misses: int  # builds
    evictions: int


@dataclass
class _Entry(Generic[V]):
    value: V
    nbytes: int
    users: int = 0  # active leases plus holders pinning it


class Holder:
    """Something that can pin cache entries (one per app session); its pins go when it is collected."""

    __slots__ = ("__weakref__", "label")

    def __init__(self, label: str = "") -> None:
        self.label = label

    def __repr__(self) -> str:
        return f"Holder({self.label!r})"


class ByteBudgetCache(Generic[K, V]):
    """Least-recently-used cache whose entries' estimated sizes add up to at most `max_bytes`.

    Values are built on first use by the caller's `build()` (outside the lock; concurrent requests for
    the same key wait for one build instead of building twice).

    Args:
        max_bytes: the budget; default `cache_limit_bytes()` (env LONGDOC_CACHE_MB, else 4096 MB).
        size_of: how to measure a value in bytes; default `estimate_nbytes`.
        name: shown in log messages.
    """

    def __init__(
        self,
        max_bytes: int | None = None,
        size_of: Callable[[V], int] = estimate_nbytes,
        name: str = "cache",
    ) -> None:
        self.max_bytes = cache_limit_bytes() if max_bytes is None else max_bytes
        self.name = name
        self._size_of = size_of
        self._lock = threading.RLock()
        self._entries: OrderedDict[K, _Entry[V]] = OrderedDict()  # least recently used first
        self._building: dict[K, Future[None]] = {}
        self._pins: weakref.WeakKeyDictionary[Holder, set[K]] = weakref.WeakKeyDictionary()
        self._hits = 0
        self._misses = 0
        self._evictions = 0
        self._over_budget_logged = False
        # Pins of holders garbage-collected since: released at the next call (a finalizer may run in the
        # middle of any code, even this class's own, so it only appends here; list.append is atomic).
        self._collected: list[set[K]] = []

    # -- using entries -----------------------------------------------------------------------------

    @contextlib.contextmanager
    def lease(self, key: K, build: Callable[[], V]) -> Iterator[V]:
        """The value for `key` (built if missing), never evicted while the block runs.

        Args:
            key: the cache key.
            build: makes the value when it is not cached.

        Yields:
            The value. On leaving the block it is measured again (it may have grown) and the cache
            evicts least-recently-used entries not in use until it is within budget.
        """
        value = self._acquire(key, build, users=1)
        try:
            yield value
        finally:
            self._let_go(key)

    def get(self, key: K, build: Callable[[], V], holder: Holder | None = None) -> V:
        """The value for `key`, built if missing; pinned for `holder` if one is given.

        Args:
            key: the cache key.
            build: makes the value when it is not cached.
            holder: keeps the entry from eviction until `release(holder)` or until the holder object
                is garbage-collected. Without one, the entry may be evicted as soon as the cache is
                over budget (the caller's reference stays valid).

        Returns:
            The value.
        """
        if holder is None:
            value = self._acquire(key, build, users=0)
            with self._lock:
                self._evict_locked()
            return value
        value = self._acquire(key, build, users=1)  # counted as in use at once: no eviction gap
        with self._lock:
            keys = self._pins.get(holder)
            if keys is None:
                keys = set()
                self._pins[holder] = keys
                weakref.finalize(holder, self._collected.append, keys)
            entry = self._entries.get(key)
            if key in keys and entry is not None:
                entry.users -= 1  # this holder pinned it already
            elif entry is not None:
                keys.add(key)
        return value

    def release(self, holder: Holder, keep: Callable[[K], bool] | None = None) -> None:
        """Unpin the entries `holder` pinned (then evict past the budget).

        Args:
            holder: whose pins to drop.
            keep: pins for which this returns True stay (e.g. the documents a session still shows).
        """
        with self._lock:
            keys = self._pins.get(holder)
            if not keys:
                return
            dropped = {key for key in keys if keep is None or not keep(key)}
            for key in dropped:
                entry = self._entries.get(key)
                if entry is not None and entry.users > 0:
                    entry.users -= 1
                    entry.nbytes = self._measure(entry.value)
            keys -= dropped
            self._evict_locked()

    def _acquire(self, key: K, build: Callable[[], V], users: int) -> V:
        while True:
            with self._lock:
                entry = self._entries.get(key)
                if entry is not None:
                    self._entries.move_to_end(key)
                    entry.users += users
                    self._hits += 1
                    return entry.value
                pending = self._building.get(key)
                if pending is None:
                    pending = Future()
                    self._building[key] = pending
                    builder = True
                else:
                    builder = False
            if not builder:
                pending.result()  # the builder's exception, if it failed, is raised here too
                continue  # picked up from the entries (or, if evicted already, built again)
            try:
                value = build()
            except BaseException as error:
                with self._lock:
                    del self._building[key]
                pending.set_exception(error)
                raise
            nbytes = self._measure(value)
            with self._lock:
                self._entries[key] = _Entry(value, nbytes, users)
                del self._building[key]
                self._misses += 1
                # Make room now; the new entry is the most recent, and in use if `users`.
                self._evict_locked()
            pending.set_result(None)
            return value

    def _let_go(self, key: K) -> None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                entry.users = max(entry.users - 1, 0)
                entry.nbytes = self._measure(entry.value)
            self._evict_locked()

    def _measure(self, value: V) -> int:
        try:
            return int(self._size_of(value))
        except Exception:  # a measuring bug must not break the app: count it as nothing, loudly
            logger.warning("%s: could not measure an entry", self.name, exc_info=True)
            return 0

    def _evict_locked(self) -> None:
        while self._collected:
            keys = self._collected.pop()
            for key in keys:
                entry = self._entries.get(key)
                if entry is not None and entry.users > 0:
                    entry.users -= 1
            keys.clear()
        total = sum(entry.nbytes for entry in self._entries.values())
        if total <= self.max_bytes:
            self._over_budget_logged = False
            return
        for key in list(self._entries):
            if total <= self.max_bytes:
                break
            entry = self._entries[key]
            if entry.users > 0:
                continue  # in use by someone: never evicted under them
            del self._entries[key]
            total -= entry.nbytes
            self._evictions += 1
        if total > self.max_bytes and not self._over_budget_logged:
            self._over_budget_logged = True
            logger.warning(
                "%s: %.0f MB in use, over the %.0f MB budget (every entry is in use; it shrinks when they "
                "are released).",
                self.name,
                total / 2**20,
                self.max_bytes / 2**20,
            )

    # -- looking at it -----------------------------------------------------------------------------

    def __contains__(self, key: object) -> bool:
        with self._lock:
            return key in self._entries

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def keys(self) -> list[K]:
        """Cached keys, least recently used first."""
        with self._lock:
            return list(self._entries)

    @property
    def nbytes(self) -> int:
        """Estimated bytes of all entries (as last measured)."""
        with self._lock:
            return sum(entry.nbytes for entry in self._entries.values())

    def stats(self) -> CacheStats:
        """Counts and sizes right now."""
        with self._lock:
            self._evict_locked()  # also applies the releases of collected holders
            return CacheStats(
                entries=len(self._entries),
                nbytes=sum(entry.nbytes for entry in self._entries.values()),
                max_bytes=self.max_bytes,
                in_use=sum(1 for entry in self._entries.values() if entry.users > 0),
                hits=self._hits,
                misses=self._misses,
                evictions=self._evictions,
            )

    def clear(self) -> None:
        """Drop every entry not in use."""
        with self._lock:
            for key in [k for k, entry in self._entries.items() if entry.users == 0]:
                del self._entries[key]
