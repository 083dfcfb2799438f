"""Long-context fine-tuning of the one-pass reader and its chunked twin, on tiny random checkpoints."""

from __future__ import annotations

import json
import math
import os
import platform
from pathlib import Path

import pytest
import torch

from longformer_core.evaluation.hotpot import is_heldout
from longformer_core.model.qa_head import load_answer_type_head
from longformer_core.qa.one_pass import ANSWER_TYPES, SpanModel, read_one_pass
from longformer_core.training import long as fl

FILLER = "Longformer reads long documents with a sliding window. The answer is in the document. "
PARAGRAPHS = ["The capital of France is Paris.", FILLER, "Berlin is the capital of Germany."]


def _squad_articles(path: Path) -> Path:
    paragraphs = [
        FILLER * 3,
        "The capital of France is Paris. " + FILLER,
        FILLER * 2 + "Berlin is the capital of Germany.",
    ]
    context = "\n\n".join(paragraphs)
    qas = [
        {
            "id": "s1",
            "question": "What is the capital of France?",
            "paragraph_index": 1,
            "answers": [{"text": "Paris", "answer_start": context.index("Paris")}],
        },
        {
            "id": "s2",
            "question": "What is the capital of Germany?",
            "paragraph_index": 2,
            "answers": [{"text": "Berlin", "answer_start": context.index("Berlin")}],
        },
    ]
    path.write_text(
        json.dumps({"data": [{"title": "Capitals", "paragraphs": [{"context": context, "qas": qas}]}]})
    )
    return path


def _hotpot(path: Path) -> Path:
    """Two trainable questions (sha256 of the id odd), one span and one yes/no, and one held-out question."""
    ids = [f"h{i}" for i in range(40)]
    train = [i for i in ids if not is_heldout(i)][:2]
    held = next(i for i in ids if is_heldout(i))
    context = [
        ["Paris", ["The capital of France is Paris."]],
        ["Filler", [FILLER * 2]],
        ["Berlin", ["Berlin is the capital of Germany."]],
    ]
    qs = [
        {
            "_id": train[0],
            "question": "Which city is the capital of France?",
            "answer": "Paris",
            "type": "bridge",
            "supporting_facts": [["Paris", 0], ["Berlin", 0]],
            "context": context,
        },
        {
            "_id": train[1],
            "question": "Are Paris and Berlin both capitals?",
            "answer": "yes",
            "type": "comparison",
            "supporting_facts": [["Paris", 0], ["Berlin", 0]],
            "context": context,
        },
        {
            "_id": held,
            "question": "What is the capital of Germany?",
            "answer": "Berlin",
            "type": "bridge",
            "supporting_facts": [["Berlin", 0], ["Paris", 0]],
            "context": context,
        },
    ]
    path.write_text(json.dumps(qs))
    return path


def test_windows_hold_the_answer_and_chunks_point_elsewhere_at_cls(tiny_checkpoint, tmp_path: Path) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(tiny_checkpoint("longformer-qa")))
    examples = fl.squad_article_examples(_squad_articles(tmp_path / "s.json")) + fl.hotpot_train_examples(
        _hotpot(tmp_path / "h.json")
    )
    assert [e.kind for e in examples] == ["span", "span", "span", "yes"]  # the held-out question is not there
    plans = fl.plan_training_windows(tokenizer, examples, window_tokens=96, seed=0)
    windows = fl.build_windows(tokenizer, examples, window_tokens=96, seed=0)
    assert len(windows) == 4
    assert [w for [w] in fl.TrainingWindows(plans)] == windows  # built on demand = built up front
    for w in windows:
        assert len(w.input_ids) <= 96 and w.global_attention_mask[0] == 1
        ex = examples[w.example]
        if ex.kind == "span":
            text = tokenizer.decode(w.input_ids[w.starts[0] : w.ends[0] + 1]).strip()
            assert text == ex.text[slice(*ex.answers[0])]
        else:
            assert w.starts == [] and w.answer_type == ANSWER_TYPES.index("yes")
    chunks = list(fl.TrainingWindows(plans, chunk_tokens=40))
    assert len(chunks) == 4 and any(len(c) > 1 for c in chunks)
    for w, cs in zip(windows, chunks):
        assert cs[0].doc_range[0] == w.doc_range[0] and cs[-1].doc_range[1] == w.doc_range[1]
        if examples[w.example].kind == "span":
            assert any(c.starts != [0] for c in cs) and all(c.starts and c.ends for c in cs)


