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
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from longformer_core import settings
from longformer_core.documents import (
    PDF_EXTENSIONS,
    TEXT_EXTENSIONS,
    Document,
    DocumentError,
    clean_text,
    load_document,
    load_path,
    text_document,
)
from longformer_core.encoding import VIEWS, Progress
from longformer_core.models import ModelPair
from longformer_core.reader import DocumentReader
from longformer_core.similarity import POOLINGS, document_embedding

DEFAULT_CHUNK = 16  # documents per part file: what an interruption can cost at most (kill -9)
MAX_REPORTED = 20  # skipped rows listed by name in a message; the rest are counted
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


class CorpusError(ValueError):
    """A corpus could not be read; the message tells the user what to do."""


@dataclass(frozen=True)
class SkippedRow:
    """A row (or file) that holds no usable document, and why."""

    row: int | str  # CSV: the row number as a spreadsheet shows it (header = row 1); folder: file name
    reason: str


@dataclass
class Corpus:
    """Documents to embed, with where each came from."""

    texts: list[str]
    ids: list[str]  # unique; the id column, else the row number / file name
    labels: list[str] | None = None  # the label column, when given
    titles: list[str] | None = None  # the title column, when given
    rows: list[int | str] = field(default_factory=list)  # source row number / file of each document
    skipped: list[SkippedRow] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # e.g. "rows 4, 9 read as cp1252"
    source: str = ""
    columns: list[str] = field(default_factory=list)  # the CSV's header

    def __len__(self) -> int:
        return len(self.texts)

    @property
    def hash(self) -> str:
        """Short hash of the ids and texts: a cache key that changes when any document changes."""
        h = hashlib.sha256()
        for doc_id, text in zip(self.ids, self.texts):
            h.update(doc_id.encode("utf-8", "surrogatepass") + b"\0")
            h.update(text.encode("utf-8", "surrogatepass") + b"\0")
        return h.hexdigest()[:16]

    def skipped_summary(self) -> str:
        """One line for the user: how many rows were left out and why ('' when none)."""
        if not self.skipped:
            return ""
        listed = "; ".join(f"{_where(s.row)}: {s.reason}" for s in self.skipped[:MAX_REPORTED])
        more = f"; and {len(self.skipped) - MAX_REPORTED} more" if len(self.skipped) > MAX_REPORTED else ""
        return f"{len(self.skipped)} rows were left out ({listed}{more})."


def _where(row: int | str) -> str:
    return f"row {row}" if isinstance(row, int) else str(row)


# --------------------------------------------------------------------------------------------------
# Reading


