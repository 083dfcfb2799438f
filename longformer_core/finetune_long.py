"""Long-context fine-tuning of the one-pass reader (LoRA on the real converted Longformer) and of its chunked twin.

The shipped QA head (`assets/qa_head`) was trained on the MiniLM twin with 257-token windows: it never saw
a long input, a multi-hop question or a yes/no answer. This trains the reader `long_reader.read_one_pass`
uses, at its length:

- **Longformer reader**: the converted Longformer itself (not the MiniLM twin; beyond 257 tokens the two
  differ), LoRA as the shipped head (`lora.py`, started from the shipped adapter and span layer), windows
  of `window_tokens` (default 2,048) tokens `[CLS] question [SEP] document [SEP]` with [CLS] and the
  question global, ONE softmax over all start (end) positions of the window; the loss is
  -log sum p(start) over every gold start (every occurrence of a HotpotQA answer; the paper's multi-span
  loss), the same for ends, plus the cross-entropy of the span/yes/no classifier (`AnswerTypeHead`).
- **Chunked reader** (same data and budget, so the comparison is fair): the MiniLM baseline with the same
  LoRA start, reading the same windows as 512-token chunks (the chunked view's windows), one step per
  window like the Longformer; a chunk without the answer points at [CLS] (the SQuAD convention); every
  chunk carries the question's answer type.

Data: whole SQuAD articles (`squad-v1.1-dev.articles.json` without the 6 articles the shipped head kept
aside, plus `squad-v1.1-train.first12.articles.json`), each question in a window that holds its gold
paragraph at a seeded random place; and the HotpotQA questions `hotpot.is_heldout` leaves for training
(176 of the shared 381), each window holding both gold paragraphs when they fit.

Precision: bf16 autocast where the hardware has native bf16 (CUDA with bf16, or a CPU whose flags show
avx512_bf16 / amx_bf16; detected at run time), else fp32. Weights and optimizer state stay fp32.

    python -m longformer_core.finetune_long --out artifacts/long-head --window-tokens 2048 --squad-questions 1500 \
        --epochs 1 --seed 0
    python -m longformer_core evaluate hotpotqa ../shared/data/hotpotqa/hotpotqa-dev-distractor.json --heldout \
        --long-head artifacts/long-head/long --chunk-head artifacts/long-head/chunked
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from longformer_core.encoding import (
    CHUNK_OVERLAP,
    DocumentTokens,
    build_input,
    plan_windows,
    special_template,
    tokenize,
)
from longformer_core.long_reader import ANSWER_TYPES, AnswerTypeHead, pool_mask_of, qa_forward
from longformer_core.lora import LoraConfig, adapter_state, add_lora
from longformer_core.models import EMBEDDED, QA_HEAD_DIR

WINDOW_TOKENS = 2048
CHUNK_TOKENS = 512


# --------------------------------------------------------------------------------------------------
# Data


@dataclass
class LongExample:
    """One question over a long text, with every gold answer span and the text it must see."""

    id: str
    source: str  # "squad" | "hotpot"
    question: str
    text: str
    kind: str  # "span" | "yes" | "no"
    answers: list[tuple[int, int]]  # char spans of the answer (every occurrence for HotpotQA)
    evidence: tuple[int, int]  # char span the window should hold (gold paragraph(s)), when it fits


def squad_article_examples(path: str | Path, exclude_titles: Sequence[str] = ()) -> list[LongExample]:
    """Questions over whole SQuAD articles (article-level file: paragraphs joined by blank lines)."""
    from longformer_core.evaluate import _paragraph_range, load_squad_articles

    out = []
    for article in load_squad_articles(path):
        if article["title"] in set(exclude_titles):
            continue
        for qa in article["qas"]:
            spans = sorted(
                {(a["answer_start"], a["answer_start"] + len(a["text"])) for a in qa.get("answers", [])}
            )
            if not spans:
                continue
            out.append(
                LongExample(
                    qa["id"],
                    "squad",
                    qa["question"],
                    article["context"],
                    "span",
                    spans,
                    _paragraph_range(article, qa),
                )
            )
    return out


def hotpot_train_examples(path: str | Path) -> list[LongExample]:
    """The HotpotQA questions that `hotpot.is_heldout` leaves for training, answers found in the text."""
    import re

    from longformer_core.hotpot import is_heldout, load_hotpot

    out = []
    for q in load_hotpot(path):
        if is_heldout(q.id):
            continue
        golds = [q.paragraphs[i] for i in q.gold] or [(0, len(q.text))]
        evidence = (min(a for a, _ in golds), max(b for _, b in golds))
        answer = q.answer.strip()
        if answer.lower() in ("yes", "no"):
            out.append(LongExample(q.id, "hotpot", q.question, q.text, answer.lower(), [], evidence))
            continue
        spans = [m.span() for m in re.finditer(re.escape(answer), q.text)] or [
            m.span() for m in re.finditer(re.escape(answer), q.text, flags=re.IGNORECASE)
        ]
        if spans:
            out.append(LongExample(q.id, "hotpot", q.question, q.text, "span", spans, evidence))
    return out


@dataclass
class TrainWindow:
    """One training input and its labels (positions in the input)."""

    input_ids: list[int]
    token_type_ids: list[int]
    global_attention_mask: list[int]
    pool_mask: list[int]  # [CLS] + question: what the answer-type head pools
    starts: list[int]  # gold start positions (empty for yes/no)
    ends: list[int]
    answer_type: int  # index in ANSWER_TYPES
    doc_range: tuple[int, int]  # document tokens in the window
    example: int  # index of the example


def _window_range(
    n: int, capacity: int, must: tuple[int, int], fallback: tuple[int, int], rng: np.random.Generator
) -> tuple[int, int]:
    """A document-token range of `capacity` tokens holding `must` (else `fallback`) at a random place."""
    if n <= capacity:
        return 0, n
    a, b = must if must[1] - must[0] <= capacity else fallback
    lo, hi = max(0, b - capacity), min(a, n - capacity)
    s = int(rng.integers(lo, hi + 1)) if hi >= lo else max(0, min(a, n - capacity))
    return s, s + capacity


def build_windows(
    tokenizer, examples: Sequence[LongExample], window_tokens: int, seed: int = 0, longformer: bool = True
) -> list[TrainWindow]:
    """One window of at most `window_tokens` per example, holding its evidence (or first answer).

    Args:
        tokenizer: the reader's tokenizer.
        examples: the questions.
        window_tokens: input length, special tokens and question included.
        seed: where in the window the evidence lands.
        longformer: give [CLS] and the question global attention.
    """
    rng = np.random.default_rng(seed)
    t = special_template(tokenizer)
    n_special = len(t.pair_prefix) + len(t.pair_middle) + len(t.pair_suffix)
    token_cache: dict[str, DocumentTokens] = {}
    out = []
    for i, ex in enumerate(examples):
        if ex.text not in token_cache:
            token_cache = {ex.text: tokenize(tokenizer, ex.text)}  # consecutive questions share an article
        tokens = token_cache[ex.text]
        q_ids = tokenizer(ex.question, add_special_tokens=False)["input_ids"][: window_tokens // 4]
        capacity = window_tokens - n_special - len(q_ids)
        gold = [tokens.tokens_in(a, b) for a, b in ex.answers]
        gold = [(a, b - 1) for a, b in gold if b > a]
        if ex.kind == "span" and not gold:
            continue
        evidence = tokens.tokens_in(*ex.evidence)
        first = (gold[0][0], gold[0][1] + 1) if gold else evidence
        s, e = _window_range(len(tokens), capacity, evidence, first, rng)
        win = build_input(
            tokenizer, tokens, (s, e), question_ids=q_ids, global_first=longformer, global_question=longformer
        )
        inside = [(a, b) for a, b in gold if s <= a and b < e]
        if ex.kind == "span" and not inside:
            continue
        out.append(
            TrainWindow(
                input_ids=win.input_ids[0].tolist(),
                token_type_ids=win.token_type_ids[0].tolist(),
                global_attention_mask=win.global_attention_mask[0].tolist(),
                pool_mask=pool_mask_of(win)[0].tolist(),
                starts=[win.doc_start + a - s for a, _ in inside],
                ends=[win.doc_start + b - s for _, b in inside],
                answer_type=ANSWER_TYPES.index(ex.kind),
                doc_range=(s, e),
                example=i,
            )
        )
    return out


def chunk_windows(
    tokenizer,
    examples: Sequence[LongExample],
    long_windows: Sequence[TrainWindow],
    chunk_tokens: int = CHUNK_TOKENS,
) -> list[list[TrainWindow]]:
    """The same document ranges as `long_windows`, cut into the chunked view's windows (one list per window).

    A chunk without the answer labels [CLS] (position 0) as start and end; every chunk carries the answer type.
    """
    t = special_template(tokenizer)
    n_special = len(t.pair_prefix) + len(t.pair_middle) + len(t.pair_suffix)
    token_cache: dict[str, DocumentTokens] = {}
    out = []
    for w in long_windows:
        ex = examples[w.example]
        if ex.text not in token_cache:
            token_cache = {ex.text: tokenize(tokenizer, ex.text)}
        tokens = token_cache[ex.text]
        q_ids = tokenizer(ex.question, add_special_tokens=False)["input_ids"][: chunk_tokens // 4]
        gold = [tokens.tokens_in(a, b) for a, b in ex.answers]
        gold = [(a, b - 1) for a, b in gold if b > a]
        s0, e0 = w.doc_range
        chunks = []
        for cs, ce in plan_windows(e0 - s0, chunk_tokens - n_special - len(q_ids), CHUNK_OVERLAP):
            s, e = s0 + cs, s0 + ce
            win = build_input(tokenizer, tokens, (s, e), question_ids=q_ids)
            inside = [(a, b) for a, b in gold if s <= a and b < e]
            starts = [win.doc_start + a - s for a, _ in inside] or ([0] if ex.kind == "span" else [])
            ends = [win.doc_start + b - s for _, b in inside] or ([0] if ex.kind == "span" else [])
            chunks.append(
                TrainWindow(
                    input_ids=win.input_ids[0].tolist(),
                    token_type_ids=win.token_type_ids[0].tolist(),
                    global_attention_mask=[0] * win.input_ids.shape[1],
                    pool_mask=pool_mask_of(win)[0].tolist(),
                    starts=starts,
                    ends=ends,
                    answer_type=w.answer_type,
                    doc_range=(s, e),
                    example=w.example,
                )
            )
        out.append(chunks)
    return out


# --------------------------------------------------------------------------------------------------
# Model, loss, precision


def native_bf16(device: torch.device) -> bool:
    """Whether the hardware computes bf16 natively: CUDA with bf16, or a CPU with avx512_bf16 / amx_bf16."""
    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    try:
        flags = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:  # not Linux: do not guess
        return False
    return any(f" {flag}" in flags for flag in ("avx512_bf16", "amx_bf16"))


def cpu_model_name() -> str:
    """The CPU's model name (as lscpu shows it), for the training card."""
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def init_from_head(model: nn.Module, adapters: dict, head_dir: Path) -> None:
    """Start the LoRA adapter and span layer from a saved QA head (same rank), e.g. the shipped one."""
    from safetensors.torch import load_file

    state = load_file(str(head_dir / "adapter.safetensors"))
    with torch.no_grad():
        for name, lora in adapters.items():
            a, b = state.get(f"{name}.lora_a"), state.get(f"{name}.lora_b")
            if a is None or tuple(a.shape) != tuple(lora.lora_a.shape):
                raise ValueError(
                    f"The head in {head_dir} does not fit this model's adapter ({name}): "
                    "train from scratch with --init-head none."
                )
            lora.lora_a.copy_(a.float())
            lora.lora_b.copy_(b.float())
        model.qa_outputs.weight.copy_(state["qa_outputs.weight"].float())
        model.qa_outputs.bias.copy_(state["qa_outputs.bias"].float())


