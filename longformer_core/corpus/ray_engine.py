"""Corpus embedding on a Ray cluster (`python -m longformer_core embed ... --engine ray`).

The same job as `corpus.embed_corpus`, on Ray Data instead of one process:
- the driver works out which documents still miss rows in the parquet output (resuming keeps its meaning:
  rerun the same command) and turns them into a Ray dataset built from Arrow tables, one block per
  `chunk_size` documents;
- `Dataset.map_batches` runs `EmbedWorker` on an actor pool: each worker loads the model once, checks that its
  fingerprint equals the driver's (a node with other weights or another library version would otherwise
  write vectors that do not belong together), embeds its batch with `corpus.embed_document` (so the rows are
  exactly the local engine's) and writes them as its own part file, atomically and under a unique name,
  into `OUT.parts/` (on a cluster OUT must be on storage every node sees);
- workers return one small summary row per document (no vectors travel back); the driver turns them into
  progress lines and the report, then merges the parts into OUT. A batch that Ray retries after a worker
  died may have been written twice: the merge keeps one row per key.

Ray is optional: it is imported only here, and only when this engine is chosen.
"""

from __future__ import annotations

import json
import os
import socket
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from longformer_core.corpus.embed import (
    Corpus,
    CorpusError,
    EmbedReport,
    ViewThroughput,
    embed_document,
    missing_views,
    model_fingerprint,
)
from longformer_core.corpus.store import merge_parts, parts_dir, to_table, write_atomic
from longformer_core.model.registry import EMBEDDED, ModelPair
from longformer_core.reading.encoding import VIEWS, Progress
from longformer_core.similarity import POOLINGS

RAY_MISSING = (
    "--engine ray needs Ray Data, which is not installed: run `pip install 'ray[data]>=2.50'` "
    "(or use the default --engine local)."
)
_MODEL_LOADS = 0  # models loaded in this process: a Ray worker process should load one


@dataclass
class RayOptions:
    """How to run on Ray."""

    workers: int | None = None  # actors embedding at once (default: one per free CPU, or per GPU share)
    address: str | None = None  # a running cluster ("auto", "ray://host:10001", "host:6379"); None: start one
    gpus_per_worker: float = 0.0  # GPUs each worker reserves (0: CPU workers)
    threads_per_worker: int = 1  # torch threads of each worker, and the CPUs it reserves
    init_kwargs: dict[str, Any] = field(
        default_factory=dict
    )  # more ray.init arguments (num_cpus, _temp_dir, ...)


def import_ray():
    """`ray` and `ray.data`, or a CorpusError that says how to install them."""
    try:
        import ray
        import ray.data  # the engine needs Ray Data, not only Ray core
    except ImportError as exc:
        raise CorpusError(RAY_MISSING) from exc
    return ray


def load_worker_models(model: str, baseline: str | None) -> ModelPair:
    """The models a worker embeds with (the embedded default without its QA head: embedding never uses it)."""
    from longformer_core.model.registry import load_embedded, load_models

    global _MODEL_LOADS
    _MODEL_LOADS += 1
    if model in (EMBEDDED, "", None) and baseline is None:
        return load_embedded(qa_head=None)
    return load_models(model, baseline)


