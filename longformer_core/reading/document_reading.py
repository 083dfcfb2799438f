"""One document read by one model pair under one strategy: the cacheable unit every task builds on.

A `DocumentReader` tokenizes the document once per tokenizer, runs each view (truncated, chunked,
longformer) at most once, and keeps the token states. Tasks (qa, classify, similarity) take a reader,
so asking a second question or switching task does not re-encode the document. The app caches readers
keyed by document hash + model + strategy.
"""

from __future__ import annotations

import dataclasses
import functools
import threading
import weakref
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from longformer_core import settings
from longformer_core.documents import Document, DocumentTooLargeError, paragraph_spans, sentence_spans
from longformer_core.documents.passages import Passages, passages
from longformer_core.model.registry import LoadedModel, ModelPair
from longformer_core.reading.cache import estimate_nbytes
from longformer_core.reading.encoding import (
    VIEWS,
    DocumentPass,
    DocumentTokens,
    Progress,
    embed_texts,
    encode_document,
    tokenize,
)
from longformer_core.reading.priority import waiting_for_background, yield_in_background
from longformer_core.reading.retrieval import LexicalIndex
from longformer_core.reading.states import STATE_DTYPE, StateStore, is_mapped
from longformer_core.reading.strategies import DEFAULT_EVERY_K, GlobalPlan, plan_global

# A reading keeps ~1.8 kB per token for questions: the float16 last-layer states of the chunked and Longformer
# views (768 bytes each at hidden 384), passage vectors and states, tokens and indexes (the table in
# docs/results.md, "Memory per token", computed from the shapes and checked on a real document). 1,500,000
# tokens (a 1,500-page book) is ~2.7 GB; past half of LONGDOC_CACHE_MB a reader's states go to a memory-mapped
# file instead (states.py). States grow with the models' width, so the default limit shrinks in proportion for
# wider models (750,000 tokens at hidden 768, e.g. longformer-base-4096 with roberta-base).
DEFAULT_MAX_TOKENS = 1_500_000
REFERENCE_HIDDEN = 384  # the embedded MiniLM pair's width, which DEFAULT_MAX_TOKENS was sized for
MAX_TOKENS_ENV = "LONGDOC_MAX_TOKENS"

_PASSAGE_CACHE_SIZE = 8  # documents per model whose passage embeddings stay in memory (a few MB each)
# Passage embeddings depend on the document and the baseline only, so readers of the same document under other
# strategies share them. Keyed by the model object itself (weakly: a model that is garbage-collected takes its
# vectors with it, and a new model can never inherit them the way a reused id() could).
_PASSAGE_VECTORS: weakref.WeakKeyDictionary[object, dict[str, np.ndarray]] = weakref.WeakKeyDictionary()
_PASSAGE_LOCK = threading.Lock()  # guards the tables here; held for moments, never while a model runs
# One lock per (baseline, document): two sessions reading the same document embed its passages once, and a
# long document's embedding (minutes under load) never holds up another document's.
_EMBEDDING_LOCKS: dict[tuple[int, str], threading.Lock] = {}  # by id(model): a reused id only shares a lock


# A document's tokens, shared by its readers under other strategies while any of them keeps them (the sidebar's
# token count and the Ask page's reading tokenize a book once, not twice): weak both ways.
_TOKENS: weakref.WeakKeyDictionary[object, weakref.WeakValueDictionary[tuple[str, int], DocumentTokens]] = (
    weakref.WeakKeyDictionary()
)


def shared_tokens(tokenizer: object, document: Document, stop_after: int) -> DocumentTokens:
    """The document's tokens (`tokenize`, stopping after `stop_after`), computed once while a reader keeps them."""
    with _PASSAGE_LOCK:
        done = _TOKENS.get(tokenizer, {}).get((document.sha256, stop_after))
    if done is not None:
        return done
    tokens = tokenize(tokenizer, document.text, stop_after=stop_after)
    with _PASSAGE_LOCK:
        return _TOKENS.setdefault(tokenizer, weakref.WeakValueDictionary()).setdefault(
            (document.sha256, stop_after), tokens
        )


# The baseline's passes (truncated, chunked) do not depend on the strategy: readers of one document under other
# strategies share them while any of them keeps them (a book's Ask reading and its Classify or Compare reading read
# its chunked view once). One lock per pass being read, so a second reader waits for it instead of reading again.
_SHARED_PASSES: weakref.WeakKeyDictionary[object, weakref.WeakValueDictionary[tuple, DocumentPass]] = (
    weakref.WeakKeyDictionary()
)
_PASS_LOCKS: dict[tuple[int, tuple], threading.Lock] = {}  # dropped once the pass is in _SHARED_PASSES


