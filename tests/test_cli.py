"""The command line prints readable comparisons, JSON with --json, and user messages on bad input."""

from __future__ import annotations

import json

from longformer_core.__main__ import main

TEXT = "The capital of France is Paris. Berlin is the capital of Germany.\n\nCats sleep a lot."


def test_qa_json(tmp_path, capsys, monkeypatch, embedded_pair):
    monkeypatch.setenv(
        "LONGDOC_QA_HEAD", "none"
    )  # answer sentences: the CLI's output, not the head, is tested
    f = tmp_path / "doc.txt"
    f.write_text(TEXT)
    assert main(["qa", str(f), "--question", "What is the capital of Germany?", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) == {"truncated", "chunked", "longformer"}
    assert out["longformer"]["answers"][0]["text"] == "Berlin is the capital of Germany."
    assert out["longformer"]["answers"][0]["page"] == 1


def test_classify_and_similar_readable(tmp_path, capsys, embedded_pair):
    f = tmp_path / "doc.txt"
    f.write_text(TEXT)
    assert main(["classify", str(f), "--labels", "geography: countries and cities", "cooking"]) == 0
    out = capsys.readouterr().out
    assert "== longformer" in out and "geography" in out
    assert main(["similar", str(f), str(f), "--pooling", "sum-last4", "--json"]) == 0
    sims = json.loads(capsys.readouterr().out)
    assert all(abs(r["cosine"] - 1.0) < 1e-4 for r in sims.values())


def test_bad_input_prints_a_message_not_a_traceback(tmp_path, capsys):
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    assert main(["qa", str(empty), "-q", "Anything?"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "empty" in err and "Traceback" not in err


def test_ctrl_c_says_finished_documents_are_saved_only_for_resumable_commands(tmp_path, monkeypatch, capsys):
    import longformer_core.__main__ as cli
    from longformer_core.cli import common  # every command loads its models through common.load_pair

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(common, "load_models", interrupted)
    f = tmp_path / "doc.txt"
    f.write_text("Berlin is the capital of Germany.")
    assert cli.main(["qa", str(f), "-q", "Capital?"]) == 130
    assert capsys.readouterr().err.strip() == "interrupted"
    assert cli.main(["embed", str(tmp_path), "--out", str(tmp_path / "out.parquet")]) == 130
    assert "finished documents are saved" in capsys.readouterr().err