def test_paragraph_starts_can_be_global_in_the_long_window_only(tiny_checkpoint, tmp_path: Path) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(tiny_checkpoint("longformer-qa")))
    examples = fl.hotpot_train_examples(_hotpot(tmp_path / "h.json"))[:1]
    [plain] = fl.build_windows(tokenizer, examples, window_tokens=256)  # the whole document
    [marked] = fl.build_windows(tokenizer, examples, window_tokens=256, doc_global="paragraphs")
    assert plain.input_ids == marked.input_ids
    # after [CLS] and the question (global): [SEP], then the document
    doc = plain.global_attention_mask.index(0)
    assert not any(plain.global_attention_mask[doc:])  # question-only: no document token is global
    starts = [i for i in range(doc, len(marked.input_ids)) if marked.global_attention_mask[i]]
    # HotpotQA paragraphs are "title\nbody" joined by blank lines: each title and each body starts a paragraph
    words = [tokenizer.decode(marked.input_ids[i : i + 1]).strip().lower() for i in starts]
    expected = ["paris", "the", "filler", "longformer", "berlin", "berlin"]
    assert len(words) == 6 and all(w and word.startswith(w) for w, word in zip(words, expected))
    assert marked.global_attention_mask[:doc] == plain.global_attention_mask[:doc]
    plans = fl.plan_training_windows(tokenizer, examples, 128, doc_global="paragraphs")
    [chunk, *_] = fl.TrainingWindows(plans, chunk_tokens=40)[0]
    assert not any(chunk.global_attention_mask)  # the chunked twin has no global attention
    with pytest.raises(ValueError, match="paragraphs"):
        fl.plan_training_windows(tokenizer, examples, 128, doc_global="keywords")


@pytest.mark.slow
def test_loss_falls_when_overfitting_one_window(tiny_checkpoint, tmp_path: Path) -> None:
    from longformer_core.model.lora import LoraConfig

    source = tiny_checkpoint("longformer-qa")
    module, _, type_head = fl.reader_for_training(source, LoraConfig(rank=4, alpha=8.0), None)
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(source))
    examples = fl.squad_article_examples(_squad_articles(tmp_path / "s.json"))[:1]
    windows = fl.build_windows(tokenizer, examples, window_tokens=96)
    settings = fl.LongTrainSettings(epochs=20, learning_rate=3e-2, batch_size=1, precision="fp32", warmup=0.0)
    log = fl.train(module, type_head, [windows], settings, True, tokenizer.pad_token_id, torch.device("cpu"))
    assert log.steps == 20 and log.precision == "fp32"
    assert log.losses[-1] < 0.5 * log.losses[0]


def test_the_answer_type_classifier_learns_at_its_own_rate(tiny_checkpoint, tmp_path: Path) -> None:
    """The classifier starts from random weights: at `type_lr_scale` x the learning rate it moves that much
    further in the same steps (at 1x it stayed near its start in the first real runs)."""
    from transformers import AutoTokenizer

    from longformer_core.model.lora import LoraConfig

    source = tiny_checkpoint("longformer-qa")
    tokenizer = AutoTokenizer.from_pretrained(str(source))
    windows = fl.build_windows(
        tokenizer, fl.hotpot_train_examples(_hotpot(tmp_path / "h.json")), window_tokens=96
    )
    moved = {}
    for scale in (1.0, 25.0):
        module, _, type_head = fl.reader_for_training(source, LoraConfig(rank=4, alpha=8.0), None)
        start = type_head.classifier.weight.detach().clone()
        settings = fl.LongTrainSettings(
            epochs=3, learning_rate=1e-4, batch_size=1, precision="fp32", warmup=0.0, type_lr_scale=scale
        )
        fl.train(
            module,
            type_head,
            [[w] for w in windows],
            settings,
            True,
            tokenizer.pad_token_id,
            torch.device("cpu"),
        )
        moved[scale] = float((type_head.classifier.weight.detach() - start).abs().max())
    assert moved[25.0] > 10 * moved[1.0] > 0


