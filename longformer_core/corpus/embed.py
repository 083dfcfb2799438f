"""A collection of documents: read from a CSV or a folder, embedded in batch, resumably, into parquet.

- `read_csv` / `read_csv_bytes`: one document per row (choose the text column; optional id, label and
  title columns). Rows with no text, or whose bytes are neither UTF-8 nor cp1252, are *reported* in
  `Corpus.skipped` with their row number and the reason, never silently dropped. The file is read as
  UTF-8 (with or without a byte-order mark); rows that are not UTF-8 but are valid Windows-1252 (cp1252)
  are read as cp1252, with a note in `Corpus.notes`.
- `read_folder` / `read_files`: one document per PDF or text file (through `documents.load_document`).
- `embed_corpus`: every document with the truncated, chunked and Longformer views; every pooling of a
  view comes from the same pass. Vectors are written to a parquet file, keyed by corpus hash, model
  fingerprint, strategy, view and pooling. While a run is going, every `chunk_size` documents land in a
  part file next to the output (`OUT.parts/`, each written atomically); at the end the parts are merged
  into OUT. An interrupted run (an exception, Ctrl-C, or a killed process) continues where it stopped
  when run again: documents already written are never recomputed.

Reading lives in `corpus_read.py` and the parquet store in `corpus_store.py`; their public names are
re-exported here, so `from longformer_core.corpus.embed import read_csv_bytes, load_embeddings` keeps working.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from longformer_core import settings
from longformer_core.corpus.read import (  # re-exported: the reading API is imported from here
    MAX_REPORTED,
    Corpus,
    CorpusError,
    SkippedRow,
    csv_columns,
    read_any,
    read_csv,
    read_csv_bytes,
    read_files,
    read_folder,
)
from longformer_core.corpus.store import (  # COLUMNS, Embeddings, load_embeddings: re-exported
    COLUMNS,
    Embeddings,
    load_embeddings,
    merge_parts,
    parts_dir,
    to_table,
    write_atomic,
    written_keys,
)
from longformer_core.documents import (
    text_document,
)
from longformer_core.model.registry import ModelPair
from longformer_core.reading.document_reading import DocumentReader
from longformer_core.reading.encoding import VIEWS, Progress
from longformer_core.similarity import POOLINGS, document_embedding

__all__ = [
    "COLUMNS",
    "DEFAULT_CHUNK",
    "MAX_REPORTED",
    "Corpus",
    "CorpusError",
    "EmbedReport",
    "Embeddings",
    "SkippedRow",
    "ViewThroughput",
    "csv_columns",
    "default_cache",
    "embed_and_load",
    "embed_corpus",
    "embed_document",
    "load_embeddings",
    "missing_views",
    "model_fingerprint",
    "read_any",
    "read_csv",
    "read_csv_bytes",
    "read_files",
    "read_folder",
]

DEFAULT_CHUNK = 16  # documents per part file: what an interruption can cost at most (kill -9)


def model_fingerprint(pair: ModelPair) -> str:
    """Short hash naming the weights that produce the embeddings (name, config and a weight checksum)."""
    h = hashlib.sha256()
    for model in (pair.longformer, pair.baseline):
        config = model.encoder.config.to_dict()
        config.pop("_name_or_path", None)
        config.pop("transformers_version", None)
        h.update(json.dumps(config, sort_keys=True, default=str).encode())
        h.update(str(model.max_tokens).encode())
        weights = model.encoder.get_input_embeddings().weight
        # On the CPU in float64: a worker on a GPU must get the same checksum as a driver on a CPU.
        h.update(np.float64(weights[:64].detach().cpu().double().sum().item()).tobytes())
    return h.hexdigest()[:12]


@dataclass
class ViewThroughput:
    documents: int = 0  # documents this run computed with the view
    tokens: int = 0  # document tokens the view read for them
    seconds: float = 0.0  # time in the view's forward passes

    def line(self, view: str) -> str:
        rate = self.documents / self.seconds if self.seconds else float("nan")
        tok_rate = self.tokens / self.seconds if self.seconds else float("nan")
        return (
            f"{view}: {self.documents} docs, {self.tokens:,} tokens in {self.seconds:.1f} s = "
            f"{rate:.2f} docs/s, {tok_rate:,.0f} tokens/s"
        )


@dataclass
class EmbedReport:
    """What `embed_corpus` did."""

    out: str
    corpus: str  # corpus hash
    model: str  # model fingerprint
    documents: int
    computed: int  # documents computed in this run
    reused: int  # documents found already written (an earlier or interrupted run)
    throughput: dict[str, ViewThroughput] = field(default_factory=dict)
    seconds: float = 0.0
    engine: str = "local"  # "local" or "ray"
    workers: dict[str, dict] = field(default_factory=dict)  # ray: {worker: {"documents", "model_loads"}}


def embed_corpus(
    pair: ModelPair,
    corpus: Corpus,
    out: str | Path,
    views: Sequence[str] = VIEWS,
    poolings: Sequence[str] = tuple(POOLINGS),
    strategy: str = "cls",
    chunk_size: int = DEFAULT_CHUNK,
    progress: Progress | None = None,
) -> EmbedReport:
    """Embed every document with each view and pooling into a parquet file; resumable.

    Args:
        pair: the models.
        corpus: the documents.
        out: the parquet file. Rows already in it (or in its unfinished parts) for the same corpus, model,
            strategy, views and poolings are reused, not recomputed; rows of other corpora or models stay.
        views: which views to run ("chunked" costs one pass per 512-token chunk; for a document that
            fits in one chunk it is the truncated pass, reused).
        poolings: which poolings to keep; all come from one pass per view.
        strategy: global attention of the Longformer pass ("cls": [CLS] global, the paper's choice for
            classification).
        chunk_size: documents per part file.
        progress: (fraction, message) after each document; an exception raised inside it stops the run
            after the finished documents are written.
    Returns:
        EmbedReport with counts and per-view throughput of this run.
    """
    t_start = time.perf_counter()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    corpus_hash, fingerprint = corpus.hash, model_fingerprint(pair)
    needed = {(v, p) for v in views for p in poolings}
    missing = missing_views(out, corpus, fingerprint, views, poolings, strategy)
    done = {i for i, m in missing.items() if not m}
    parts = parts_dir(out)
    report = EmbedReport(
        str(out), corpus_hash, fingerprint, len(corpus), 0, len(done), {v: ViewThroughput() for v in views}
    )
    buffer: list[dict] = []

    def flush() -> None:
        if buffer:
            parts.mkdir(exist_ok=True)
            n = len(list(parts.glob("part-*.parquet")))
            write_atomic(to_table(buffer), parts / f"part-{n:06d}-{os.getpid()}.parquet")
            buffer.clear()

    todo = [i for i in range(len(corpus)) if i not in done]
    try:
        for k, i in enumerate(todo):
            buffer.extend(
                _embed_one(pair, corpus, i, missing[i], poolings, strategy, corpus_hash, fingerprint, report)
            )
            report.computed += 1
            if len(buffer) >= chunk_size * len(needed):
                flush()
            if progress:
                n_done = len(done) + k + 1
                progress(n_done / len(corpus), f"embedded {n_done} of {len(corpus)} documents")
    finally:
        flush()  # an exception or Ctrl-C: keep what is finished
    merge_parts(out)
    report.seconds = time.perf_counter() - t_start
    return report


def missing_views(
    out: Path, corpus: Corpus, fingerprint: str, views: Sequence[str], poolings: Sequence[str], strategy: str
) -> dict[int, list[str]]:
    """{doc: views still to compute} for every document of the corpus ([] when all its rows are written).

    Raises:
        ValueError: an unknown view or pooling.
    """
    for view in views:
        if view not in VIEWS:
            raise ValueError(f"Unknown view '{view}': choose one of {', '.join(VIEWS)}.")
    for pooling in poolings:
        if pooling not in POOLINGS:
            raise ValueError(f"Unknown pooling '{pooling}': choose one of {', '.join(POOLINGS)}.")
    needed = {(v, p) for v in views for p in poolings}
    have = written_keys(out, corpus.hash, fingerprint, strategy)
    return {
        i: sorted({v for v, p in needed - have.get(i, set())}, key=VIEWS.index) for i in range(len(corpus))
    }


def _embed_one(pair, corpus, i, views, poolings, strategy, corpus_hash, fingerprint, report) -> list[dict]:
    return embed_document(
        pair,
        i,
        corpus.ids[i],
        corpus.texts[i],
        corpus.labels[i] if corpus.labels else None,
        corpus.titles[i] if corpus.titles else None,
        views,
        poolings,
        strategy,
        corpus_hash,
        fingerprint,
        report.throughput,
    )


def embed_document(
    pair: ModelPair,
    doc: int,
    doc_id: str,
    text: str,
    label: str | None,
    title: str | None,
    views: Sequence[str],
    poolings: Sequence[str],
    strategy: str,
    corpus_hash: str,
    fingerprint: str,
    throughput: dict[str, ViewThroughput],
) -> list[dict]:
    """The parquet rows of one document: every pooling of every view in `views` (one pass per view).

    Shared by the local engine and the Ray workers (`corpus_ray`), so both write identical rows.

    Args:
        doc: the document's index in the corpus; doc_id, text, label, title: its fields.
        views, poolings, strategy: what to compute (see `embed_corpus`).
        corpus_hash, fingerprint: the keys the rows are stored under.
        throughput: per-view counters, updated in place with this document's tokens and forward time.
    Returns:
        one dict per (view, pooling) with the keys of `COLUMNS`; "vector" is a (hidden,) float array.
    """
    # float32 states: a corpus document's reader lives for one document, and its vectors stay exactly those of
    # the parquet files and trained heads written before the app's readers moved to float16.
    reader = DocumentReader(pair, text_document(text, doc_id), strategy=strategy, state_dtype=np.float32)
    rows = []
    last4 = "sum-last4" in poolings  # only that pooling needs the last four layers
    ordered = sorted(views, key=lambda v: VIEWS.index(v))  # truncated first: chunked may reuse its pass
    for view in ordered:
        if view == "chunked" and "truncated" not in views:
            reader.encoded("truncated", last4=last4)  # one cheap pass that the chunked view often is
        t0 = time.perf_counter()
        p = reader.encoded(view, last4=last4)
        seconds = time.perf_counter() - t0
        stats = throughput.setdefault(view, ViewThroughput())
        stats.documents += 1
        stats.tokens += p.n_seen
        stats.seconds += seconds
        for pooling in poolings:
            rows.append(
                {
                    "corpus": corpus_hash,
                    "model": fingerprint,
                    "strategy": strategy,
                    "view": view,
                    "pooling": pooling,
                    "doc": doc,
                    "doc_id": doc_id,
                    "doc_sha": reader.document.sha256[:16],
                    "label": label,
                    "title": title,
                    "n_tokens": len(reader.long_tokens),
                    "seen_tokens": int(p.n_seen),
                    "vector": document_embedding(reader, view, pooling),
                }
            )
    return rows


def embed_and_load(
    pair: ModelPair,
    corpus: Corpus,
    cache: str | Path,
    views: Sequence[str] = VIEWS,
    poolings: Sequence[str] = tuple(POOLINGS),
    strategy: str = "cls",
    progress: Progress | None = None,
) -> dict[tuple[str, str], Embeddings]:
    """`embed_corpus` into `cache` (reusing what is there), then every (view, pooling) as Embeddings."""
    embed_corpus(pair, corpus, cache, views, poolings, strategy, progress=progress)
    fingerprint = model_fingerprint(pair)
    return {
        (v, p): load_embeddings(cache, v, p, corpus.hash, fingerprint, strategy)
        for v in views
        for p in poolings
    }


def default_cache(corpus: Corpus, kind: str = "corpus") -> Path:
    """Where embeddings of a corpus are kept by default: ~/.cache/longdoc/<kind>/<hash>.parquet.

    LONGDOC_CORPUS_CACHE moves these files only; LONGDOC_CACHE moves them with the converted model.
    """
    base = settings.path("LONGDOC_CORPUS_CACHE") or settings.cache_dir()
    return base / kind / f"{corpus.hash}.parquet"
