"""Scaling out: corpus embedding on Ray Data (a local 2-CPU Ray cluster), fine-tuning under torchrun (2 CPU ranks).

Tiny random checkpoints: the tests are about the engines' bookkeeping (same rows, resume, fault tolerance,
data-parallel training), not about what the vectors mean.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from longformer_core.__main__ import main
from longformer_core.corpus import CorpusError, embed_corpus, model_fingerprint, read_csv_bytes
from longformer_core.models import load_models

REPO_ROOT = Path(__file__).resolve().parent.parent
TOPICS = ["harbours and ferries", "the capital of France", "cats that sleep all day", "long documents"]


def _texts() -> list[str]:
    """12 documents; every third is long enough (> 512 tokens) for the chunked view to read several chunks."""
    texts = []
    for i in range(12):
        sentence = f"Document {i} is about {TOPICS[i % 4]}. "
        texts.append(sentence * (60 if i % 3 == 0 else 2 + i))
    return texts


def _csv_bytes() -> bytes:
    import csv
    import io

    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["id", "text", "topic"])
    writer.writerows([f"d{i}", t, TOPICS[i % 4]] for i, t in enumerate(_texts()))
    return buf.getvalue().encode()


def _corpus():
    return read_csv_bytes(_csv_bytes(), "text", id_column="id", label_column="topic", name="twelve.csv")


def _sorted(path: Path):
    keys = [("doc", "ascending"), ("view", "ascending"), ("pooling", "ascending")]
    return pq.read_table(path).sort_by(keys)


def _assert_same_rows(a_path: Path, b_path: Path) -> None:
    a, b = _sorted(a_path), _sorted(b_path)
    assert a.num_rows == b.num_rows == 12 * 3 * 3
    assert a.drop_columns(["vector"]).equals(b.drop_columns(["vector"]))  # same keys, ids, token counts
    np.testing.assert_allclose(np.stack(a["vector"].to_numpy(zero_copy_only=False)),
                               np.stack(b["vector"].to_numpy(zero_copy_only=False)), atol=1e-5)


class Stop(Exception):
    pass


# --------------------------------------------------------------------------------------------------
# Ray: quick checks that need no cluster


def test_missing_ray_says_how_to_install(monkeypatch, tiny_checkpoint, tmp_path, capsys):
    from longformer_core import corpus_ray

    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError, as on a machine without it
    with pytest.raises(CorpusError, match=r"pip install 'ray\[data\]"):
        corpus_ray.import_ray()
    src = tmp_path / "c.csv"
    src.write_bytes(_csv_bytes())
    rc = main(["embed", str(src), "--text-column", "text", "--engine", "ray", "--out", str(tmp_path / "o.parquet"),
               "--model", str(tiny_checkpoint("longformer"))])
    assert rc == 2
    assert "--engine ray needs Ray Data, which is not installed" in capsys.readouterr().err
    assert not (tmp_path / "o.parquet").exists()


def test_a_worker_with_other_weights_refuses_to_start(tiny_checkpoint):
    from longformer_core.corpus_ray import EmbedWorker

    folder = str(tiny_checkpoint("longformer"))
    right = model_fingerprint(load_models(folder))
    worker = EmbedWorker(folder, None, right, "unused.parquet", ["longformer"], ["mean"], "cls", "c0ffee")
    assert worker.fingerprint == right
    with pytest.raises(CorpusError, match="different weights or library versions"):
        EmbedWorker(folder, None, "0123456789ab", "unused.parquet", ["longformer"], ["mean"], "cls", "c0ffee")


# --------------------------------------------------------------------------------------------------
# Ray: a local cluster of 2 CPUs


@pytest.fixture(scope="module")
def ray_cluster(tmp_path_factory):
    """A local Ray cluster (2 CPUs, token auth off, temp files under the test's tmp), shut down afterwards."""
    ray = pytest.importorskip("ray")
    pytest.importorskip("ray.data")
    saved = os.environ.get("RAY_AUTH_MODE")
    os.environ["RAY_AUTH_MODE"] = "disabled"
    temp = tmp_path_factory.mktemp("ray")
    ray.init(num_cpus=2, _temp_dir=str(temp), include_dashboard=False, object_store_memory=256 * 1024**2,
             log_to_driver=False)
    yield ray
    ray.shutdown()
    if saved is None:
        os.environ.pop("RAY_AUTH_MODE", None)
    else:
        os.environ["RAY_AUTH_MODE"] = saved


@pytest.fixture(scope="module")
def tiny_model(tiny_checkpoint):
    folder = str(tiny_checkpoint("longformer"))
    return folder, load_models(folder)


@pytest.fixture(scope="module")
def local_reference(tiny_model, tmp_path_factory):
    """The local engine's output for the 12 documents: what the Ray engine must reproduce."""
    out = tmp_path_factory.mktemp("local") / "local.parquet"
    report = embed_corpus(tiny_model[1], _corpus(), out, chunk_size=3)
    assert (report.computed, report.reused) == (12, 0)
    return out


@pytest.mark.slow
def test_ray_engine_equals_local_and_loads_the_model_once_per_worker(ray_cluster, tiny_model, local_reference,
                                                                       tmp_path):
    from longformer_core.corpus_ray import RayOptions, embed_corpus_ray

    folder, pair = tiny_model
    out = tmp_path / "ray.parquet"
    lines = []
    report = embed_corpus_ray(pair, _corpus(), out, model=folder, chunk_size=2, options=RayOptions(workers=2),
                              progress=lambda f, m: lines.append((f, m)))
    assert (report.computed, report.reused, report.engine) == (12, 0, "ray")
    _assert_same_rows(local_reference, out)
    assert not out.with_name(out.name + ".parts").exists()  # merged and cleaned up
    # 6 batches over at most 2 workers: each worker embedded several batches with the one model it loaded.
    assert 1 <= len(report.workers) <= 2
    assert sum(w["documents"] for w in report.workers.values()) == 12
    assert all(w["model_loads"] == 1 for w in report.workers.values())
    assert any(w["documents"] > 2 for w in report.workers.values())
    assert report.throughput["longformer"].documents == 12 and report.throughput["chunked"].tokens > 0
    assert lines[-1][0] == 1.0 and "embedded 12 of 12 documents" in lines[-1][1]


@pytest.mark.slow
def test_ray_engine_resumes_a_half_finished_run(ray_cluster, tiny_model, local_reference, tmp_path):
    from longformer_core.corpus_ray import RayOptions, embed_corpus_ray

    folder, pair = tiny_model
    out = tmp_path / "half.parquet"

    def stop_after_six(fraction: float, message: str) -> None:
        if fraction >= 0.5:
            raise Stop

    with pytest.raises(Stop):  # an interrupted run: 6 documents sit in part files
        embed_corpus(pair, _corpus(), out, chunk_size=3, progress=stop_after_six)
    report = embed_corpus_ray(pair, _corpus(), out, model=folder, chunk_size=3, options=RayOptions(workers=2))
    assert (report.computed, report.reused) == (6, 6)
    assert report.throughput["truncated"].documents == 6
    _assert_same_rows(local_reference, out)


def _crash_once_worker(marker: Path):
    from longformer_core.corpus_ray import EmbedWorker

    class CrashOnce(EmbedWorker):
        """Dies (os._exit) in the middle of its first batch of several documents, once per test: after it
        has embedded and written the batch's first document, so the retried batch writes that key again."""

        crash_marker = str(marker)

        def embed(self, batch):
            if batch.num_rows > 1 and not os.path.exists(self.crash_marker):
                rows, _ = super().embed(batch.slice(0, 1))
                self.write(rows)
                Path(self.crash_marker).write_text(self.worker)
                os._exit(1)
            return super().embed(batch)

    return CrashOnce


@pytest.mark.slow
def test_a_killed_worker_is_replaced_and_no_document_is_lost_or_doubled(ray_cluster, tiny_model, local_reference,
                                                                         tmp_path):
    import ray.cloudpickle

    from longformer_core.corpus_ray import RayOptions, embed_corpus_ray

    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers cannot import this test module
    folder, pair = tiny_model
    marker = tmp_path / "crashed"
    out = tmp_path / "crash.parquet"
    report = embed_corpus_ray(pair, _corpus(), out, model=folder, chunk_size=3, options=RayOptions(workers=2),
                              worker_class=_crash_once_worker(marker))
    assert marker.exists()  # a worker did die mid-batch
    dead = marker.read_text()
    assert dead not in report.workers  # the dead worker returned nothing; its batch was redone elsewhere
    assert report.computed == 12
    table = pq.read_table(out)
    assert sorted(set(table["doc"].to_pylist())) == list(range(12))
    _assert_same_rows(local_reference, out)  # exactly 12 x 3 views x 3 poolings: the doubled key was dropped


@pytest.mark.slow
def test_cli_embed_with_the_ray_engine(ray_cluster, tiny_model, local_reference, tmp_path, capsys):
    folder, _ = tiny_model
    src = tmp_path / "twelve.csv"
    src.write_bytes(_csv_bytes())
    out = tmp_path / "cli.parquet"
    args = ["embed", str(src), "--text-column", "text", "--id-column", "id", "--label-column", "topic",
            "--engine", "ray", "--workers", "2", "--threads-per-worker", "1", "--chunk-size", "4",
            "--out", str(out), "--model", folder, "--json"]
    assert main(args) == 0
    captured = capsys.readouterr()
    summary = json.loads(captured.out)
    assert summary["engine"] == "ray" and summary["computed"] == 12 and 1 <= summary["workers"] <= 2
    assert summary["throughput"]["longformer"]["documents"] == 12
    assert "throughput longformer: 12 docs" in captured.err
    _assert_same_rows(local_reference, out)
    assert main(args) == 0  # the same command again: everything is reused
    assert json.loads(capsys.readouterr().out)["reused"] == 12
