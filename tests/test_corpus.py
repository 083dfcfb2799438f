"""Corpora: CSV reading that reports every row it cannot use, and resumable batch embedding into parquet."""

from __future__ import annotations

import io
import json

import numpy as np
import pyarrow.parquet as pq
import pytest

from longformer_core.__main__ import main
from longformer_core.corpus.embed import (
    CorpusError,
    embed_corpus,
    load_embeddings,
    read_csv_bytes,
    read_files,
    read_folder,
)
from longformer_core.model.registry import load_models

TEXTS = [
    "The capital of France is Paris.",
    "Berlin is the capital of Germany and its largest city.",
    "Cats sleep for most of the day.",
    "The answer to the question is in the document.",
    "Longformer reads long documents with a sliding window.",
    "What is the capital of Italy? Rome.",
    "A short note.",
]


def _csv(rows: list[list[str]], header=("id", "text", "topic")) -> bytes:
    import csv
    import io

    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(header)
    writer.writerows(rows)
    return buf.getvalue().encode("utf-8")


# --------------------------------------------------------------------------------------------------
# Reading


def test_missing_column_lists_the_columns_present():
    data = _csv([["1", "Some text", "a"]])
    with pytest.raises(CorpusError) as info:
        read_csv_bytes(data, "Content", name="seed.csv")
    message = str(info.value)
    assert message.startswith("Column 'Content' not found")
    assert "'id'" in message and "'text'" in message and "'topic'" in message


def test_empty_and_missing_texts_are_reported_with_row_numbers():
    data = _csv(
        [["a", "First text", "x"], ["b", "   ", "y"], ["c"], ["d", "Fourth text", "z"], ["a", "again", "x"]]
    )
    corpus = read_csv_bytes(data, "text", id_column="id", label_column="topic")
    assert corpus.texts == ["First text", "Fourth text"]
    assert corpus.ids == ["a", "d"] and corpus.labels == ["x", "z"] and corpus.rows == [2, 5]
    reasons = {s.row: s.reason for s in corpus.skipped}
    assert set(reasons) == {3, 4, 6}
    assert "empty text" in reasons[3] and "no value" in reasons[4] and "repeats row 2" in reasons[6]
    summary = corpus.skipped_summary()
    assert summary.startswith("3 rows were left out") and "row 3" in summary


def test_bom_and_cp1252_files_are_read_with_a_note():
    utf8_bom = b"\xef\xbb\xbf" + _csv([["1", "Caf\u00e9 cr\u00e8me", "x"]])
    corpus = read_csv_bytes(utf8_bom, "text", id_column="id")
    assert corpus.texts == ["Caf\u00e9 cr\u00e8me"] and corpus.notes == []
    legacy = "id,text\n1,\u201cCaf\u00e9\u201d \u2013 cr\u00e8me\n".encode("cp1252")
    corpus = read_csv_bytes(legacy, "text", id_column="id", name="old.csv")
    assert corpus.texts == ["\u201cCaf\u00e9\u201d \u2013 cr\u00e8me"]
    assert "Windows-1252" in corpus.notes[0] and "old.csv" in corpus.notes[0]


def test_mixed_encodings_are_repaired_or_reported_per_row():
    good = "id,text\n1,na\u00efve UTF-8 r\u00e9sum\u00e9\n".encode()
    cp_row = "2,caf\u00e9 in cp1252\n".encode("cp1252")
    bad_row = b"3,undecodable \x81\x8d bytes\n"
    corpus = read_csv_bytes(good + cp_row + bad_row + b"4,fine\n", "text", id_column="id")
    assert corpus.ids == ["1", "2", "4"]
    assert corpus.texts[1] == "caf\u00e9 in cp1252"
    assert any("rows 3" in n and "Windows-1252" in n for n in corpus.notes)  # the cp1252 row (row 3)
    (skipped,) = corpus.skipped
    assert skipped.row == 4 and "neither UTF-8 nor Windows-1252" in skipped.reason


def test_files_that_cannot_be_read_are_reported():
    corpus = read_files([("a.txt", b"Some text here."), ("empty.txt", b""), ("b.md", b"More text.")])
    assert corpus.ids == ["a.txt", "b.md"]
    assert corpus.skipped[0].row == "empty.txt" and "empty" in corpus.skipped[0].reason
    with pytest.raises(CorpusError, match="None of the files"):
        read_files([("empty.txt", b"")])


