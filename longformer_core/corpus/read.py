"""Reading a collection of documents: a CSV (one document per row) or a folder / uploaded files.

Every row or file that holds no usable document is *reported* in `Corpus.skipped` with where it was and why,
never silently dropped. The file is read as UTF-8 (with or without a byte-order mark); rows that are not UTF-8
but are valid Windows-1252 (cp1252) are read as cp1252, with a note in `Corpus.notes`.
"""

from __future__ import annotations

import csv
import hashlib
import io
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from longformer_core.documents import (
    PDF_EXTENSIONS,
    TEXT_EXTENSIONS,
    Document,
    DocumentError,
    clean_text,
    load_document,
    load_path,
)

MAX_REPORTED = 20  # skipped rows listed by name in a message; the rest are counted


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
    rows = _csv_rows(text, name)
    header = [h.strip() for h in rows[0]]
    wanted = {"text": text_column, "id": id_column, "label": label_column, "title": title_column}
    index = _column_index(header, wanted)
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
        values, problem, repaired = _row_values(cells, index, wanted)
        if repaired:
            cp1252_rows.append(row_number)
        problem = problem or _add_row(corpus, values, row_number, text_column, seen_ids)
        if problem:
            corpus.skipped.append(SkippedRow(row_number, problem))
    if cp1252_rows:
        corpus.notes.append(_cp1252_rows_note(cp1252_rows))
    if not corpus.texts:
        detail = f" {corpus.skipped_summary()}" if corpus.skipped else ""
        raise CorpusError(f"'{name}' holds no document with text in column '{text_column}'.{detail}")
    return corpus


def _csv_rows(text: str, name: str) -> list[list[str]]:
    """The CSV's rows (header first). Raises CorpusError when it is not a CSV or has no header."""
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
    return rows


def _column_index(header: list[str], wanted: dict[str, str | None]) -> dict[str, int]:
    """{role: column number} of each named column; a missing one raises CorpusError listing the header."""
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
    return index


def _row_values(
    cells: list[str], index: dict[str, int], wanted: dict[str, str | None]
) -> tuple[dict[str, str | None], str | None, bool]:
    """One row's value per role (None: the row is short there).

    Returns:
        (values, problem, repaired): problem says why the row is left out (None when it is usable);
        repaired is True when a cell was not UTF-8 and was read as cp1252.
    """
    if not any(c.strip() for c in cells):
        return {}, "empty row", False
    values: dict[str, str | None] = {}
    repaired = False
    for role, j in index.items():
        value = cells[j] if j < len(cells) else None
        if value is not None and _has_surrogates(value):
            value = _cp1252(value)
            if value is None:
                return (
                    values,
                    f"bytes in column '{wanted[role]}' that are neither UTF-8 nor Windows-1252 text",
                    repaired,
                )
            repaired = True
        values[role] = value
    return values, None, repaired


def _add_row(
    corpus: Corpus, values: dict[str, str | None], row_number: int, text_column: str, seen_ids: dict[str, int]
) -> str | None:
    """Append one row's document to `corpus`; or return why it is left out (no text, a repeated id)."""
    if values["text"] is None:
        return f"no value in column '{text_column}' (the row is short)"
    doc_text = clean_text(values["text"]).strip()
    if not doc_text:
        return f"empty text in column '{text_column}'"
    doc_id = (values.get("id") or "").strip() or f"row {row_number}"
    if doc_id in seen_ids:
        return f"id '{doc_id}' repeats row {seen_ids[doc_id]}"
    seen_ids[doc_id] = row_number
    corpus.texts.append(doc_text)
    corpus.ids.append(doc_id)
    corpus.rows.append(row_number)
    if corpus.labels is not None:
        corpus.labels.append((values.get("label") or "").strip())
    if corpus.titles is not None:
        corpus.titles.append((values.get("title") or "").strip())
    return None


def _cp1252_rows_note(rows: list[int]) -> str:
    """The note telling the user which rows were read as cp1252."""
    shown = ", ".join(map(str, rows[:MAX_REPORTED])) + (" ..." if len(rows) > MAX_REPORTED else "")
    return (
        f"{len(rows)} rows are not UTF-8 and were read as Windows-1252 (cp1252): rows {shown}. "
        "Check their accented letters and quotes."
    )


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
