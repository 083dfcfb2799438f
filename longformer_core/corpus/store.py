"""Where corpus embeddings live: one parquet file, plus the part files of an unfinished run.

Rows are keyed by corpus hash, model fingerprint, strategy, view, pooling and document. While a run is going,
finished documents land in part files next to the output (`OUT.parts/`, each written atomically); `merge_parts` folds
them into OUT at the end.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from longformer_core.corpus.read import CorpusError

if TYPE_CHECKING:
    import pyarrow as pa

COLUMNS = (
    "corpus",
    "model",
    "strategy",
    "view",
    "pooling",
    "doc",
    "doc_id",
    "doc_sha",
    "label",
    "title",
    "n_tokens",
    "seen_tokens",
    "vector",
)


def parts_dir(out: Path) -> Path:
    """The folder of part files an unfinished run writes next to OUT (`OUT.parts/`)."""
    return out.with_name(out.name + ".parts")


def read_table(out: Path) -> pa.Table | None:
    """Every row written so far: the merged file and the parts of an unfinished run."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    tables = []
    if out.is_file():
        tables.append(pq.read_table(out))
    parts = parts_dir(out)
    if parts.is_dir():
        tables += [pq.read_table(p) for p in sorted(parts.glob("part-*.parquet"))]
    if not tables:
        return None
    return pa.concat_tables(tables, promote_options="default")


def write_atomic(table: pa.Table, path: Path) -> None:
    """Write `table` to `path` through a temporary file, so that a reader never sees half a file."""
    import pyarrow.parquet as pq

    tmp = path.with_name(path.name + ".tmp")
    pq.write_table(table, tmp)
    os.replace(tmp, path)  # a kill mid-write leaves a .tmp that is ignored, never half a part


def to_table(rows: list[dict]) -> pa.Table:
    """Rows of `corpus.embed_document` (dicts with the keys of `COLUMNS`) as one arrow table."""
    import pyarrow as pa

    vectors = np.stack([r["vector"] for r in rows]).astype(np.float32)
    columns = {k: [r[k] for r in rows] for k in COLUMNS if k != "vector"}
    arrays = {k: pa.array(v) for k, v in columns.items()}
    arrays["vector"] = pa.FixedSizeListArray.from_arrays(pa.array(vectors.ravel()), vectors.shape[1])
    return pa.table(arrays)


def written_keys(
    out: Path, corpus_hash: str, fingerprint: str, strategy: str
) -> dict[int, set[tuple[str, str]]]:
    """{doc: {(view, pooling)}} already written for this corpus and model. The strategy (global attention)
    only changes the Longformer pass, so truncated and chunked rows of any strategy count."""
    table = read_table(out)
    if table is None:
        return {}
    keys = ("corpus", "model", "strategy", "view", "pooling", "doc")
    cols = table.select(list(keys)).to_pydict()
    have: dict[int, set] = {}
    for c, m, s, v, p, d in zip(*(cols[k] for k in keys)):
        if c == corpus_hash and m == fingerprint and (s == strategy or v != "longformer"):
            have.setdefault(d, set()).add((v, p))
    return have


def merge_parts(out: Path) -> None:
    """Fold the part files into OUT (one atomic write), dropping repeated keys; then remove the parts."""
    parts = parts_dir(out)
    if not parts.is_dir():
        return
    table = read_table(out)
    if table is not None:
        keys = table.select(["corpus", "model", "strategy", "view", "pooling", "doc"]).to_pylist()
        seen, keep = set(), []
        for j, key in enumerate(keys):
            k = tuple(key.values())
            if k not in seen:
                seen.add(k)
                keep.append(j)
        write_atomic(table.take(keep), out)
    for p in parts.iterdir():
        p.unlink()
    parts.rmdir()


@dataclass
class Embeddings:
    """One view and pooling of a corpus: a matrix and what each row is."""

    vectors: np.ndarray  # (n_docs, hidden) float32, L2-normalised
    doc: np.ndarray  # (n_docs,) index into the corpus
    doc_ids: list[str]
    n_tokens: np.ndarray  # (n_docs,) document length in the Longformer's tokens
    labels: list[str | None]
    titles: list[str | None]


def load_embeddings(
    path: str | Path,
    view: str,
    pooling: str,
    corpus_hash: str | None = None,
    model: str | None = None,
    strategy: str = "cls",
) -> Embeddings:
    """Read one view and pooling back from an `embed_corpus` file, in corpus order.

    Raises:
        CorpusError: nothing matches (the message lists what the file holds).
    """
    import pyarrow.compute as pc

    path = Path(path)
    table = read_table(path)
    if table is None:
        raise CorpusError(f"'{path}' holds no embeddings yet: run `python -m longformer_core embed` first.")
    mask = pc.and_(pc.equal(table["view"], view), pc.equal(table["pooling"], pooling))
    if view == "longformer":  # the only view the global-attention strategy changes
        mask = pc.and_(mask, pc.equal(table["strategy"], strategy))
    if corpus_hash is not None:
        mask = pc.and_(mask, pc.equal(table["corpus"], corpus_hash))
    if model is not None:
        mask = pc.and_(mask, pc.equal(table["model"], model))
    picked = table.filter(mask)
    if picked.num_rows == 0:
        held = sorted(
            {tuple(r.values()) for r in table.select(["corpus", "model", "view", "pooling"]).to_pylist()}
        )
        raise CorpusError(
            f"'{path}' has no {view}/{pooling} embeddings for this corpus and model "
            f"(it holds corpus, model, view, pooling: {held[:12]})."
        )
    picked = picked.sort_by("doc")
    first = np.flatnonzero(np.diff(picked["doc"].to_numpy(), prepend=-1) != 0)  # one row per document
    picked = picked.take(first)
    vectors = picked["vector"].combine_chunks()
    dim = vectors.type.list_size
    return Embeddings(
        vectors=vectors.flatten().to_numpy().reshape(-1, dim).astype(np.float32),
        doc=picked["doc"].to_numpy(),
        doc_ids=picked["doc_id"].to_pylist(),
        n_tokens=picked["n_tokens"].to_numpy(),
        labels=picked["label"].to_pylist(),
        titles=picked["title"].to_pylist(),
    )