def read_csv(
    path: str | Path,
    text_column: str,
    id_column: str | None = None,
    label_column: str | None = None,
    title_column: str | None = None,
) -> Corpus:
    """Read a CSV file from disk (see `read_csv_bytes`)."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CorpusError(f"Could not open '{path}': {exc.strerror or exc}. Check the path.") from exc
    corpus = read_csv_bytes(data, text_column, id_column, label_column, title_column, name=path.name)
    return corpus


_CSV_FIELD_LIMIT = 2**31 - 1
_CSV_LIMIT_LOCK = threading.Lock()


@contextmanager
def _large_csv_fields() -> Iterator[None]:
    """Let `csv` read fields of any size inside the block, then restore the process's limit.

    `csv.field_size_limit` is process-wide: setting it for good would change every other csv user in the
    process. The lock keeps two readers (two app sessions) from restoring each other's value mid-read.
    """
    with _CSV_LIMIT_LOCK:
        old = csv.field_size_limit(_CSV_FIELD_LIMIT)
        try:
            yield
        finally:
            csv.field_size_limit(old)


def csv_columns(data: bytes) -> list[str]:
    """The header of a CSV file (for letting the user choose the text column)."""
    text, _ = _decode_csv(data, "the file")
    try:
        header = next(csv.reader(io.StringIO(text)), [])
    except csv.Error as exc:
        raise CorpusError(
            f"This file is not a readable CSV ({exc}). Save it again as CSV (comma-separated)."
        ) from exc
    return [h.strip() for h in header]


def read_csv_bytes(
    data: bytes,
    text_column: str,
    id_column: str | None = None,
    label_column: str | None = None,
    title_column: str | None = None,
    name: str = "the file",
) -> Corpus:
    """One document per CSV row.

    Args:
        data: the file's bytes.
        text_column: the column holding each document's text.
        id_column: optional column of document ids (else the row number); duplicate ids are reported.
        label_column, title_column: optional columns kept alongside (e.g. a category, a headline).
        name: the file's name, for messages.
    Returns:
        the Corpus; rows without text or with undecodable bytes are in `skipped`, never dropped silently.
    Raises:
        CorpusError: the file is empty or not a CSV, or a named column is missing (the message lists the
            columns the file has).
    """
    text, notes = _decode_csv(data, name)
    try:
        with _large_csv_fields():  # a long document is one huge field
            rows = list(csv.reader(io.StringIO(text, newline="")))
    except csv.Error as exc:
        raise CorpusError(
            f"'{name}' is not a readable CSV ({exc}). Save it again as CSV (comma-separated)."
        ) from exc
    if not rows or not any(cell.strip() for cell in rows[0]):
        raise CorpusError(
            f"'{name}' is empty: it needs a header row naming the columns, then one row per document."
        )
    header = [h.strip() for h in rows[0]]
    wanted = {"text": text_column, "id": id_column, "label": label_column, "title": title_column}
    index: dict[str, int] = {}
    for role, column in wanted.items():
        if column is None:
            continue
        if column not in header:
            close = [h for h in header if h.lower() == column.lower()]
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise CorpusError(
                f"Column '{column}' not found{hint}: choose one of {', '.join(repr(h) for h in header)}."
            )
        index[role] = header.index(column)
    corpus = Corpus(
        texts=[],
        ids=[],
        labels=[] if label_column else None,
        titles=[] if title_column else None,
        source=name,
        columns=header,
        notes=list(notes),
    )
    cp1252_rows: list[int] = []
    seen_ids: dict[str, int] = {}
    for i, cells in enumerate(rows[1:]):
        row_number = i + 2  # as a spreadsheet numbers it: the header is row 1
        if not any(c.strip() for c in cells):
            corpus.skipped.append(SkippedRow(row_number, "empty row"))
            continue
        values = {}
        bad = None
        for role, j in index.items():
            value = cells[j] if j < len(cells) else None
            if value is not None and _has_surrogates(value):
                fixed = _cp1252(value)
                if fixed is None:
                    bad = f"bytes in column '{wanted[role]}' that are neither UTF-8 nor Windows-1252 text"
                    break
                value = fixed
                if row_number not in cp1252_rows:
                    cp1252_rows.append(row_number)
            values[role] = value
        if bad:
            corpus.skipped.append(SkippedRow(row_number, bad))
            continue
        if values["text"] is None:
            corpus.skipped.append(
                SkippedRow(row_number, f"no value in column '{text_column}' (the row is short)")
            )
            continue
        doc_text = clean_text(values["text"]).strip()
        if not doc_text:
            corpus.skipped.append(SkippedRow(row_number, f"empty text in column '{text_column}'"))
            continue
        doc_id = (values.get("id") or "").strip() or f"row {row_number}"
        if doc_id in seen_ids:
            corpus.skipped.append(SkippedRow(row_number, f"id '{doc_id}' repeats row {seen_ids[doc_id]}"))
            continue
        seen_ids[doc_id] = row_number
        corpus.texts.append(doc_text)
        corpus.ids.append(doc_id)
        corpus.rows.append(row_number)
        if corpus.labels is not None:
            corpus.labels.append((values.get("label") or "").strip())
        if corpus.titles is not None:
            corpus.titles.append((values.get("title") or "").strip())
    if cp1252_rows:
        shown = ", ".join(map(str, cp1252_rows[:MAX_REPORTED])) + (
            " ..." if len(cp1252_rows) > MAX_REPORTED else ""
        )
        corpus.notes.append(
            f"{len(cp1252_rows)} rows are not UTF-8 and were read as Windows-1252 (cp1252): rows {shown}. "
            "Check their accented letters and quotes."
        )
    if not corpus.texts:
        detail = f" {corpus.skipped_summary()}" if corpus.skipped else ""
        raise CorpusError(f"'{name}' holds no document with text in column '{text_column}'.{detail}")
    return corpus


def _decode_csv(data: bytes, name: str) -> tuple[str, list[str]]:
    """Text of a CSV file: UTF-8 (a byte-order mark is dropped), else cp1252, else row-by-row repair.

    Bytes that are not UTF-8 survive as lone surrogates (errors="surrogateescape"), so that each row can
    be repaired or reported on its own: one bad row must not cost the whole file.
    """
    if not data.strip():
        raise CorpusError(
            f"'{name}' is empty: it needs a header row naming the columns, then one row per document."
        )
    if b"\0" in data[:4096]:
        raise CorpusError(
            f"'{name}' is not a text file (it holds NUL bytes: a spreadsheet or UTF-16?). "
            "Save it as CSV UTF-8."
        )
    notes = []
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        return data.decode("utf-8"), notes
    except UnicodeDecodeError:
        pass
    text = data.decode("utf-8", errors="surrogateescape")
    if not _has_valid_multibyte(text):
        try:  # a legacy file: nothing in it is UTF-8 beyond ASCII, so read all of it as cp1252
            legacy = data.decode("cp1252")
            notes.append(
                f"'{name}' is not UTF-8; it was read as Windows-1252 (cp1252). "
                "Check accented letters and quotes."
            )
            return legacy, notes
        except UnicodeDecodeError:
            pass
    return text, notes


def _has_surrogates(text: str) -> bool:
    return any("\udc80" <= ch <= "\udcff" for ch in text)


def _has_valid_multibyte(text: str) -> bool:
    return any(ord(ch) > 127 and not ("\udc80" <= ch <= "\udcff") for ch in text)


def _cp1252(value: str) -> str | None:
    """A cell with undecodable bytes read as cp1252 instead (None when that fails too)."""
    raw = value.encode("utf-8", errors="surrogateescape")
    try:
        return raw.decode("cp1252")
    except UnicodeDecodeError:
        return None


def read_files(files: Sequence[tuple[str, bytes]], source: str = "uploaded files") -> Corpus:
    """One document per (name, bytes) file: PDF or text. Files that cannot be read are in `skipped`.

    Raises:
        CorpusError: no file could be read.
    """
    return _read_documents(
        [(name, lambda data=data, name=name: load_document(data, name)) for name, data in files], source
    )


def _read_documents(loaders: Sequence[tuple[str, Callable[[], Document]]], source: str) -> Corpus:
    corpus = Corpus(texts=[], ids=[], titles=[], source=source)
    for name, load in loaders:
        try:
            document = load()
        except DocumentError as exc:
            corpus.skipped.append(SkippedRow(name, str(exc)))
            continue
        doc_id = document.name
        n = 2
        while doc_id in corpus.ids:
            doc_id, n = f"{document.name} ({n})", n + 1
        corpus.texts.append(document.text)
        corpus.ids.append(doc_id)
        corpus.titles.append(document.name)
        corpus.rows.append(name)
    if not corpus.texts:
        detail = f" {corpus.skipped_summary()}" if corpus.skipped else ""
        raise CorpusError(f"None of the files could be read.{detail}")
    return corpus


def read_folder(path: str | Path) -> Corpus:
    """Every PDF and text file directly inside a folder, in name order (see `read_files`)."""
    folder = Path(path)
    if not folder.is_dir():
        raise CorpusError(f"'{folder}' is not a folder. Give a folder of PDF or text files, or a CSV file.")
    names = sorted(
        p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in PDF_EXTENSIONS | TEXT_EXTENSIONS
    )
    if not names:
        raise CorpusError(f"'{folder}' holds no PDF or text files (.pdf, .txt, .md).")
    return _read_documents([(p.name, lambda p=p: load_path(p)) for p in names], source=str(folder))


def read_any(
    path: str | Path,
    text_column: str | None = None,
    id_column: str | None = None,
    label_column: str | None = None,
    title_column: str | None = None,
) -> Corpus:
    """A CSV file (needs `text_column`) or a folder of documents."""
    path = Path(path)
    if path.is_dir():
        return read_folder(path)
    if not text_column:
        raise CorpusError(f"'{path.name}' is a CSV file: say which column holds the text (--text-column).")
    return read_csv(path, text_column, id_column, label_column, title_column)


# --------------------------------------------------------------------------------------------------
# Embedding


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


def _parts_dir(out: Path) -> Path:
    return out.with_name(out.name + ".parts")


def _read_table(out: Path):
    """Every row written so far: the merged file and the parts of an unfinished run."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    tables = []
    if out.is_file():
        tables.append(pq.read_table(out))
    parts = _parts_dir(out)
    if parts.is_dir():
        tables += [pq.read_table(p) for p in sorted(parts.glob("part-*.parquet"))]
    if not tables:
        return None
    return pa.concat_tables(tables, promote_options="default")


