"""Scaling out: corpus embedding on Ray Data (a local 2-CPU Ray cluster), fine-tuning under torchrun (2 CPU ranks).

Tiny random checkpoints: the tests are about the engines' bookkeeping (same rows, resume, fault tolerance,
data-parallel training), not about what the vectors mean.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from longformer_core.__main__ import main
from longformer_core.corpus.embed import CorpusError, embed_corpus, model_fingerprint, read_csv_bytes
from longformer_core.model.registry import load_models

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
    np.testing.assert_allclose(
        np.stack(a["vector"].to_numpy(zero_copy_only=False)),
        np.stack(b["vector"].to_numpy(zero_copy_only=False)),
        atol=1e-5,
    )


class Stop(Exception):
    pass


# --------------------------------------------------------------------------------------------------
# Ray: quick checks that need no cluster


def test_missing_ray_says_how_to_install(monkeypatch, tiny_checkpoint, tmp_path, capsys):
    from longformer_core.corpus import ray_engine as corpus_ray

    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError, as on a machine without it
    with pytest.raises(CorpusError, match=r"pip install 'ray\[data\]"):
        corpus_ray.import_ray()
    src = tmp_path / "c.csv"
    src.write_bytes(_csv_bytes())
    rc = main(
        [
            "embed",
            str(src),
            "--text-column",
            "text",
            "--engine",
            "ray",
            "--out",
            str(tmp_path / "o.parquet"),
            "--model",
            str(tiny_checkpoint("longformer")),
        ]
    )
    assert rc == 2
    assert "--engine ray needs Ray Data, which is not installed" in capsys.readouterr().err
    assert not (tmp_path / "o.parquet").exists()


def test_a_worker_with_other_weights_refuses_to_start(tiny_checkpoint):
    from longformer_core.corpus.ray_engine import EmbedWorker

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
    ray.init(
        num_cpus=2,
        _temp_dir=str(temp),
        include_dashboard=False,
        object_store_memory=256 * 1024**2,
        log_to_driver=False,
    )
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


def _crash_once_worker(marker: Path):
    from longformer_core.corpus.ray_engine import EmbedWorker

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
def test_cli_ray_engine_equals_local_and_loads_the_model_once_per_worker(
    ray_cluster, tiny_model, local_reference, tmp_path, capsys
):
    """`embed --engine ray` end to end on the 12 documents; a second run of the same command reuses them all."""
    folder, _ = tiny_model
    src = tmp_path / "twelve.csv"
    src.write_bytes(_csv_bytes())
    out = tmp_path / "cli.parquet"
    args = [
        "embed",
        str(src),
        "--text-column",
        "text",
        "--id-column",
        "id",
        "--label-column",
        "topic",
        "--engine",
        "ray",
        "--workers",
        "2",
        "--threads-per-worker",
        "1",
        "--chunk-size",
        "2",
        "--out",
        str(out),
        "--model",
        folder,
        "--json",
    ]
    assert main(args) == 0
    captured = capsys.readouterr()
    summary = json.loads(captured.out)
    assert (summary["engine"], summary["computed"], summary["reused"]) == ("ray", 12, 0)
    _assert_same_rows(local_reference, out)  # same keys, vectors within 1e-5
    assert not out.with_name(out.name + ".parts").exists()  # merged and cleaned up
    # 6 batches on at most 2 workers: each embedded several batches with the one model it loaded.
    workers = summary["workers"]
    assert 1 <= len(workers) <= 2 and sum(w["documents"] for w in workers.values()) == 12
    assert all(w["model_loads"] == 1 for w in workers.values())
    assert max(w["documents"] for w in workers.values()) > 2
    assert summary["throughput"]["longformer"]["documents"] == 12
    assert summary["throughput"]["chunked"]["tokens"] > summary["throughput"]["truncated"]["tokens"]
    assert "throughput longformer: 12 docs" in captured.err and "embedded 12 of 12 documents" in captured.err

    assert main(args) == 0  # the same command again: nothing left to compute, Ray is not even needed
    again = json.loads(capsys.readouterr().out)
    assert (again["computed"], again["reused"]) == (0, 12)


@pytest.mark.slow
def test_ray_engine_resumes_a_half_finished_run_through_a_killed_worker(
    ray_cluster, tiny_model, local_reference, tmp_path
):
    """6 documents left by an interrupted run are reused; of the 6 computed, one batch loses its worker mid-way
    (os._exit after writing part of it): Ray replaces the worker, the batch is redone, and the merged file
    holds every document exactly once."""
    import ray.cloudpickle

    from longformer_core.corpus.ray_engine import RayOptions, embed_corpus_ray

    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers cannot import this test module
    folder, pair = tiny_model
    out = tmp_path / "half.parquet"

    def stop_after_six(fraction: float, message: str) -> None:
        if fraction >= 0.5:
            raise Stop

    with pytest.raises(Stop):  # an interrupted run: 6 documents sit in part files
        embed_corpus(pair, _corpus(), out, chunk_size=3, progress=stop_after_six)
    marker = tmp_path / "crashed"
    report = embed_corpus_ray(
        pair,
        _corpus(),
        out,
        model=folder,
        chunk_size=3,
        options=RayOptions(workers=2),
        worker_class=_crash_once_worker(marker),
    )
    assert (report.computed, report.reused) == (6, 6)
    assert report.throughput["truncated"].documents == 6
    assert marker.exists()  # a worker did die mid-batch ...
    assert (
        marker.read_text() not in report.workers
    )  # ... returned nothing, and its batch was redone elsewhere
    assert sorted(set(pq.read_table(out)["doc"].to_pylist())) == list(range(12))
    _assert_same_rows(local_reference, out)  # exactly 12 x 3 views x 3 poolings: the doubled key was dropped


# --------------------------------------------------------------------------------------------------
# torchrun: data-parallel fine-tuning on 2 CPU processes (gloo)

# Loaded through PYTHONPATH into every rank: records each file or folder a rank creates or opens for writing
# under AUDIT_WATCH (Python-level open, rename/replace, mkdir) in AUDIT_LOG_DIR/rank<RANK>.txt.
AUDIT_HOOK = """
import os, sys