def _shared_pass(model: object, key: tuple, last4: bool) -> DocumentPass | None:
    with _PASSAGE_LOCK:
        found = _SHARED_PASSES.get(model, {}).get(key)
    return found if found is not None and (not last4 or found.last4 is not None) else None


def _embedding_lock(model: object, sha256: str) -> threading.Lock:
    with _PASSAGE_LOCK:
        return _EMBEDDING_LOCKS.setdefault((id(model), sha256), threading.Lock())


class cached_property(functools.cached_property):
    """`functools.cached_property` with a lock per reader and attribute, not one per class attribute.

    Until Python 3.12 the standard one holds a single lock per attribute for all instances while it computes:
    tokenizing or splitting one long document (seconds under load) held up every other session's reader.
    A thread that finds another computing the value waits as `priority.waiting_for_background` does: the other
    may be a background reading that pauses (between pages of its passages) while foreground work runs, and the
    waiting thread's own question must not be what it pauses for.
    """

    def __get__(self, instance: object, owner: type | None = None) -> object:
        if instance is None:
            return self
        cache = instance.__dict__
        value = cache.get(self.attrname, _MISSING)
        if value is _MISSING:
            # dict.setdefault is atomic: every thread gets the same lock
            lock = cache.setdefault("_property_locks", {}).setdefault(self.attrname, threading.Lock())
            if not lock.acquire(blocking=False):
                with waiting_for_background():
                    lock.acquire()
            try:
                value = cache.get(self.attrname, _MISSING)
                if value is _MISSING:
                    value = self.func(instance)
                    cache[self.attrname] = value
            finally:
                lock.release()
        return value


_MISSING = object()


def max_document_tokens(pair: ModelPair | None = None) -> int:
    """Longest document the app reads, in tokens: env LONGDOC_MAX_TOKENS if a positive integer, else
    1,500,000 for models as wide as the embedded pair, and proportionally fewer for wider ones (750,000 for a
    hidden size of 768), rounded down to a thousand."""
    raw = settings.value(MAX_TOKENS_ENV)
    try:
        value = int(raw) if raw else 0
    except ValueError:
        value = 0
    if value > 0:
        return value
    if pair is None:
        return DEFAULT_MAX_TOKENS
    widest = max(model.encoder.config.hidden_size for model in (pair.longformer, pair.baseline))
    scaled = DEFAULT_MAX_TOKENS * REFERENCE_HIDDEN // max(widest, REFERENCE_HIDDEN)
    return scaled // 1000 * 1000


def check_token_count(n_tokens: int, document: Document, limit: int) -> None:
    """Refuse a document longer than `limit` tokens with a message for the user (DocumentTooLargeError)."""
    if n_tokens > limit:
        raise DocumentTooLargeError(
            f"'{document.name}' is too long for this app: more than {limit:,} tokens (small pieces of words), "
            "more than it can read within its memory budget. Split it into smaller parts, or upload only the "
            "chapters you need."
        )


@dataclass(frozen=True)
class ViewInfo:
    """What one view could see: shown next to every result."""

    view: str
    model_name: str
    seen_tokens: tuple[int, int]  # document tokens [start, end) the view read
    seen_chars: tuple[int, int]  # the same as characters
    n_tokens: int  # document length in this model's tokens
    windows: int  # forward passes


