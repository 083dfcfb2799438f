"""The byte-bounded cache (issue 19): evicts by size, never evicts an entry in use, safe under threads."""

from __future__ import annotations

import gc
import random
import threading
import time

import numpy as np
import pytest

from longformer_core.reading.cache import (
    CACHE_MB_ENV,
    DEFAULT_CACHE_MB,
    ByteBudgetCache,
    Holder,
    cache_limit_bytes,
    estimate_nbytes,
    reader_nbytes,
)

MB = 1024 * 1024


def block(megabytes: float, fill: int = 0) -> np.ndarray:
    return np.full(int(megabytes * MB), fill, dtype=np.uint8)


def array_cache(budget_mb: float) -> ByteBudgetCache[str, np.ndarray]:
    return ByteBudgetCache(max_bytes=int(budget_mb * MB), size_of=lambda a: a.nbytes)


def test_evicts_least_recently_used_entries_by_size() -> None:
    cache = array_cache(10)
    cache.get("a", lambda: block(4))
    cache.get("b", lambda: block(4))
    assert cache.keys() == ["a", "b"] and cache.nbytes == 8 * MB
    cache.get("a", lambda: pytest.fail("a is cached"))  # a is now the most recent
    cache.get("c", lambda: block(4))  # 12 MB > 10 MB: b, the least recently used, goes
    assert cache.keys() == ["a", "c"]
    cache.get("big", lambda: block(9))  # needs both others out
    assert cache.keys() == ["big"]
    assert cache.stats().evictions == 3


def test_many_small_entries_fit_where_few_large_ones_do() -> None:
    """The point of a byte budget: 100 small documents fit in the room of two large ones."""
    cache = array_cache(10)
    small = block(0.09).nbytes
    for i in range(100):
        cache.get(f"small{i}", lambda: block(0.09))
    assert len(cache) == 100
    cache.get("large", lambda: block(5))
    assert "large" in cache and cache.nbytes <= 10 * MB
    assert len(cache) - 1 == (10 * MB - 5 * MB) // small  # the newest small ones stayed


def test_an_entry_in_use_is_never_evicted_under_another_user() -> None:
    cache = array_cache(10)
    with cache.lease("read-by-session-1", lambda: block(6, fill=1)) as in_use:
        for i in range(5):  # session 2 reads five other documents meanwhile
            with cache.lease(f"other{i}", lambda: block(6)):
                assert "read-by-session-1" in cache
        assert "read-by-session-1" in cache and in_use[0] == 1
        assert cache.stats().in_use == 1
    cache.get("after", lambda: block(6))  # now it may go
    assert "read-by-session-1" not in cache


def test_everything_in_use_may_exceed_the_budget_until_released() -> None:
    cache = array_cache(10)
    with cache.lease("a", lambda: block(6)), cache.lease("b", lambda: block(6)):
        assert cache.nbytes == 12 * MB and len(cache) == 2
    # b is let go first (inner block) while a is still in use, so b is the one that makes room.
    assert cache.nbytes <= 10 * MB and cache.keys() == ["a"]


def test_an_entry_is_measured_again_when_released() -> None:
    """A reader grows while it is used (each view read adds token states): the budget sees that."""
    cache: ByteBudgetCache[str, dict] = ByteBudgetCache(max_bytes=10 * MB, size_of=estimate_nbytes)
    cache.get("other", lambda: {"states": block(4)})
    with cache.lease("growing", dict) as reader:
        assert cache.stats().nbytes < 5 * MB
        reader["states"] = block(7)
    assert cache.keys() == ["growing"]  # 11 MB: the older entry made room
    assert cache.nbytes >= 7 * MB


def test_a_holder_pins_until_released_or_collected() -> None:
    cache = array_cache(10)
    session = Holder("session-1")
    cache.get("mine", lambda: block(6), holder=session)
    cache.get("mine", lambda: pytest.fail("cached"), holder=session)  # pinning twice counts once
    cache.get("x", lambda: block(6))
    assert "mine" in cache and "x" not in cache
    cache.release(session)
    cache.get("y", lambda: block(6))
    assert "mine" not in cache

    gone = Holder("closed tab")
    cache.get("z", lambda: block(3), holder=gone)
    cache.get("w", lambda: block(3))
    assert cache.stats().in_use == 1
    del gone
    gc.collect()
    assert cache.stats().in_use == 0


def test_release_can_keep_the_pins_still_needed() -> None:
    """A session that moves to another document lets go of the old one and keeps the one it still shows."""
    cache = array_cache(10)
    session = Holder("session")
    cache.get(("old", "cls"), lambda: block(3), holder=session)
    cache.get(("shown", "cls"), lambda: block(3), holder=session)
    cache.release(session, keep=lambda key: key[0] == "shown")
    assert cache.stats().in_use == 1
    cache.get(("other", "cls"), lambda: block(6))  # 12 MB: the unpinned old one goes
    assert cache.keys() == [("shown", "cls"), ("other", "cls")]


