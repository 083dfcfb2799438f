"""Long-context fine-tuning of the one-pass reader (LoRA on the real converted Longformer) and of its chunked twin.

The region reader (`finetune --model embedded`, e.g. the shipped `assets/qa_head`) was trained on the MiniLM twin
with 257-token windows: it never saw a long input, a multi-hop question or a yes/no answer. This trains the
reader `one_pass.read_one_pass` uses, at its length:

- **Longformer reader**: the converted Longformer itself (not the MiniLM twin; beyond 257 tokens the two
  differ), LoRA started from a region reader's head (any rank: the adapter takes the head's rank; a head folder
  or a `finetune` checkpoint), windows of `window_tokens` (default 2,048) tokens `[CLS] question [SEP] document
  [SEP]` with [CLS] and the question global, ONE softmax over all start (end) positions of the window; the loss
  is -log sum p(start) over every gold start (every occurrence of a HotpotQA answer; the paper's multi-span
  loss), the same for ends, plus the cross-entropy of the span/yes/no classifier (`AnswerTypeHead`).
- **Chunked reader** (same data and budget, so the comparison is fair): the MiniLM baseline with the same
  LoRA start, reading the same windows as 512-token chunks (the chunked view's windows), one step per
  window like the Longformer; a chunk without the answer points at [CLS] (the SQuAD convention); every
  chunk carries the question's answer type.

Data (`long_data.py`): SQuAD *train* articles (`squad-v1.1-train.paragraphs.json`, each article's paragraphs
joined with a blank line; `squad_questions` picks a seeded sample), each question in a window holding its
paragraph at a seeded random place within its article; and HotpotQA: the train file whole plus the halves of
the two dev files that `hotpot.is_heldout` leaves for training. The shipped head's 6 held-out SQuAD dev articles
(and the starting head's, if others) are never used.

Resumable (`long_loop.py`): a checkpoint per reader under `checkpoint_dir/<reader>/` at least every 15 minutes,
on SIGTERM, at `--stop-after-steps` and at the end; `--resume DIR` continues (the command line's default DIR is
`LONGDOC_CHECKPOINTS/<name of --out>`). Precision: bf16 autocast where the hardware has native bf16, else fp32;
weights and optimizer state stay fp32.

    python -m longformer_core finetune-long --out artifacts/long-head --squad-questions 20000 --init-head DIR
    python -m longformer_core finetune-long --out artifacts/long-head ... --resume ~/.cache/longdoc/training/long-head
    python -m longformer_core evaluate hotpotqa ../shared/data/hotpotqa/hotpotqa-dev-distractor.json \
        ../shared/data/hotpotqa/hotpotqa-dev-distractor.more.json --heldout \
        --long-head artifacts/long-head/long --chunk-head artifacts/long-head/chunked

The data and its windows are in `long_data.py`, the readers, their loss and the precision in `long_model.py`,
the loop and its checkpoints in `long_loop.py` (all re-exported here); this module holds the run of both readers,
and saving the heads; the command line is `cli/finetune.py`'s `finetune-long`.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import torch
from torch import nn

from longformer_core.machine import cpu_model_name, keeps_freed_memory
from longformer_core.model.lora import LoraConfig, adapter_state
from longformer_core.model.qa_head import AnswerTypeHead
from longformer_core.model.registry import EMBEDDED, QA_HEAD_DIR
from longformer_core.training.checkpoints import LOOP_MARKER, latest_checkpoint
from longformer_core.training.long_data import (  # re-exported: bench/ and tests import the data API from here
    CHUNK_TOKENS,
    WINDOW_TOKENS,
    LongExample,
    TrainingWindows,
    TrainWindow,
    WindowPlans,
    build_windows,
    hotpot_train_examples,
    plan_training_windows,
    squad_article_examples,
)
from longformer_core.training.long_loop import LongTrainSettings, TrainLog, train  # re-exported
from longformer_core.training.long_model import (  # re-exported: bench/ and tests import these from here
    init_from_head,
    lora_for_head,
    native_bf16,
    reader_for_training,
    reader_loss,
)

__all__ = [
    "CHUNK_TOKENS",
    "WINDOW_TOKENS",
    "LongExample",
    "LongTrainSettings",
    "TrainLog",
    "TrainWindow",
    "TrainingWindows",
    "WindowPlans",
    "build_windows",
    "cpu_model_name",
    "finetune_long",
    "hotpot_train_examples",
    "init_from_head",
    "lora_for_head",
    "native_bf16",
    "plan_training_windows",
    "reader_for_training",
    "reader_loss",
    "save_head",
    "squad_article_examples",
    "train",
]

READERS = ("long", "chunked")


def save_head(
    module: nn.Module, adapters: dict, type_head: AnswerTypeHead, lora: LoraConfig, out_dir: Path, card: dict
) -> Path:
    """Write adapter.safetensors (LoRA + span layer + answer-type classifier, fp16) and adapter.json (the card).

    The folder loads like the shipped head (`registry.load_span_model`) and gives `one_pass` its classifier.
    """
    from longformer_core.model.qa_head import write_qa_head

    state = adapter_state(adapters)
    state["qa_outputs.weight"] = module.qa_outputs.weight.detach().clone()
    state["qa_outputs.bias"] = module.qa_outputs.bias.detach().clone()
    state["answer_type.weight"] = type_head.classifier.weight.detach().clone()
    state["answer_type.bias"] = type_head.classifier.bias.detach().clone()
    return write_qa_head(state, lora, out_dir, card)


def finetune_long(
    out_dir: str | Path,
    *,
    model: str = EMBEDDED,
    baseline: str | None = None,
    squad_paths: Sequence[str | Path] = (),
    hotpot_paths: Sequence[str | Path] = (),
    squad_questions: int | None = None,
    window_tokens: int = WINDOW_TOKENS,
    chunk_tokens: int = CHUNK_TOKENS,
    readers: Sequence[str] = READERS,
    doc_global: str = "question",
    settings: LongTrainSettings | None = None,
    init_head: str | Path | None = "default",
    lora_rank: int | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict:
    """Train the Longformer one-pass reader and/or its chunked twin on the same windows; save both heads.

    Args:
        out_dir: the heads go to out_dir/long and out_dir/chunked, the report to out_dir/report.json.
        model: "embedded" (the converted MiniLM-Longformer) or a folder of a Longformer QA checkpoint.
        baseline: the chunked reader's model (default: MiniLM for "embedded", else `model` itself).
        squad_paths: SQuAD files (paragraph format or article level); held-out articles are never used.
        hotpot_paths: HotpotQA files: a train file whole, a dev file's trainable half (`hotpot.is_heldout`).
        squad_questions: a seeded sample of this many SQuAD questions (None: all).
        window_tokens: Longformer window, special tokens and question included (>= 2,048 for real runs).
        chunk_tokens: the chunked reader's chunk length.
        readers: which to train: "long", "chunked".
        doc_global: the Longformer reader's document tokens global besides [CLS] and the question (a strategy of
            `long_data.DOC_GLOBALS`: "question" none, "paragraphs" each paragraph's first token); the chunked
            reader has no global attention.
        settings: optimisation, precision, checkpoints (`checkpoint_dir`: the run's folder, one subfolder per
            reader; `resume`: a stopped run's folder).
        init_head: start from this head folder or `finetune` checkpoint ("default": the shipped one; None: zero).
        lora_rank: adapter rank; None: the starting head's (16 without one).
        progress: called with a line of text per step.
    Returns:
        the report (also in out_dir/report.json); {"stopped": True, ...} when a reader stopped before its end.
    Raises:
        ValueError: no training data, a rank that differs from the head's, or nothing to resume from.
    """
    settings = settings or LongTrainSettings()
    if settings.threads:
        torch.set_num_threads(settings.threads)
    out_dir = Path(out_dir)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    head_dir = QA_HEAD_DIR if init_head == "default" else (Path(init_head) if init_head else None)
    lora = lora_for_head(head_dir, lora_rank)
    heldout_titles = _heldout_titles(head_dir)
    squad, hot = _training_examples(squad_paths, hotpot_paths, squad_questions, heldout_titles, settings.seed)
    sources = _reader_sources(model, baseline)
    per_reader = _settings_per_reader(settings, readers)
    report: dict = {
        **_data_report(model, squad_paths, hotpot_paths, heldout_titles, len(squad), len(hot)),
        "window_tokens": window_tokens,
        "chunk_tokens": chunk_tokens,
        "doc_global": doc_global,
        "init_head": str(head_dir) if head_dir else None,
        **_run_environment(settings, device),
    }
    plans = None
    for which in readers:
        plans = plans or _plans(sources["long"], squad + hot, window_tokens, settings.seed, doc_global)
        stats, trained = _train_reader(
            which, sources[which], plans, chunk_tokens, lora, head_dir, per_reader[which], device, progress
        )
        report[which] = stats
        if stats["stopped"]:
            report["stopped"] = True
            break
        card = {k: v for k, v in report.items() if k not in READERS}
        card |= {"reader": which, **{k: v for k, v in stats.items() if k != "losses"}}
        save_head(*trained, lora, out_dir / which, card)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "report.json").write_text(json.dumps(report, indent=2))
    if report.get("stopped") and progress:
        progress(f"stopped before the end; continue with --resume {settings.checkpoint_dir}")
    return report


def _plans(
    source: Path, examples: list[LongExample], window_tokens: int, seed: int, doc_global: str
) -> WindowPlans:
    """Every question's window plan in the tokens of `source` (both readers read the same document ranges).

    Raises:
        ValueError: no question could be placed in a window.
    """
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(source))
    plans = plan_training_windows(tokenizer, examples, window_tokens, seed, doc_global)
    if not plans.plans:
        raise ValueError(
            f"None of the {len(examples)} questions fits a window of {window_tokens} tokens with its answer: "
            "raise --window-tokens."
        )
    return plans


def _train_reader(
    which: str,
    source: Path,
    plans: WindowPlans,
    chunk_tokens: int,
    lora: LoraConfig,
    head_dir: Path | None,
    settings: LongTrainSettings,
    device: torch.device,
    progress: Callable[[str], None] | None,
) -> tuple[dict, tuple[nn.Module, dict, AnswerTypeHead]]:
    """Train one reader ("long": whole windows; "chunked": their 512-token chunks) from the starting head.

    Returns:
        (its stats for the report, (model, adapters, answer-type head) as trained).
    Raises:
        ValueError: the reader's tokenizer is not the one the windows were planned in.
    """
    from transformers import AutoTokenizer

    torch.manual_seed(
        settings.seed
    )  # the new adapter's and classifier's starting weights: a rerun starts equal
    module, adapters, type_head = reader_for_training(source, lora, head_dir)
    tokenizer = AutoTokenizer.from_pretrained(str(source))
    if tokenizer.get_vocab() != plans.tokenizer.get_vocab():
        raise ValueError(
            f"The {which} reader's tokenizer ({source}) differs from the Longformer's: both readers read the same "
            "token ranges, so give a --baseline with the Longformer's vocabulary."
        )
    longformer = module.config.model_type == "longformer" and which == "long"
    batches = TrainingWindows(plans, None if which == "long" else chunk_tokens, longformer=longformer)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    say = (lambda msg: progress(f"{which}: {msg}")) if progress else None
    card = {"lora": lora.to_dict(), "reader": which, "source": str(source)}
    log = train(module, type_head, batches, settings, longformer, pad_id, device, say, card)
    stats = {**_log_stats(log), "train_windows": len(batches), "source": str(source)}
    return stats, (module, adapters, type_head)


def _settings_per_reader(settings: LongTrainSettings, readers: Sequence[str]) -> dict[str, LongTrainSettings]:
    """Each reader's settings (`_reader_settings`).

    Raises:
        ValueError: `settings.resume` holds no checkpoint of any of `readers` (the message names the folder).
    """
    per_reader = {which: _reader_settings(settings, which) for which in readers}
    if settings.resume and not any(s.resume for s in per_reader.values()):
        latest_checkpoint(Path(settings.resume) / readers[0], LOOP_MARKER)  # raises, naming the folder
    return per_reader


def _reader_settings(settings: LongTrainSettings, which: str) -> LongTrainSettings:
    """One reader's settings: its checkpoint subfolder, and the checkpoint to resume from when the stopped run
    wrote one for it (`settings.resume`: the run's folder, the reader's, or one of its checkpoints)."""
    folder = str(Path(settings.checkpoint_dir) / which) if settings.checkpoint_dir else None
    resume = None
    if settings.resume:
        for candidate in (Path(settings.resume) / which, Path(settings.resume)):
            try:
                found = latest_checkpoint(candidate, LOOP_MARKER)
            except ValueError:
                continue
            if found.parent.name == which:
                resume = str(found)
                break
    return replace(settings, checkpoint_dir=folder, resume=resume)


def _reader_sources(model: str, baseline: str | None) -> dict[str, Path]:
    """{"long": the Longformer's folder, "chunked": the baseline's} (MiniLM for "embedded", else `model`)."""
    from longformer_core.model.convert import embedded_longformer_dir, embedded_source_dir

    long_source = embedded_longformer_dir() if model == EMBEDDED else Path(model)
    chunk_source = (
        (embedded_source_dir() if model == EMBEDDED else Path(model)) if baseline is None else Path(baseline)
    )
    return {"long": long_source, "chunked": chunk_source}


def _heldout_titles(head_dir: Path | None) -> list[str]:
    """The SQuAD articles never to train on: those the shipped head kept aside for validation (its 6 dev articles,
    the set every region reader is scored on) and those the starting head kept aside, if it is another."""
    from longformer_core.model.qa_head import read_qa_head

    titles: list[str] = []
    for folder in dict.fromkeys(p for p in (QA_HEAD_DIR, head_dir) if p is not None):
        try:
            titles += read_qa_head(folder).card.get("val_articles") or []
        except (ValueError, OSError):  # no card (a checkpoint of an old run): nothing more to exclude
            continue
    return sorted(set(titles))


def _training_examples(
    squad_paths: Sequence[str | Path],
    hotpot_paths: Sequence[str | Path],
    squad_questions: int | None,
    heldout_titles: list[str],
    seed: int,
) -> tuple[list[LongExample], list[LongExample]]:
    """(SQuAD questions, HotpotQA questions) to train on; a seeded sample of `squad_questions` SQuAD ones.

    Raises:
        ValueError: no file gave a question.
    """
    squad = [ex for p in squad_paths for ex in squad_article_examples(p, heldout_titles)]
    if squad_questions is not None and squad_questions < len(squad):
        keep = sorted(np.random.default_rng(seed).permutation(len(squad))[:squad_questions])
        squad = [squad[i] for i in keep]
    hot = [ex for p in hotpot_paths for ex in hotpot_train_examples(p)]
    if not squad and not hot:
        raise ValueError("No training questions: give --squad and/or --hotpot files.")
    return squad, hot


def _data_report(
    model: str,
    squad_paths: Sequence[str | Path],
    hotpot_paths: Sequence[str | Path],
    heldout_titles: list[str],
    n_squad: int,
    n_hot: int,
) -> dict:
    """What the report records about the model and the data: files, the split kept aside, question counts."""
    return {
        "task": "qa-long",
        "model": model,
        "squad": [str(p) for p in squad_paths],
        "hotpot": [str(p) for p in hotpot_paths],
        "split": {
            "squad_excluded_articles": heldout_titles,
            "hotpot": "train files whole; dev files only the questions with "
            "int(sha256(_id), 16) % 2 == 1 (hotpot.is_heldout is False)",
        },
        "squad_questions": n_squad,
        "hotpot_questions": n_hot,
    }


def _run_environment(settings: LongTrainSettings, device: torch.device) -> dict:
    """What the report records about the run: settings, torch, device, CPU, threads, bf16, malloc, the command."""
    return {
        "settings": asdict(settings),
        "torch": torch.__version__,
        "device": str(device),
        "cpu": cpu_model_name(),
        "threads": torch.get_num_threads(),
        "bf16_native": native_bf16(device),
        "malloc_keeps_freed_memory": keeps_freed_memory(),
        "command": " ".join(sys.argv),
    }


def _log_stats(log: TrainLog) -> dict:
    """A reader's training in the report: steps, windows, tokens, throughput, precision, the losses, and whether
    it stopped before its end (with the checkpoint to resume from)."""
    return {
        "steps": log.steps,
        "windows": log.windows,
        "tokens": log.tokens,
        "train_seconds": round(log.seconds, 1),
        "windows_per_second": round(log.windows / log.seconds, 3) if log.seconds else None,
        "tokens_per_second": round(log.tokens / log.seconds, 1) if log.seconds else None,
        "precision": log.precision,
        "first_loss": log.losses[0] if log.losses else None,
        "last_loss": log.losses[-1] if log.losses else None,
        "losses": log.losses,
        "stopped": log.stopped,
        "checkpoint": log.checkpoint,
        "resumed_from": log.resumed_from,
    }