@pytest.mark.slow
def test_finetune_long_few_steps_saves_heads_the_readers_load(tiny_checkpoint, tmp_path: Path) -> None:
    from longformer_core.model.registry import QA_HEAD_DIR, load_models, load_span_model

    model = tiny_checkpoint("longformer-qa")
    settings = fl.LongTrainSettings(epochs=2, max_steps=3, batch_size=2, precision="auto")
    report = fl.finetune_long(
        tmp_path / "out",
        model=str(model),
        squad_paths=[_squad_articles(tmp_path / "s.json")],
        hotpot_paths=[_hotpot(tmp_path / "h.json")],
        window_tokens=96,
        chunk_tokens=48,
        settings=settings,
        init_head=None,
        lora_rank=4,
        doc_global="paragraphs",  # the long reader trains with each paragraph's first token global
    )
    assert report["squad_questions"] == 2 and report["hotpot_questions"] == 2
    for which in ("long", "chunked"):
        assert report[which]["steps"] == 3 and report[which]["windows"] == 6
        assert all(math.isfinite(loss) and loss > 0 for loss in report[which]["losses"])
        assert report[which]["precision"] == ("bf16" if fl.native_bf16(torch.device("cpu")) else "fp32")
        card = json.loads((tmp_path / "out" / which / "adapter.json").read_text())
        assert card["lora"]["rank"] == 4 and card["split"]["hotpot"].startswith("train files whole")
        assert card["doc_global"] == "paragraphs"
        # the shipped head's held-out SQuAD articles stay out even when training starts from zero
        shipped = json.loads((QA_HEAD_DIR / "adapter.json").read_text())["val_articles"]
        assert card["split"]["squad_excluded_articles"] == sorted(shipped)
    # the saved head loads like the shipped one, with its answer-type classifier, and reads a document
    head = tmp_path / "out" / "long"
    module = load_span_model(model, head, torch.device("cpu"), fast_attention=True)
    pair = load_models(str(model))
    answer_type = load_answer_type_head(head, pair.longformer.encoder.config.hidden_size)
    assert answer_type is not None
    from longformer_core.reading.encoding import tokenize

    text = "The capital of France is Paris. " + FILLER
    tokens = tokenize(pair.longformer.tokenizer, text)
    result = read_one_pass(
        SpanModel(pair.longformer, module, answer_type), tokens, text, "Is Paris a capital?"
    )
    assert set(result.type_probabilities) == set(ANSWER_TYPES)
    assert sum(result.type_probabilities.values()) == pytest.approx(1.0, abs=1e-5)
    # given to a Longformer as its long reader, the head brings what it saw global in training
    from longformer_core.model.registry import _use_long_reader

    assert _use_long_reader(pair.longformer, model, head, fast_attention=True)
    assert pair.longformer.long_reader and pair.longformer.reader_globals == "paragraphs"


def _squad_paragraphs(path: Path) -> Path:
    """A paragraph-format SQuAD file: two articles of three paragraphs, one of them a held-out dev article."""
    data = []
    for title in ("Capitals", "Apollo_program"):
        data.append(
            {
                "title": title,
                "paragraphs": [
                    {
                        "context": ctx,
                        "qas": [
                            {
                                "id": f"{title}-{i}",
                                "question": f"Question {i}?",
                                "answers": [
                                    {"text": ctx.split()[-1], "answer_start": ctx.rindex(ctx.split()[-1])}
                                ],
                            }
                        ],
                    }
                    for i, ctx in enumerate(PARAGRAPHS)
                ],
            }
        )
    path.write_text(json.dumps({"data": data}))
    return path


def test_squad_paragraphs_are_joined_into_articles_and_held_out_articles_left_out(tmp_path: Path) -> None:
    examples = fl.squad_article_examples(
        _squad_paragraphs(tmp_path / "p.json"), exclude_titles=["Apollo_program"]
    )
    assert [e.id for e in examples] == ["Capitals-0", "Capitals-1", "Capitals-2"]
    text = "\n\n".join(PARAGRAPHS)
    for i, ex in enumerate(examples):
        assert ex.text == text and ex.text is examples[0].text  # one string per article, shared
        paragraph = text.split("\n\n")[i]
        assert text[slice(*ex.evidence)] == paragraph
        assert text[slice(*ex.answers[0])] == paragraph.split()[-1]
    # an article-level file (one context per article, `paragraph_index`) gives its own paragraphs as evidence
    articles = fl.squad_article_examples(_squad_articles(tmp_path / "a.json"))
    assert articles[0].text[slice(*articles[0].evidence)].startswith("The capital of France is Paris.")
    assert articles[1].text[slice(*articles[1].evidence)].endswith("Berlin is the capital of Germany.")