class DocumentReader:
    """Lazily encoded views of one document for one model pair and strategy.

    Args:
        pair: the Longformer and its 512-token baseline.
        document: the document.
        strategy: global-attention strategy key for the Longformer pass (see strategies.STRATEGIES).
        keywords: terms for the "keywords" strategy.
        every_k: spacing for the "every_k" strategy.
        max_tokens: refuse longer documents (DocumentTooLargeError when first tokenized); default
            `max_document_tokens(pair)` (env LONGDOC_MAX_TOKENS, else 1,500,000 scaled down for models wider
            than the embedded pair).
        state_dtype: dtype of the kept token states (default float16: they are only compared; see states.py).
        states_budget_bytes: token states kept in memory at most; passes past it are memory-mapped files
            under LONGDOC_CACHE/states (default half of LONGDOC_CACHE_MB).
    """

    def __init__(
        self,
        pair: ModelPair,
        document: Document,
        strategy: str = "cls",
        keywords: Sequence[str] = (),
        every_k: int = DEFAULT_EVERY_K,
        max_tokens: int | None = None,
        state_dtype: type = STATE_DTYPE,
        states_budget_bytes: int | None = None,
    ) -> None:
        self.pair = pair
        self.state_dtype = state_dtype
        self.state_store = StateStore(states_budget_bytes)
        self.max_tokens = max_document_tokens(pair) if max_tokens is None else max_tokens
        self.document = document
        self.strategy = strategy
        self.keywords = tuple(keywords)
        self.every_k = every_k
        self._passes: dict[str, DocumentPass] = {}
        self._passage_states: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        # This reader's passage vectors once embedded or found: the shared cache below keeps only the last
        # documents embedded, and a book's must not be embedded again (minutes) after other sessions' uploads.
        self._passage_vectors: np.ndarray | None = None
        self._global_masks: dict[str, np.ndarray] = {}  # other strategies' masks (`global_mask_of`)
        self._lock = threading.RLock()  # one reader may be shared by several app sessions
        _ = self.plan  # validate the strategy now, not at the first task

    def model_for(self, view: str) -> LoadedModel:
        if view not in VIEWS:
            raise ValueError(f"Unknown view '{view}': choose one of {', '.join(VIEWS)}.")
        return self.pair.longformer if view == "longformer" else self.pair.baseline

    @cached_property
    def long_tokens(self) -> DocumentTokens:
        tokens = shared_tokens(self.pair.longformer.tokenizer, self.document, self.max_tokens)
        check_token_count(len(tokens), self.document, self.max_tokens)
        return tokens

    @cached_property
    def base_tokens(self) -> DocumentTokens:
        if self.pair.same_tokenizer:
            return self.long_tokens
        tokens = shared_tokens(self.pair.baseline.tokenizer, self.document, self.max_tokens)
        check_token_count(len(tokens), self.document, self.max_tokens)
        return tokens

    def tokens_for(self, view: str) -> DocumentTokens:
        return self.long_tokens if view == "longformer" else self.base_tokens

    @cached_property
    def plan(self) -> GlobalPlan:
        return plan_global(
            self.strategy, self.document, self.long_tokens, every_k=self.every_k, keywords=self.keywords
        )

    def global_mask_of(self, strategy: str) -> np.ndarray:
        """(len(long_tokens),) bool: the Longformer's document tokens `strategy` marks global, computed once per
        strategy (e.g. the paragraph starts a long reader was trained to see global, whatever `self.strategy`)."""
        if strategy == self.strategy:
            return self.plan.doc_mask
        with self._lock:
            if strategy not in self._global_masks:
                plan = plan_global(
                    strategy, self.document, self.long_tokens, every_k=self.every_k, keywords=self.keywords
                )
                self._global_masks[strategy] = plan.doc_mask
            return self._global_masks[strategy]

    @cached_property
    def sentences(self) -> list[tuple[int, int]]:
        return sentence_spans(self.document.text)

    @cached_property
    def paragraphs(self) -> list[tuple[int, int]]:
        return paragraph_spans(self.document.text)

    @cached_property
    def paragraph_starts(self) -> np.ndarray:
        """(n_paragraphs,) int64 start of each paragraph, for finding the one around a character."""
        return np.array([a for a, _ in self.paragraphs], dtype=np.int64)

    @cached_property
    def passages(self) -> Passages:
        """The units retrieval ranks and answers come from (layout-aware for PDFs; see passages.py). Built by a
        background reading first thing, pausing between pages while a question runs (`priority`)."""
        return passages(self.document, pause=yield_in_background)

    @cached_property
    def lexical_index(self) -> LexicalIndex:
        """BM25 over the passages, built once per reading (pausing as `passages` does)."""
        # A table cell's text carries its caption and headers.
        return LexicalIndex(self.passages.texts, pause=yield_in_background)

    def passage_vectors_ready(self) -> bool:
        # No lock to read: a background reading may hold it while it embeds (issue 16).
        return self._passage_vectors is not None or self.document.sha256 in _PASSAGE_VECTORS.get(
            self.pair.baseline.model, {}
        )

    def embed_passages(self, progress: Progress | None = None) -> np.ndarray:
        """Each passage embedded on its own by the baseline: (n_passages, hidden), L2-normalised.

        They depend only on the document and the baseline, not on the strategy, so readers of the same
        document share them (switching strategy or task does not embed the passages again). Two sessions
        asking at once embed once: the second waits for the first. The reader keeps its own (the shared cache
        keeps the last `_PASSAGE_CACHE_SIZE` documents), so they live as long as it does.
        """
        if self._passage_vectors is not None:
            return self._passage_vectors
        model = self.pair.baseline.model
        done = _PASSAGE_VECTORS.get(model, {}).get(self.document.sha256)  # no lock to read (issue 16)
        if done is not None:
            self._passage_vectors = done
            return done
        sha256 = self.document.sha256
        with _embedding_lock(model, sha256):
            done = _PASSAGE_VECTORS.get(model, {}).get(sha256)  # embedded meanwhile by another session
            if done is not None:
                self._passage_vectors = done
                return done
            texts = self.passages.texts
            vectors = embed_texts(self.pair.baseline, texts, progress=progress)
            with _PASSAGE_LOCK:
                per_model = _PASSAGE_VECTORS.setdefault(model, {})
                per_model[sha256] = vectors
                while len(per_model) > _PASSAGE_CACHE_SIZE:  # oldest first
                    oldest = next(iter(per_model))
                    del per_model[oldest]
                    _EMBEDDING_LOCKS.pop((id(model), oldest), None)
            self._passage_vectors = vectors
            return vectors

    @property
    def passage_vectors(self) -> np.ndarray:
        return self.embed_passages()

    def passage_states(self, view: str) -> tuple[np.ndarray, np.ndarray]:
        """`pool_spans` over the passages, cached per view (every question scores all passages)."""
        done = self._passage_states.get(view)  # no lock to read: another view's pass may hold it (issue 16)
        if done is not None:
            return done
        self.encoded(view)
        with self._lock:  # a reader is shared by sessions: compute each view's states once
            if view not in self._passage_states:
                self._passage_states[view] = self.pool_spans(view, self.passages.spans)
            return self._passage_states[view]

    def has_pass(self, view: str, last4: bool = False) -> bool:
        """Whether the view is read (with the sum of its last four layers too, when `last4`)."""
        done = self._passes.get(view)
        return done is not None and (not last4 or done.last4 is not None)

    def encoded(self, view: str, progress: Progress | None = None, last4: bool = False) -> DocumentPass:
        """The view's token states, computed on first use: the last layer, and the sum of the last four when
        `last4` (only the similarity poolings and corpus embeddings use it: a pass read without it is read
        again once, with it, when they first ask)."""
        done = self._passes.get(view)  # no lock to read: a pass of another view may be running (issue 16)
        if done is not None and (not last4 or done.last4 is not None):
            return done
        with self._lock:
            done = self._passes.get(view)
            if done is not None and (not last4 or done.last4 is not None):
                return done
            if view == "chunked" and self.has_pass("truncated", last4) and self._fits_one_chunk():
                # One chunk covers the whole document: the chunked pass is the truncated pass.
                self._passes[view] = dataclasses.replace(
                    self._passes["truncated"], view="chunked", seconds=0.0
                )
                return self._passes[view]
            fresh = self._read_or_borrow(view, last4, progress)
            # A pass read before without the layers asked for now stays usable until its replacement is ready.
            replaced, self._passes[view] = self._passes.get(view), fresh
            if replaced is not None:
                kept = {id(a) for p in self._passes.values() for a in p.arrays()}  # truncated may share them
                self.state_store.forget([a for a in replaced.arrays() if id(a) not in kept])
            return fresh

    def _read(self, view: str, last4: bool, progress: Progress | None) -> DocumentPass:
        return encode_document(
            self.model_for(view),
            self.tokens_for(view),
            view,
            doc_global=self.plan.doc_mask if view == "longformer" else None,
            global_first=self.plan.global_first,
            keep_last4=last4,
            progress=progress,
            state_dtype=self.state_dtype,
            allocate=self.state_store.allocate,
        )

    def _read_or_borrow(self, view: str, last4: bool, progress: Progress | None) -> DocumentPass:
        """The view's pass: the Longformer's is read by this reader (it depends on the strategy); the baseline's
        is taken from another reader of the document that read it, or read once for all of them."""
        model = self.model_for(view)
        if view == "longformer":
            return self._read(view, last4, progress)
        first = self.plan.global_first if model.is_longformer else None  # a Longformer baseline uses it
        key = (self.document.sha256, self.max_tokens, view, np.dtype(self.state_dtype).str, first)
        found = _shared_pass(model.model, key, last4)
        if found is not None:
            return found
        with _PASSAGE_LOCK:
            lock = _PASS_LOCKS.setdefault((id(model.model), key), threading.Lock())
        with lock:
            found = _shared_pass(model.model, key, last4)  # read meanwhile by another reader
            if found is not None:
                return found
            fresh = self._read(view, last4, progress)
            with _PASSAGE_LOCK:
                _SHARED_PASSES.setdefault(model.model, weakref.WeakValueDictionary())[key] = fresh
                _PASS_LOCKS.pop((id(model.model), key), None)
            return fresh

    def _fits_one_chunk(self) -> bool:
        truncated = self._passes["truncated"]
        return truncated.seen[1] >= len(self.base_tokens) and len(truncated.windows) == 1

    def view_info(self, view: str) -> ViewInfo:
        tokens = self.tokens_for(view)
        p = self.encoded(view)
        s, e = p.seen
        chars = tokens.char_span(s, e) if e > s else (0, 0)
        if e >= len(tokens):
            chars = (chars[0], len(self.document.text))
        return ViewInfo(view, self.model_for(view).name, p.seen, chars, len(tokens), len(p.windows))

    def pool_spans(
        self, view: str, spans: Sequence[tuple[int, int]], layers: str = "last"
    ) -> tuple[np.ndarray, np.ndarray]:
        """Mean of the view's token states over each character span.

        Args:
            view: which pass.
            spans: character spans.
            layers: "last" (last layer) or "last4" (sum of the last four layers).
        Returns:
            (vectors (n_spans, hidden) float32 L2-normalised, seen (n_spans,) bool: the view read the span).
        """
        p = self.encoded(view, last4=layers == "last4")
        tokens = self.tokens_for(view)
        states = p.states(layers)
        out = np.zeros((len(spans), states.shape[1]), dtype=np.float32)
        seen = np.zeros(len(spans), dtype=bool)
        for i, (a, b) in enumerate(spans):
            t0, t1 = tokens.tokens_in(a, b)
            if t1 > t0 and t1 <= p.seen[1]:
                out[i] = states[t0:t1].mean(0, dtype=np.float32)  # float16 states, float32 sums
                seen[i] = True
        out /= np.linalg.norm(out, axis=1, keepdims=True) + 1e-12
        return out, seen

    def memory_by_component(self) -> dict[str, int]:
        """Bytes this reading holds now, by component: what docs/results.md's "Memory per token" table lists.

        Keys: "states <view> <layers>" (token states; "(mapped)" when in a memory-mapped file), "window
        states <view>", "passage states <view>", "passage vectors" (shared by the readers of this document),
        "tokens", "lexical index", "passages", "sentences", "paragraphs", "text". Only what was computed so far
        is listed; arrays shared between views (a short document's chunked pass is its truncated pass) count once.
        """
        out: dict[str, int] = {}
        counted: set[int] = set()
        for view, p in list(self._passes.items()):
            for layers, array in (("last", p.hidden), ("last4", p.last4)):
                if array is not None and id(array) not in counted:
                    counted.add(id(array))
                    out[f"states {view} {layers}" + (" (mapped)" if is_mapped(array) else "")] = array.nbytes
            out[f"window states {view}"] = p.window_first.nbytes
        for view, (vectors, seen) in list(self._passage_states.items()):
            out[f"passage states {view}"] = vectors.nbytes + seen.nbytes
        vectors = self._passage_vectors
        if vectors is None:
            vectors = _PASSAGE_VECTORS.get(self.pair.baseline.model, {}).get(self.document.sha256)
        if vectors is not None:
            out["passage vectors"] = vectors.nbytes
        cached = self.__dict__  # cached properties computed so far
        token_sets = {
            id(t): t for t in (cached.get("long_tokens"), cached.get("base_tokens")) if t is not None
        }
        out["tokens"] = sum(t.ids.nbytes + t.offsets.nbytes for t in token_sets.values())
        for name in ("lexical_index", "passages", "sentences", "paragraphs"):
            if name in cached:
                out[name.replace("_", " ")] = estimate_nbytes(cached[name])
        out["text"] = estimate_nbytes(self.document.text)
        return out