def _write_atomic(table, path: Path) -> None:
    import pyarrow.parquet as pq

    tmp = path.with_name(path.name + ".tmp")
    pq.write_table(table, tmp)
    os.replace(tmp, path)  # a kill mid-write leaves a .tmp that is ignored, never half a part


def _to_table(rows: list[dict]):
    import pyarrow as pa

    vectors = np.stack([r["vector"] for r in rows]).astype(np.float32)
    columns = {k: [r[k] for r in rows] for k in COLUMNS if k != "vector"}
    arrays = {k: pa.array(v) for k, v in columns.items()}
    arrays["vector"] = pa.FixedSizeListArray.from_arrays(pa.array(vectors.ravel()), vectors.shape[1])
    return pa.table(arrays)


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
    parts = _parts_dir(out)
    report = EmbedReport(
        str(out), corpus_hash, fingerprint, len(corpus), 0, len(done), {v: ViewThroughput() for v in views}
    )
    buffer: list[dict] = []

    def flush() -> None:
        if buffer:
            parts.mkdir(exist_ok=True)
            n = len(list(parts.glob("part-*.parquet")))
            _write_atomic(_to_table(buffer), parts / f"part-{n:06d}-{os.getpid()}.parquet")
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
    _merge(out)
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
    have = _written(out, corpus.hash, fingerprint, strategy)
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
    reader = DocumentReader(pair, text_document(text, doc_id), strategy=strategy)
    rows = []
    ordered = sorted(views, key=lambda v: VIEWS.index(v))  # truncated first: chunked may reuse its pass
    for view in ordered:
        if view == "chunked" and "truncated" not in views:
            reader.encoded("truncated")  # one cheap pass that the chunked view often is
        t0 = time.perf_counter()
        p = reader.encoded(view)
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