def test_hotpot_train_files_are_used_whole_and_dev_files_by_half(tmp_path: Path) -> None:
    dev = _hotpot(tmp_path / "hotpot-dev.json")
    train = tmp_path / "hotpot-train.json"
    train.write_text(dev.read_text())
    assert len(fl.hotpot_train_examples(dev)) == 2  # the held-out question is left out
    assert len(fl.hotpot_train_examples(train)) == 3  # a train file is never evaluated on
    assert all(not is_heldout(e.id) for e in fl.hotpot_train_examples(dev))


def _head_of_rank(model: Path, folder: Path, rank: int, as_checkpoint: bool) -> Path:
    """A saved head of `rank` for a tiny checkpoint: a head folder, or a training checkpoint's model.safetensors."""
    from safetensors.torch import save_file

    from longformer_core.model.lora import LoraConfig, adapter_state
    from longformer_core.model.qa_head import write_qa_head

    torch.manual_seed(1)
    module, adapters, _ = fl.reader_for_training(model, LoraConfig(rank=rank, alpha=2.0 * rank), None)
    for lora in adapters.values():
        torch.nn.init.normal_(lora.lora_b)
    if not as_checkpoint:
        state = adapter_state(adapters) | {
            "qa_outputs.weight": module.qa_outputs.weight,
            "qa_outputs.bias": module.qa_outputs.bias,
        }
        return write_qa_head(
            state, LoraConfig(rank=rank, alpha=2.0 * rank), folder, {"val_articles": ["Force"]}
        )
    folder.mkdir(parents=True)
    weights = {n: p.detach().clone() for n, p in module.named_parameters() if p.requires_grad}
    assert any(
        n.startswith("longformer.encoder.") for n in weights
    )  # the model's own names, as checkpoints hold
    save_file(weights, str(folder / "model.safetensors"))
    return folder


@pytest.mark.parametrize("as_checkpoint", [False, True])
def test_the_rank_follows_the_starting_head(tiny_checkpoint, tmp_path: Path, as_checkpoint: bool) -> None:
    from longformer_core.model.qa_head import read_qa_head

    model = tiny_checkpoint("longformer-qa")
    head = _head_of_rank(model, tmp_path / "head", 8, as_checkpoint)
    lora = fl.lora_for_head(head, None)
    assert lora.rank == 8 and lora.alpha == 16.0
    with pytest.raises(ValueError, match="differs from the rank 8"):
        fl.lora_for_head(head, 4)
    module, adapters, _ = fl.reader_for_training(model, lora, head)
    saved = read_qa_head(head).state
    for name, adapter in adapters.items():
        assert torch.allclose(adapter.lora_b, saved[f"{name}.lora_b"], atol=1e-3)  # fp16 in a head folder
    assert torch.allclose(module.qa_outputs.weight, saved["qa_outputs.weight"], atol=1e-3)


def _run_long(model: Path, tmp_path: Path, name: str, progress=None, **checkpointing) -> dict:
    settings = fl.LongTrainSettings(
        epochs=3,
        batch_size=2,
        learning_rate=1e-2,
        precision="fp32",
        checkpoint_dir=str(tmp_path / "ck" / name),
        **checkpointing,
    )
    return fl.finetune_long(
        tmp_path / name,
        model=str(model),
        squad_paths=[_squad_articles(tmp_path / "s.json")],
        hotpot_paths=[_hotpot(tmp_path / "h.json")],
        window_tokens=96,
        chunk_tokens=48,
        settings=settings,
        init_head=None,
        lora_rank=4,
        progress=progress,
    )