def test_a_failed_build_caches_nothing_and_raises_to_every_waiter() -> None:
    cache = array_cache(10)
    started = threading.Event()

    def failing() -> np.ndarray:
        started.set()
        time.sleep(0.2)
        raise ValueError("not a document")

    errors: list[BaseException] = []

    def waiter() -> None:
        started.wait(5)
        try:
            cache.get("bad", lambda: block(1))
        except ValueError as error:
            errors.append(error)

    thread = threading.Thread(target=waiter)
    thread.start()
    with pytest.raises(ValueError, match="not a document"):
        cache.get("bad", failing)
    thread.join(5)
    assert [str(e) for e in errors] == ["not a document"]
    assert "bad" not in cache
    assert cache.get("bad", lambda: block(1)).nbytes == MB  # a later try builds again


def test_concurrent_sessions_build_each_document_once_and_keep_the_budget() -> None:
    """8 threads, 400 random lease/get operations on 12 keys: each value is the one built for its key,
    a key being built is never built twice at once, and once nobody holds anything the cache is within
    budget with exact bookkeeping."""
    cache = array_cache(20)
    builds: dict[str, int] = {}
    building: set[str] = set()
    lock = threading.Lock()
    failures: list[str] = []

    def build(key: str) -> np.ndarray:
        with lock:
            if key in building:
                failures.append(f"{key} built twice at once")
            building.add(key)
            builds[key] = builds.get(key, 0) + 1
        time.sleep(0.001)
        value = block(3, fill=int(key[1:]))
        with lock:
            building.discard(key)
        return value

    def session(seed: int) -> None:
        rng = random.Random(seed)
        for _ in range(50):
            key = f"k{rng.randrange(12)}"
            try:
                if rng.random() < 0.5:
                    with cache.lease(key, lambda key=key: build(key)) as value:
                        time.sleep(rng.random() * 0.002)
                        if value[0] != int(key[1:]):
                            failures.append(f"{key} gave another key's value")
                else:
                    value = cache.get(key, lambda key=key: build(key))
                    if value[0] != int(key[1:]):
                        failures.append(f"{key} gave another key's value")
            except Exception as error:  # noqa: BLE001 - collected for the assertion below
                failures.append(repr(error))

    threads = [threading.Thread(target=session, args=(seed,)) for seed in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert failures == []
    stats = cache.stats()
    assert stats.in_use == 0
    assert stats.nbytes <= 20 * MB and stats.nbytes == 3 * MB * stats.entries
    assert stats.hits + stats.misses == 400
    assert stats.misses == sum(builds.values())


def test_estimate_counts_buffers_once_and_skips_what_it_is_told() -> None:
    states = block(2)
    shared_model = {"weights": block(50)}
    reader_like = {
        "states": states,
        "view": states[:MB],  # a view adds no buffer of its own
        "again": states,
        "spans": [(i, i + 5) for i in range(1000)],
        "model": shared_model,
    }
    total = estimate_nbytes(reader_like, skip=(shared_model,))
    assert 2 * MB < total < 2 * MB + 200_000
    assert estimate_nbytes(reader_like) > 52 * MB


def test_cache_budget_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(CACHE_MB_ENV, raising=False)
    assert cache_limit_bytes() == DEFAULT_CACHE_MB * MB
    monkeypatch.setenv(CACHE_MB_ENV, "512")
    assert cache_limit_bytes() == 512 * MB
    assert ByteBudgetCache().max_bytes == 512 * MB
    monkeypatch.setenv(CACHE_MB_ENV, "lots")  # a typo must not break the app
    assert cache_limit_bytes() == DEFAULT_CACHE_MB * MB


def test_reader_size_grows_with_the_views_read_and_leaves_out_the_models(embedded_pair) -> None:
    from longformer_core.documents import text_document
    from longformer_core.reading.document_reading import DocumentReader

    sentence = "The incident response team met on Monday to review the firewall logs. "
    reader = DocumentReader(embedded_pair, text_document(sentence * 60, "notes.txt"), strategy="cls")
    fresh = reader_nbytes(reader)
    assert fresh < 2 * MB  # text and tokens only: the ~90 MB of model weights are not counted
    passage = reader.encoded("longformer")
    grown = reader_nbytes(reader)
    states = passage.hidden.nbytes + (passage.last4.nbytes if passage.last4 is not None else 0)
    assert states > 0 and grown >= fresh + states
    assert grown < fresh + states + 2 * MB