def _written(out: Path, corpus_hash: str, fingerprint: str, strategy: str) -> dict[int, set[tuple[str, str]]]:
    """{doc: {(view, pooling)}} already written for this corpus and model. The strategy (global attention)
    only changes the Longformer pass, so truncated and chunked rows of any strategy count."""
    table = _read_table(out)
    if table is None:
        return {}
    keys = ("corpus", "model", "strategy", "view", "pooling", "doc")
    cols = table.select(list(keys)).to_pydict()
    have: dict[int, set] = {}
    for c, m, s, v, p, d in zip(*(cols[k] for k in keys)):
        if c == corpus_hash and m == fingerprint and (s == strategy or v != "longformer"):
            have.setdefault(d, set()).add((v, p))
    return have


def _merge(out: Path) -> None:
    """Fold the part files into OUT (one atomic write), dropping repeated keys; then remove the parts."""
    parts = _parts_dir(out)
    if not parts.is_dir():
        return
    table = _read_table(out)
    if table is not None:
        keys = table.select(["corpus", "model", "strategy", "view", "pooling", "doc"]).to_pylist()
        seen, keep = set(), []
        for j, key in enumerate(keys):
            k = tuple(key.values())
            if k not in seen:
                seen.add(k)
                keep.append(j)
        _write_atomic(table.take(keep), out)
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
    table = _read_table(path)
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