# --------------------------------------------------------------------------------------------------
# Embedding (tiny random checkpoint: the test is about bookkeeping, not about what the vectors mean)


@pytest.fixture(scope="module")
def tiny_pair(tiny_checkpoint):
    return load_models(str(tiny_checkpoint("longformer")))


def _corpus():
    return read_csv_bytes(
        _csv([[str(i), t, "x"] for i, t in enumerate(TEXTS)]), "text", id_column="id", label_column="topic"
    )


class Stop(Exception):
    pass


def test_interrupted_run_resumes_without_recomputing(tiny_pair, tmp_path):
    corpus = _corpus()
    whole = embed_corpus(tiny_pair, corpus, tmp_path / "whole.parquet", chunk_size=2)
    assert (whole.computed, whole.reused) == (len(TEXTS), 0)

    out = tmp_path / "resumed.parquet"

    def stop_after_three(fraction: float, message: str) -> None:
        if fraction >= 3 / len(TEXTS):
            raise Stop

    with pytest.raises(Stop):
        embed_corpus(tiny_pair, corpus, out, chunk_size=2, progress=stop_after_three)
    # As after a killed process: finished documents sit in part files, nothing is merged yet.
    assert not out.exists() and list((tmp_path / "resumed.parquet.parts").glob("part-*.parquet"))
    (tmp_path / "resumed.parquet.parts" / "part-999999-1.parquet.tmp").write_bytes(b"half a write")

    second = embed_corpus(tiny_pair, corpus, out, chunk_size=2)
    assert (second.computed, second.reused) == (len(TEXTS) - 3, 3)
    assert second.throughput["longformer"].documents == len(TEXTS) - 3
    assert not (tmp_path / "resumed.parquet.parts").exists()

    a = pq.read_table(tmp_path / "whole.parquet").sort_by(
        [("doc", "ascending"), ("view", "ascending"), ("pooling", "ascending")]
    )
    b = pq.read_table(out).sort_by([("doc", "ascending"), ("view", "ascending"), ("pooling", "ascending")])
    assert a.num_rows == b.num_rows == len(TEXTS) * 3 * 3
    assert a.drop_columns(["vector"]).equals(b.drop_columns(["vector"]))
    np.testing.assert_allclose(
        np.stack(a["vector"].to_numpy(zero_copy_only=False)),
        np.stack(b["vector"].to_numpy(zero_copy_only=False)),
        atol=1e-6,
    )

    third = embed_corpus(tiny_pair, corpus, out)
    assert (third.computed, third.reused) == (0, len(TEXTS))
    emb = load_embeddings(out, "longformer", "cls", corpus.hash)
    assert emb.vectors.shape == (len(TEXTS), 32) and emb.doc_ids == corpus.ids
    assert np.allclose(np.linalg.norm(emb.vectors, axis=1), 1, atol=1e-5)


def test_a_short_document_reuses_the_truncated_pass_for_chunked(tiny_pair, tmp_path):
    corpus = _corpus()
    embed_corpus(tiny_pair, corpus, tmp_path / "e.parquet", views=["truncated", "chunked"], poolings=["mean"])
    t = load_embeddings(tmp_path / "e.parquet", "truncated", "mean")
    c = load_embeddings(tmp_path / "e.parquet", "chunked", "mean")
    np.testing.assert_array_equal(t.vectors, c.vectors)  # every text fits in one 512-token chunk