class EmbedWorker:
    """A Ray Data actor: loads the model once, then embeds batches of documents into part files.

    Args:
        model, baseline: what `load_models` gets (the same id or folder on every node).
        fingerprint: the driver's `model_fingerprint`; a worker whose models differ refuses to start.
        out: the parquet output; parts go to `OUT.parts/`.
        views, poolings, strategy, corpus_hash: what to compute and the keys to store it under.
        threads: torch threads in this worker (None: leave torch's default).
    Raises:
        CorpusError: the worker's models do not match the driver's.
    """

    def __init__(
        self,
        model: str,
        baseline: str | None,
        fingerprint: str,
        out: str,
        views: Sequence[str],
        poolings: Sequence[str],
        strategy: str,
        corpus_hash: str,
        threads: int | None = None,
    ) -> None:
        if threads:
            import torch

            torch.set_num_threads(threads)
        self.pair = load_worker_models(model, baseline)
        found = model_fingerprint(self.pair)
        if found != fingerprint:
            raise CorpusError(
                f"A worker on {socket.gethostname()} loaded '{model}' with fingerprint {found}, but the driver's is "
                f"{fingerprint}: the nodes hold different weights or library versions. Install the same "
                "versions and model files on every node (or give --model a folder on shared storage)."
            )
        self.fingerprint = fingerprint
        self.parts = parts_dir(Path(out))
        self.views, self.poolings, self.strategy, self.corpus_hash = (
            list(views),
            list(poolings),
            strategy,
            corpus_hash,
        )
        self.worker = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"

    def embed(self, batch) -> tuple[list[dict], list[dict]]:
        """(parquet rows, one summary per document) of a batch (an Arrow table of `_task_table` columns)."""
        rows, summaries = [], []
        for doc in batch.to_pylist():
            throughput: dict[str, ViewThroughput] = {}
            rows += embed_document(
                self.pair,
                doc["doc"],
                doc["doc_id"],
                doc["text"],
                doc["label"],
                doc["title"],
                json.loads(doc["views"]),
                self.poolings,
                self.strategy,
                self.corpus_hash,
                self.fingerprint,
                throughput,
            )
            summary = {"doc": doc["doc"], "worker": self.worker, "model_loads": _MODEL_LOADS}
            for view in VIEWS:
                stats = throughput.get(view, ViewThroughput())
                summary[f"{view}_tokens"] = stats.tokens
                summary[f"{view}_seconds"] = stats.seconds if stats.documents else -1.0  # -1: not computed
            summaries.append(summary)
        return rows, summaries

    def write(self, rows: list[dict]) -> None:
        """One part file per batch, written atomically under a name no other worker can pick."""
        if rows:
            self.parts.mkdir(parents=True, exist_ok=True)
            write_atomic(
                to_table(rows),
                self.parts / f"part-ray-{self.worker.replace(':', '-')}-{uuid.uuid4().hex[:12]}.parquet",
            )

    def __call__(self, batch):
        """Ray Data entry point: a pyarrow batch in, a pyarrow table of summaries out."""
        import pyarrow as pa

        rows, summaries = self.embed(batch)
        self.write(rows)
        return pa.Table.from_pylist(summaries)


def _task_table(corpus: Corpus, docs: Sequence[int], missing: dict[int, list[str]]):
    """The documents to embed as an Arrow table (the rows a Ray dataset is built from)."""
    import pyarrow as pa

    return pa.table(
        {
            "doc": pa.array(list(docs), pa.int64()),
            "doc_id": pa.array([corpus.ids[i] for i in docs], pa.string()),
            "text": pa.array([corpus.texts[i] for i in docs], pa.large_string()),
            "label": pa.array([corpus.labels[i] if corpus.labels else None for i in docs], pa.string()),
            "title": pa.array([corpus.titles[i] if corpus.titles else None for i in docs], pa.string()),
            "views": pa.array([json.dumps(missing[i]) for i in docs], pa.string()),
        }
    )