_watch, _logs, _rank = os.environ.get("AUDIT_WATCH"), os.environ.get("AUDIT_LOG_DIR"), os.environ.get("RANK")
if _watch and _logs and _rank is not None:
    _fd = os.open(os.path.join(_logs, f"rank{_rank}.txt"), os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    _WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC

    def _audit(event, args):
        if event == "open":
            path, mode, flags = args
            writes = (isinstance(mode, str) and any(c in mode for c in "wax+")) or bool((flags or 0) & _WRITE_FLAGS)
        elif event in ("os.rename", "os.replace"):
            path, writes = args[1], True
        elif event == "os.mkdir":
            path, writes = args[0], True
        else:
            return
        if writes and isinstance(path, (str, bytes, os.PathLike)):
            path = os.fsdecode(path)
            if os.path.abspath(path).startswith(_watch):
                os.write(_fd, (event + " " + os.path.abspath(path) + "\\n").encode())

    sys.addaudithook(_audit)
"""


def _squad_file(path: Path) -> Path:
    """Three articles (one kept aside for validation) of three questions each, answers at their true offsets."""
    context = (
        "The capital of France is Paris. Berlin is the capital of Germany. Longformer reads long documents."
    )
    qas = [
        ("What is the capital of France?", "Paris"),
        ("What is the capital of Germany?", "Berlin"),
        ("What reads long documents?", "Longformer"),
    ]
    data = [
        {
            "title": title,
            "paragraphs": [
                {
                    "context": context,
                    "qas": [
                        {
                            "id": f"{t}-{i}",
                            "question": q,
                            "answers": [{"text": a, "answer_start": context.index(a)}],
                        }
                        for i, (q, a) in enumerate(qas)
                    ],
                }
            ],
        }
        for t, title in enumerate(("France", "Germany", "Models"))
    ]
    path.write_text(json.dumps({"version": "test", "data": data}))
    return path


@pytest.mark.slow
def test_torchrun_two_ranks_train_one_model_and_rank_zero_alone_writes(tiny_checkpoint, tmp_path):
    from longformer_core.model.registry import load_checkpoint
    from longformer_core.training.finetune import weights_digest

    start = str(tiny_checkpoint("longformer-qa"))
    out = tmp_path / "out"
    audit, logs = tmp_path / "audit", tmp_path / "logs"
    audit.mkdir()
    logs.mkdir()
    (audit / "sitecustomize.py").write_text(AUDIT_HOOK)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(audit), str(REPO_ROOT)]),
        "OMP_NUM_THREADS": "1",
        "HF_HUB_OFFLINE": "1",
        "AUDIT_WATCH": str(out),
        "AUDIT_LOG_DIR": str(logs),
    }
    torchrun = Path(sys.executable).with_name("torchrun")
    launcher = [str(torchrun)] if torchrun.exists() else [sys.executable, "-m", "torch.distributed.run"]
    command = launcher + [
        "--standalone",
        "--nproc-per-node",
        "2",
        "-m",
        "longformer_core",
        "finetune",
        "--task",
        "qa",
        "--model",
        start,
        "--train",
        str(_squad_file(tmp_path / "s.json")),
        "--val-articles",
        "1",
        "--max-steps",
        "3",
        "--batch-size",
        "2",
        "--out",
        str(out),
        "--json",
    ]
    done = subprocess.run(
        command, check=False, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    printed = [line for line in done.stdout.splitlines() if line.startswith("{")]
    assert len(printed) == 1  # one report, rank 0's
    report = json.loads(printed[0])
    assert report["steps"] == 3 and report["train_questions"] == 6 and np.isfinite(report["eval_loss"])

    dist = report["distributed"]
    assert dist["world_size"] == 2 and dist["backend"] == "gloo"
    ranks = {r["rank"]: r for r in dist["ranks"]}
    assert set(ranks) == {0, 1}
    # Both ranks trained, each on its own rows ...
    assert ranks[0]["rows"] > 0 and ranks[1]["rows"] > 0
    assert ranks[0]["first_batch"] != ranks[1]["first_batch"]
    # ... and the averaged gradients kept the two replicas equal, after the first step that changed the weights
    # (warm-up starts at a learning rate of 0) and at the end.
    assert 1 <= dist["first_update_step"] < 3
    assert ranks[0]["weights_after_first_update"] == ranks[1]["weights_after_first_update"]
    assert ranks[0]["weights_at_end"] == ranks[1]["weights_at_end"] and dist["replicas_equal"]
    initial = weights_digest(load_checkpoint(start, fast_attention=False).model)
    assert ranks[0]["weights_after_first_update"] != initial
    assert ranks[0]["weights_at_end"] not in (initial, ranks[0]["weights_after_first_update"])

    # Rank 0 alone wrote; rank 1 created or opened nothing under the output folder.
    rank0 = (logs / "rank0.txt").read_text()
    assert "report.json" in rank0 and "config.json" in rank0
    assert (logs / "rank1.txt").read_text() == ""
    assert json.loads((out / "report.json").read_text())["distributed"]["replicas_equal"]

    # The result loads as a checkpoint, and it is the replicas' weights.
    loaded = load_checkpoint(str(out), fast_attention=False)
    assert loaded.head == "qa" and loaded.is_longformer
    assert weights_digest(loaded.model) == ranks[0]["weights_at_end"]