def reader_for_training(
    source: str | Path, lora: LoraConfig, init_head: Path | None
) -> tuple[nn.Module, dict, AnswerTypeHead]:
    """(QA model with LoRA, its adapters, a fresh answer-type head); HF's own attention (it trains)."""
    from transformers import AutoModelForQuestionAnswering

    from longformer_core.convert import quiet_transformers

    quiet_transformers()
    model = AutoModelForQuestionAnswering.from_pretrained(str(source))
    adapters = add_lora(model, lora)
    if init_head is not None:
        init_from_head(model, adapters, init_head)
    return model, adapters, AnswerTypeHead(model.config.hidden_size)


def reader_loss(
    module: nn.Module,
    type_head: nn.Module,
    rows: Sequence[TrainWindow],
    longformer: bool,
    pad_id: int,
    device: torch.device,
) -> torch.Tensor:
    """Mean loss of a batch of windows: multi-gold span loss (one softmax over all positions) + answer type."""
    width = max(len(r.input_ids) for r in rows)

    def pad(key: str, fill: int) -> torch.Tensor:
        return torch.tensor(
            [getattr(r, key) + [fill] * (width - len(r.input_ids)) for r in rows], device=device
        )

    attention = torch.tensor(
        [[1] * len(r.input_ids) + [0] * (width - len(r.input_ids)) for r in rows], device=device
    )
    kwargs = {"input_ids": pad("input_ids", pad_id), "attention_mask": attention}
    if getattr(module.config, "type_vocab_size", 1) > 1:
        kwargs["token_type_ids"] = pad("token_type_ids", 0)
    if longformer:
        kwargs["global_attention_mask"] = pad("global_attention_mask", 0)
    start, end, type_logits = qa_forward(module, kwargs, pad("pool_mask", 0), type_head)
    valid = kwargs["attention_mask"].bool()
    start = start.float().masked_fill(~valid, -1e4).log_softmax(-1)  # (batch, L): one softmax per window
    end = end.float().masked_fill(~valid, -1e4).log_softmax(-1)
    losses = []
    for i, r in enumerate(rows):
        loss = nn.functional.cross_entropy(
            type_logits[i : i + 1].float(), torch.tensor([r.answer_type], device=device)
        )
        if r.starts:
            loss = loss + (-torch.logsumexp(start[i, r.starts], 0) - torch.logsumexp(end[i, r.ends], 0)) / 2
        losses.append(loss)
    return torch.stack(losses).mean()


