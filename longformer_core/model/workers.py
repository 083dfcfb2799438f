"""Single-threaded torch workers, one per intra-op thread, for kernels that share small tasks out themselves
(the Longformer band kernel's query blocks, the C attention kernel's (example, head) pairs)."""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor

import torch

_POOL: tuple[int, int, ThreadPoolExecutor] | None = None  # (pid, workers, pool) of worker_pool
_POOL_LOCK = threading.Lock()


def worker_pool() -> ThreadPoolExecutor | None:
    """One single-threaded torch worker per intra-op thread of the caller (None when that is 1).

    Why not torch's own intra-op threads: a block's ops are small, and each OpenMP parallel region ends
    in a barrier. On a 2-core machine shared with other work a descheduled thread stalls every barrier
    for a scheduler tick, which made the block loop several times slower than HF under load. Workers
    that each take the next block never wait for one another.
    """
    global _POOL
    workers = torch.get_num_threads()
    if workers < 2:
        return None
    with _POOL_LOCK:
        if _POOL is None or _POOL[:2] != (os.getpid(), workers):  # a forked child has no worker threads
            if _POOL is not None and _POOL[0] == os.getpid():
                _POOL[2].shutdown(wait=False)
            _POOL = (os.getpid(), workers, _start_pool(workers))
        return _POOL[2]


def _start_pool(workers: int) -> ThreadPoolExecutor:
    """Start `workers` threads, each set to one intra-op thread, and wait until all are ready."""
    ready = threading.Barrier(workers + 1)

    def single_threaded() -> None:
        torch.set_num_threads(1)  # thread-local for OpenMP and MKL
        ready.wait()

    pool = ThreadPoolExecutor(workers, thread_name_prefix="longformer-attention", initializer=single_threaded)
    for _ in range(workers):  # each submit starts a worker, since none is idle before the barrier
        pool.submit(int)
    ready.wait()
    torch.set_num_threads(workers)  # the workers also lowered torch's default for threads started later
    return pool