def test_a_long_run_stopped_by_sigterm_resumes_to_the_same_weights(tiny_checkpoint, tmp_path: Path) -> None:
    """SIGTERM at the Longformer reader's step 2 of 6 (4 windows, 2 a step: the second epoch next): the run saves a
    checkpoint (plain tensors and JSON) and stops; resumed, both readers end with the weights of a run that never
    stopped."""
    import signal

    from safetensors.torch import load_file

    from longformer_core.training.checkpoints import latest_checkpoint

    model = tiny_checkpoint("longformer-qa")
    whole = _run_long(model, tmp_path, "whole")
    assert whole["long"]["steps"] == whole["chunked"]["steps"] == 6 and "stopped" not in whole

    def terminate_at_step_2(line: str) -> None:
        if line.startswith("long: step 2/"):
            os.kill(os.getpid(), signal.SIGTERM)

    stopped = _run_long(model, tmp_path, "parts", progress=terminate_at_step_2)
    assert stopped["stopped"] and stopped["long"]["steps"] == 2 and "chunked" not in stopped
    assert not (tmp_path / "parts" / "long" / "adapter.safetensors").exists()
    checkpoint = latest_checkpoint(tmp_path / "ck" / "parts" / "long", "state.json")
    assert checkpoint.name == "checkpoint-2"
    state = json.loads((checkpoint / "state.json").read_text())
    assert (state["step"], state["position"], state["epoch"], state["index"]) == (2, 4, 1, 0) and not state[
        "done"
    ]
    assert {p.name for p in checkpoint.iterdir()} == {
        "model.safetensors",
        "optimizer.safetensors",
        "rng.safetensors",
        "state.json",
        "adapter.json",
    }
    resumed = _run_long(model, tmp_path, "parts", resume=str(tmp_path / "ck" / "parts"))
    assert resumed["long"]["resumed_from"].endswith("checkpoint-2") and resumed["long"]["steps"] == 6
    assert resumed["long"]["losses"] == pytest.approx(whole["long"]["losses"], abs=1e-4)
    for which in ("long", "chunked"):
        a = load_file(
            str(latest_checkpoint(tmp_path / "ck" / "whole" / which, "state.json") / "model.safetensors")
        )
        b = load_file(
            str(latest_checkpoint(tmp_path / "ck" / "parts" / which, "state.json") / "model.safetensors")
        )
        assert a.keys() == b.keys() and any("answer_type" in k for k in a)
        for name in a:
            assert torch.allclose(a[name], b[name], atol=1e-6), (which, name)


def test_finetune_long_command_stops_resumes_and_exports(tiny_checkpoint, tmp_path: Path, capsys) -> None:
    """`finetune-long --stop-after-steps` then `--resume`; `export-head` turns the last checkpoint into the head
    the run saved."""
    from safetensors.torch import load_file

    from longformer_core.__main__ import main

    model = tiny_checkpoint("longformer-qa")
    args = [
        "finetune-long", "--out", str(tmp_path / "out"), "--model", str(model),
        "--squad", str(_squad_articles(tmp_path / "s.json")), "--hotpot", str(_hotpot(tmp_path / "h.json")),
        "--window-tokens", "96", "--chunk-tokens", "48", "--init-head", "none", "--lora-rank", "4",
        "--batch-size", "2", "--epochs", "2", "--precision", "fp32", "--readers", "long", "--json",
    ]  # fmt: skip
    assert main([*args, "--stop-after-steps", "1"]) == 0
    first = json.loads(capsys.readouterr().out)
    assert first["stopped"] and first["long"]["steps"] == 1
    assert first["malloc_keeps_freed_memory"] is (
        platform.libc_ver()[0] == "glibc"
    )  # the command asked for it
    folder = Path(first["settings"]["checkpoint_dir"])
    assert folder.parent == Path(os.environ["LONGDOC_CHECKPOINTS"]) and folder.name == "out"
    assert main([*args, "--resume", str(folder)]) == 0
    done = json.loads(capsys.readouterr().out)
    assert done["long"]["steps"] == 4 and "stopped" not in done
    assert main(["export-head", str(folder / "long"), "--out", str(tmp_path / "exported")]) == 0
    assert json.loads(capsys.readouterr().out)["lora_rank"] == 4
    saved, exported = (load_file(str(tmp_path / d / "adapter.safetensors")) for d in ("out/long", "exported"))
    assert saved.keys() == exported.keys() and "answer_type.weight" in saved
    assert all(torch.equal(saved[k], exported[k]) for k in saved)


def test_a_head_card_keeps_no_path_of_this_machine(tmp_path, monkeypatch):
    """A head is shipped: its card names the cache as LONGDOC_CACHE, not this machine's folder."""
    import json

    import torch

    from longformer_core.model.lora import LoraConfig
    from longformer_core.model.qa_head import write_qa_head

    monkeypatch.setenv("LONGDOC_CACHE", str(tmp_path / "cache"))
    card = {"checkpoint": str(tmp_path / "cache" / "training" / "run" / "checkpoint-3"), "steps": [3]}
    out = write_qa_head({"qa_outputs.bias": torch.zeros(2)}, LoraConfig(rank=2), tmp_path / "head", card)
    written = json.loads((out / "adapter.json").read_text())
    assert written["checkpoint"] == "LONGDOC_CACHE/training/run/checkpoint-3" and written["steps"] == [3]