# --------------------------------------------------------------------------------------------------
# Training


@dataclass
class LongTrainSettings:
    epochs: float = 1.0
    learning_rate: float = 2e-4
    batch_size: int = 8  # windows per optimizer step (gradient accumulation, one window per forward)
    seed: int = 0
    warmup: float = 0.1  # fraction of steps
    max_steps: int = -1  # stop early (throughput checks, tests)
    precision: str = "auto"  # "auto" (bf16 where native) | "bf16" | "fp32"
    threads: int | None = None  # torch CPU threads


@dataclass
class TrainLog:
    losses: list[float] = field(default_factory=list)  # per optimizer step
    seconds: float = 0.0
    windows: int = 0
    tokens: int = 0
    steps: int = 0
    precision: str = "fp32"


def train(
    module: nn.Module,
    type_head: nn.Module,
    batches: Sequence[Sequence[TrainWindow]],
    settings: LongTrainSettings,
    longformer: bool,
    pad_id: int,
    device: torch.device,
    progress: Callable[[str], None] | None = None,
) -> TrainLog:
    """AdamW with linear warm-up and decay over `batches` (each a list of windows run in one forward).

    One optimizer step per `settings.batch_size` items of `batches`; an item is one Longformer window, or
    the chunks of one window for the chunked reader (so both get the same number of steps on the same text).
    """
    torch.manual_seed(settings.seed)
    use_bf16 = settings.precision == "bf16" or (settings.precision == "auto" and native_bf16(device))
    params = [p for p in list(module.parameters()) + list(type_head.parameters()) if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=settings.learning_rate, weight_decay=0.0)
    order = np.random.default_rng(settings.seed).permutation(len(batches))
    n_items = math.ceil(len(batches) * settings.epochs)
    steps = math.ceil(n_items / settings.batch_size)
    if settings.max_steps > 0:
        steps = min(steps, settings.max_steps)
    warm = max(1, int(settings.warmup * steps))
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min((s + 1) / warm, max(0.0, (steps - s) / max(1, steps - warm)))
    )
    module.train().to(device)
    type_head.train().to(device)
    log = TrainLog(precision="bf16" if use_bf16 else "fp32")
    t0 = time.perf_counter()
    item = 0
    for step in range(steps):
        step_loss = 0.0
        for _ in range(settings.batch_size):
            rows = batches[int(order[item % len(batches)])]
            item += 1
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_bf16):
                loss = reader_loss(module, type_head, rows, longformer, pad_id, device)
            (loss / settings.batch_size).backward()
            step_loss += float(loss.detach()) / settings.batch_size
            log.windows += 1
            log.tokens += sum(len(r.input_ids) for r in rows)
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad(set_to_none=True)
        log.losses.append(round(step_loss, 5))
        log.steps = step + 1
        if progress:
            progress(f"step {step + 1}/{steps}  loss {step_loss:.4f}  {time.perf_counter() - t0:.0f} s")
    log.seconds = time.perf_counter() - t0
    module.eval()
    type_head.eval()
    return log