def test_cli_embed_prints_throughput_and_json(tiny_checkpoint, tmp_path, capsys):
    src = tmp_path / "corpus.csv"
    src.write_bytes(_csv([[str(i), t, "x"] for i, t in enumerate(TEXTS[:3])] + [["9", "", "x"]]))
    out = tmp_path / "out.parquet"
    args = [
        "embed",
        str(src),
        "--text-column",
        "text",
        "--id-column",
        "id",
        "--pooling",
        "mean",
        "--out",
        str(out),
        "--model",
        str(tiny_checkpoint("longformer")),
        "--json",
    ]
    assert main(args) == 0
    captured = capsys.readouterr()
    summary = json.loads(captured.out)
    assert summary["computed"] == 3 and summary["skipped"] == 1
    assert summary["throughput"]["longformer"]["documents"] == 3
    assert "throughput longformer: 3 docs" in captured.err and "tokens/s" in captured.err
    assert "row 5: empty text" in captured.err
    assert pq.read_table(out).num_rows == 3 * 3

    assert (
        main(
            [
                "embed",
                str(src),
                "--text-column",
                "Content",
                "--out",
                str(out),
                "--model",
                str(tiny_checkpoint("longformer")),
            ]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert err.startswith("error: Column 'Content' not found: choose one of 'id', 'text', 'topic'")


def test_another_strategy_recomputes_only_the_longformer_view(tiny_pair, tmp_path):
    corpus = _corpus()
    out = tmp_path / "e.parquet"
    embed_corpus(tiny_pair, corpus, out, poolings=["cls"])
    again = embed_corpus(tiny_pair, corpus, out, poolings=["cls"], strategy="sentences")
    assert again.computed == len(TEXTS)
    assert again.throughput["longformer"].documents == len(TEXTS)
    assert again.throughput["truncated"].documents == again.throughput["chunked"].documents == 0
    t = load_embeddings(out, "truncated", "cls", strategy="sentences")
    assert t.doc_ids == corpus.ids  # the truncated rows of the first run, once each
    cls_global = load_embeddings(out, "longformer", "cls", strategy="cls").vectors
    sentence_global = load_embeddings(out, "longformer", "cls", strategy="sentences").vectors
    assert cls_global.shape == sentence_global.shape


def test_a_folder_of_documents_is_read_file_by_file(tmp_path, make_pdf):
    (tmp_path / "a.txt").write_text("A plain text document about harbours.")
    (tmp_path / "b.pdf").write_bytes(make_pdf(["A PDF page about ferries."]))
    (tmp_path / "c.pdf").write_bytes(b"%PDF-1.7 broken")
    (tmp_path / "notes.csv").write_text("ignored,because,not a document")
    corpus = read_folder(tmp_path)
    assert corpus.ids == ["a.txt", "b.pdf"] and "ferries" in corpus.texts[1]
    assert [s.row for s in corpus.skipped] == ["c.pdf"]
    with pytest.raises(CorpusError, match="not a folder"):
        read_folder(tmp_path / "a.txt")


def test_evaluation_can_use_the_rows_an_interrupted_run_left(tiny_pair, tmp_path):
    from longformer_core.evaluation.corpus import embedded_rows

    corpus = _corpus()
    out = tmp_path / "partial.parquet"

    def stop_after_three(fraction: float, message: str) -> None:
        if fraction >= 3 / len(TEXTS):
            raise Stop

    with pytest.raises(Stop):
        embed_corpus(tiny_pair, corpus, out, poolings=["mean"], chunk_size=1, progress=stop_after_three)
    embeddings, sub = embedded_rows(tiny_pair, corpus, out, ["truncated", "longformer"], ["mean"], "cls")
    assert sub.ids == corpus.ids[:3] and sub.texts == corpus.texts[:3]
    assert embeddings[("longformer", "mean")].doc_ids == corpus.ids[:3]


def test_huge_csv_fields_are_read_without_changing_the_process_limit():
    """csv.field_size_limit is process-wide: reading a long document must not leave it raised, even
    when two sessions read CSVs at the same time."""
    import csv
    import threading

    before = csv.field_size_limit()
    huge = b"title,text\nLong," + b"word " * (before // 5 + 1000) + b"\nShort,a few words\n"
    results: list[int] = []
    errors: list[BaseException] = []

    def read() -> None:
        try:
            for _ in range(5):
                results.append(len(read_csv_bytes(huge, "text", title_column="title").texts[0]))
        except BaseException as exc:  # noqa: BLE001 - reported by the assert below
            errors.append(exc)

    threads = [threading.Thread(target=read) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    assert len(results) == 10 and min(results) > before
    assert csv.field_size_limit() == before
    with pytest.raises(csv.Error, match="field larger than field limit"):
        list(csv.reader(io.StringIO(huge.decode())))  # other csv users keep the default limit