def _default_workers(ray, options: RayOptions) -> int:
    """One worker per GPU share when workers use GPUs, else one per `threads_per_worker` CPUs with one CPU
    left free for the driver, reading and writing."""
    resources = ray.cluster_resources()
    if options.gpus_per_worker > 0:
        return max(1, int(resources.get("GPU", 0) // options.gpus_per_worker))
    return max(1, int((resources.get("CPU", 1) - 1) // max(1, options.threads_per_worker)))


def embed_corpus_ray(
    pair: ModelPair,
    corpus: Corpus,
    out: str | Path,
    *,
    model: str = EMBEDDED,
    baseline: str | None = None,
    views: Sequence[str] = VIEWS,
    poolings: Sequence[str] = tuple(POOLINGS),
    strategy: str = "cls",
    chunk_size: int = 16,
    progress: Progress | None = None,
    options: RayOptions | None = None,
    worker_class: type[EmbedWorker] = EmbedWorker,
) -> EmbedReport:
    """Embed every document with each view and pooling into a parquet file on a Ray cluster; resumable.

    Same output, keys and resume rules as `corpus.embed_corpus` (a run of one engine resumes a run of the other).

    Args:
        pair: the driver's models (for the fingerprint the workers must match).
        model, baseline: how each worker loads the same models (`load_models` arguments).
        chunk_size: documents per Ray block and per batch (one part file each).
        options: the cluster, the number of workers and what each reserves.
        worker_class: the actor class (`EmbedWorker` or a subclass).
        Other arguments as in `embed_corpus`.
    Returns:
        EmbedReport; `throughput` sums the workers' forward time (per-worker rates), `seconds` is the wall time.
    Raises:
        CorpusError: Ray is not installed, or a worker's models do not match the driver's.
    """
    ray = import_ray()
    options = options or RayOptions()
    t_start = time.perf_counter()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    corpus_hash, fingerprint = corpus.hash, model_fingerprint(pair)
    missing = missing_views(out, corpus, fingerprint, views, poolings, strategy)
    todo = [i for i, m in missing.items() if m]
    report = EmbedReport(
        str(out),
        corpus_hash,
        fingerprint,
        len(corpus),
        0,
        len(corpus) - len(todo),
        {v: ViewThroughput() for v in views},
        engine="ray",
    )
    if todo:
        started = not ray.is_initialized()
        if started:
            _connect(ray, options)
        try:
            worker_kwargs = {
                "model": model,
                "baseline": baseline,
                "fingerprint": fingerprint,
                "out": str(out.resolve()),
                "views": list(views),
                "poolings": list(poolings),
                "strategy": strategy,
                "corpus_hash": corpus.hash,
                "threads": options.threads_per_worker,
            }
            summaries = _launch(ray, corpus, todo, missing, worker_class, worker_kwargs, chunk_size, options)
            _tally(summaries, report, len(corpus), views, progress)
        finally:
            if started:
                ray.shutdown()
    merge_parts(out)  # also folds in the parts of an earlier interrupted run
    report.seconds = time.perf_counter() - t_start
    return report


def _connect(ray, options: RayOptions) -> None:
    """Join the cluster at `options.address`, or start a one-machine cluster for this run.

    A cluster started here lives only as long as this command and serves only it, so unless the user chose
    otherwise (RAY_AUTH_MODE=token), Ray's token authentication is turned off for it: with it on, starting a
    local cluster on a small machine can hang (Ray 2.60).
    """
    if options.address is None:
        os.environ.setdefault("RAY_AUTH_MODE", "disabled")
        ray.init(include_dashboard=False, **options.init_kwargs)
    else:
        ray.init(address=options.address, **options.init_kwargs)


def _launch(
    ray,
    corpus: Corpus,
    todo: list[int],
    missing: dict,
    worker_class: type[EmbedWorker],
    worker_kwargs: dict,
    chunk_size: int,
    options: RayOptions,
):
    """The Ray dataset of per-document summaries: `todo` in blocks of `chunk_size`, embedded by an actor pool of
    `worker_class(**worker_kwargs)` (each writes its own part files)."""
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False  # the driver prints its own progress lines
    workers = options.workers or _default_workers(ray, options)
    blocks = [
        _task_table(corpus, todo[lo : lo + chunk_size], missing) for lo in range(0, len(todo), chunk_size)
    ]
    # From Arrow tables, one block each: ray.data.from_pandas(override_num_blocks=...) breaks on pandas 3.
    dataset = ray.data.from_arrow(blocks)
    return dataset.map_batches(
        worker_class,
        fn_constructor_kwargs=worker_kwargs,
        batch_size=chunk_size,
        batch_format="pyarrow",
        compute=ray.data.ActorPoolStrategy(size=workers),
        num_cpus=options.threads_per_worker,
        num_gpus=options.gpus_per_worker or None,
        zero_copy_batch=True,
    )


def _tally(
    summaries, report: EmbedReport, n_documents: int, views: Sequence[str], progress: Progress | None
) -> None:
    """Count the workers' summaries into `report` (a batch retried after a worker died counts once)."""
    seen: set[int] = set()
    already = report.reused
    for batch in summaries.iter_batches(batch_size=None, batch_format="pyarrow"):
        for row in batch.to_pylist():
            worker = report.workers.setdefault(row["worker"], {"documents": 0, "model_loads": 0})
            worker["documents"] += 1
            worker["model_loads"] = max(worker["model_loads"], row["model_loads"])
            if row["doc"] in seen:  # a batch retried after a worker died: counted once
                continue
            seen.add(row["doc"])
            report.computed += 1
            for view in views:
                if row[f"{view}_seconds"] >= 0:
                    stats = report.throughput[view]
                    stats.documents += 1
                    stats.tokens += row[f"{view}_tokens"]
                    stats.seconds += row[f"{view}_seconds"]
        if progress:
            n_done = already + len(seen)
            progress(
                n_done / n_documents,
                f"embedded {n_done} of {n_documents} documents ({len(report.workers)} Ray workers)",
            )