def save_head(
    module: nn.Module, adapters: dict, type_head: AnswerTypeHead, lora: LoraConfig, out_dir: Path, card: dict
) -> Path:
    """Write adapter.safetensors (LoRA + span layer + answer-type classifier, fp16) and adapter.json (the card).

    The folder loads like the shipped head (`models.load_qa_reader`) and gives `long_reader` its classifier.
    """
    from safetensors.torch import save_file

    out_dir.mkdir(parents=True, exist_ok=True)
    state = adapter_state(adapters)
    state["qa_outputs.weight"] = module.qa_outputs.weight.detach().clone()
    state["qa_outputs.bias"] = module.qa_outputs.bias.detach().clone()
    state["answer_type.weight"] = type_head.classifier.weight.detach().clone()
    state["answer_type.bias"] = type_head.classifier.bias.detach().clone()
    save_file(
        {k: v.float().half().contiguous() for k, v in state.items()}, str(out_dir / "adapter.safetensors")
    )
    (out_dir / "adapter.json").write_text(json.dumps({"lora": lora.to_dict(), **card}, indent=2))
    return out_dir


def finetune_long(
    out_dir: str | Path,
    *,
    model: str = EMBEDDED,
    baseline: str | None = None,
    squad_paths: Sequence[str | Path] = (),
    hotpot_path: str | Path | None = None,
    squad_questions: int | None = None,
    window_tokens: int = WINDOW_TOKENS,
    chunk_tokens: int = CHUNK_TOKENS,
    readers: Sequence[str] = ("long", "chunked"),
    settings: LongTrainSettings | None = None,
    init_head: str | Path | None = "default",
    lora_rank: int = 16,
    progress: Callable[[str], None] | None = None,
) -> dict:
    """Train the Longformer one-pass reader and/or its chunked twin on the same windows; save both heads.

    Args:
        out_dir: the heads go to out_dir/long and out_dir/chunked, the report to out_dir/report.json.
        model: "embedded" (the converted MiniLM-Longformer) or a folder of a Longformer QA checkpoint.
        baseline: the chunked reader's model (default: MiniLM for "embedded", else `model` itself).
        squad_paths: article-level SQuAD files; the shipped head's held-out articles are never used.
        hotpot_path: HotpotQA file; only the questions `hotpot.is_heldout` leaves for training are used.
        squad_questions: a seeded sample of this many SQuAD questions (None: all).
        window_tokens: Longformer window, special tokens and question included (>= 2,048 for real runs).
        chunk_tokens: the chunked reader's chunk length.
        readers: which to train: "long", "chunked".
        settings: optimisation and precision.
        init_head: start the adapters from this head folder ("default": the shipped one; None: from zero).
        lora_rank: adapter rank (must equal the init head's).
        progress: called with a line of text per step.
    Returns:
        the report (also in out_dir/report.json).
    """
    from longformer_core.convert import embedded_longformer_dir, embedded_source_dir

    settings = settings or LongTrainSettings()
    if settings.threads:
        torch.set_num_threads(settings.threads)
    out_dir = Path(out_dir)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    head_dir = QA_HEAD_DIR if init_head == "default" else (Path(init_head) if init_head else None)
    heldout_titles: list[str] = []
    if head_dir is not None and (head_dir / "adapter.json").is_file():
        heldout_titles = (
            json.loads((head_dir / "adapter.json").read_text(encoding="utf-8")).get("val_articles") or []
        )
    squad = [ex for p in squad_paths for ex in squad_article_examples(p, heldout_titles)]
    if squad_questions is not None and squad_questions < len(squad):
        keep = sorted(np.random.default_rng(settings.seed).permutation(len(squad))[:squad_questions])
        squad = [squad[i] for i in keep]
    hot = hotpot_train_examples(hotpot_path) if hotpot_path else []
    examples = squad + hot
    if not examples:
        raise ValueError("No training questions: give --squad and/or --hotpot files.")
    long_source = embedded_longformer_dir() if model == EMBEDDED else Path(model)
    chunk_source = (
        (embedded_source_dir() if model == EMBEDDED else Path(model)) if baseline is None else Path(baseline)
    )
    lora = LoraConfig(rank=lora_rank, alpha=2.0 * lora_rank)
    report: dict = {
        "task": "qa-long",
        "model": model,
        "squad": [str(p) for p in squad_paths],
        "hotpot": str(hotpot_path or ""),
        "split": {
            "squad_excluded_articles": heldout_titles,
            "hotpot": "trained only on questions with "
            "int(sha256(_id), 16) % 2 == 1 (hotpot.is_heldout is False)",
        },
        "squad_questions": len(squad),
        "hotpot_questions": len(hot),
        "window_tokens": window_tokens,
        "chunk_tokens": chunk_tokens,
        "init_head": str(head_dir) if head_dir else None,
        "settings": asdict(settings),
        "torch": torch.__version__,
        "device": str(device),
        "cpu": cpu_model_name(),
        "threads": torch.get_num_threads(),
        "bf16_native": native_bf16(device),
        "command": " ".join(sys.argv),
    }
    long_windows = None
    for which in readers:
        source = long_source if which == "long" else chunk_source
        module, adapters, type_head = reader_for_training(source, lora, head_dir)
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(str(source))
        longformer = module.config.model_type == "longformer"
        if long_windows is None:  # both readers read the same document ranges
            long_windows = build_windows(tokenizer, examples, window_tokens, settings.seed)
        if which == "long":
            batches = [[w] for w in long_windows]
        else:
            batches = chunk_windows(tokenizer, examples, long_windows, chunk_tokens)
        pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        say = (lambda msg, w=which: progress(f"{w}: {msg}")) if progress else None
        log = train(module, type_head, batches, settings, longformer and which == "long", pad_id, device, say)
        stats = {
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
            "train_windows": len(long_windows),
            "source": str(source),
        }
        report[which] = stats
        save_head(
            module,
            adapters,
            type_head,
            lora,
            out_dir / which,
            {**{k: v for k, v in report.items() if k not in ("long", "chunked")}, "reader": which, **stats},
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "report.json").write_text(json.dumps(report, indent=2))
    return report


def build_parser() -> argparse.ArgumentParser:
    data = "../shared/data"
    p = argparse.ArgumentParser(
        prog="python -m longformer_core.finetune_long",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--out", required=True, help="folder for long/, chunked/ and report.json")
    p.add_argument("--model", default=EMBEDDED, help="'embedded' or a folder of a Longformer QA checkpoint")
    p.add_argument("--baseline", default=None, help="the chunked reader's model folder (default: see --help)")
    p.add_argument(
        "--squad",
        nargs="*",
        default=[
            f"{data}/squad/squad-v1.1-dev.articles.json",
            f"{data}/squad/squad-v1.1-train.first12.articles.json",
        ],
    )
    p.add_argument("--hotpot", default=f"{data}/hotpotqa/hotpotqa-dev-distractor.json")
    p.add_argument("--squad-questions", type=int, default=None, help="seeded sample of N SQuAD questions")
    p.add_argument("--window-tokens", type=int, default=WINDOW_TOKENS)
    p.add_argument("--chunk-tokens", type=int, default=CHUNK_TOKENS)
    p.add_argument("--readers", nargs="+", default=["long", "chunked"], choices=["long", "chunked"])
    p.add_argument(
        "--init-head", default="default", help="head to start from ('default': assets/qa_head; 'none')"
    )
    p.add_argument("--epochs", type=float, default=1.0)
    p.add_argument("--lr", type=float, default=2e-4)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--max-steps", type=int, default=-1)
    p.add_argument("--precision", default="auto", choices=["auto", "bf16", "fp32"])
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--seed", type=int, default=0)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    settings = LongTrainSettings(
        epochs=args.epochs,
        learning_rate=args.lr,
        batch_size=args.batch_size,
        seed=args.seed,
        max_steps=args.max_steps,
        precision=args.precision,
        threads=args.threads,
    )
    try:
        report = finetune_long(
            args.out,
            model=args.model,
            baseline=args.baseline,
            squad_paths=args.squad,
            hotpot_path=args.hotpot or None,
            squad_questions=args.squad_questions,
            window_tokens=args.window_tokens,
            chunk_tokens=args.chunk_tokens,
            readers=args.readers,
            settings=settings,
            init_head=None if args.init_head == "none" else args.init_head,
            progress=lambda msg: print(msg, file=sys.stderr, flush=True),
        )
    except (ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(
        json.dumps(
            {
                k: ({kk: vv for kk, vv in v.items() if kk != "losses"} if isinstance(v, dict) else v)
                for k, v in report.items()
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
