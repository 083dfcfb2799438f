"""The files of a QA head (a LoRA adapter + span layer, optionally a span/yes/no classifier): read, write, export.

A head comes in two layouts, and everything that loads one (`registry.load_span_model`, `evaluate
squad-paragraphs --qa-head`, `finetune_long`'s starting head) reads both through `read_qa_head`:
- a **head folder**: `adapter.safetensors` (fp16; names relative to the encoder: `encoder.layer.N.<target>.lora_a`,
  `qa_outputs.weight`, `answer_type.weight`, ...) and `adapter.json` (the card: `lora` config, how it was made,
  `val_articles` kept aside), what `finetune --model embedded` and `finetune_long` ship;
- a **training checkpoint** (`checkpoint-N/` of `finetune` or `finetune_long`, or the folder holding them, the
  latest taken): `model.safetensors` with the model's own parameter names (`bert.encoder.layer.N...lora_a`,
  `longformer.encoder...`, `qa_outputs.*`) and, when the run wrote one, `adapter.json`. A checkpoint without it
  gets the rank from the adapter's shapes and alpha = 2 x rank (what `finetune` and `finetune_long` use).
`export_head` turns a checkpoint into a head folder.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from longformer_core.model.lora import LoraConfig

HEAD_FILES = ("adapter.safetensors", "adapter.json")
CHECKPOINT_WEIGHTS = "model.safetensors"
CHECKPOINT_MARKERS = ("trainer_state.json", "state.json")  # finetune's and finetune_long's, written last
HEAD_PREFIXES = ("encoder.layer.", "qa_outputs.", "answer_type.")  # what a head's tensor names start with
ANSWER_TYPES = ("span", "yes", "no")  # what the answer-type classifier of a long reader tells apart


@dataclass
class QAHead:
    """A head as tensors (fp32, head-folder names), its LoRA config and its card."""

    state: dict[str, torch.Tensor]
    lora: LoraConfig
    card: dict = field(default_factory=dict)
    source: Path | None = None  # the folder it was read from

    @property
    def adapter(self) -> dict[str, torch.Tensor]:
        """The LoRA tensors only (`encoder.layer.N.<target>.lora_a|lora_b`)."""
        return {k: v for k, v in self.state.items() if k.startswith("encoder.")}


def _head_name(name: str) -> str | None:
    """A checkpoint's parameter name as a head names it ("bert.encoder.layer.0..." -> "encoder.layer.0..."), or
    None for a parameter that is no part of a head."""
    if name.startswith(HEAD_PREFIXES):
        return name
    _, _, rest = name.partition(".")
    return rest if rest.startswith("encoder.layer.") and ".lora_" in rest else None


def _checkpoint_folder(folder: Path) -> Path | None:
    """`folder` when it holds model.safetensors, else its complete checkpoint-N with the largest N (complete: its
    run's marker, written last, is there; a checkpoint being written by a running training is skipped), else None."""
    if (folder / CHECKPOINT_WEIGHTS).is_file():
        return folder
    found = [
        (int(m.group(1)), p)
        for p in folder.glob("checkpoint-*")
        if (m := re.fullmatch(r"checkpoint-(\d+)", p.name))
        and (p / CHECKPOINT_WEIGHTS).is_file()
        and any((p / marker).is_file() for marker in CHECKPOINT_MARKERS)
    ]
    return max(found)[1] if found else None


def _inferred_lora(state: dict[str, torch.Tensor], where: Path) -> LoraConfig:
    """The LoRA config of a checkpoint that carries no card: rank from the shapes, alpha = 2 x rank."""
    ranks = {int(v.shape[0]) for k, v in state.items() if k.endswith(".lora_a")}
    if len(ranks) != 1:
        raise ValueError(
            f"{where} holds no LoRA adapter of one rank (ranks found: {sorted(ranks) or 'none'}): it is not a "
            "checkpoint of a LoRA QA head (a full fine-tune is a model folder: give it to --model)."
        )
    rank = ranks.pop()
    targets = sorted({k.split(".", 3)[3].rsplit(".", 1)[0] for k in state if k.endswith(".lora_a")})
    return LoraConfig(rank=rank, alpha=2.0 * rank, targets=tuple(targets))


def read_qa_head(folder: str | Path) -> QAHead:
    """A QA head from a head folder or a training checkpoint (see the module docstring).

    Raises:
        ValueError: the folder is neither, or its tensors are not a QA head (the message says what to give).
    """
    from safetensors.torch import load_file

    folder = Path(folder).expanduser()
    if (folder / HEAD_FILES[0]).is_file():
        state = {k: v.float() for k, v in load_file(str(folder / HEAD_FILES[0])).items()}
        card = json.loads((folder / HEAD_FILES[1]).read_text(encoding="utf-8"))
        return QAHead(state, _lora_of(card, state, folder), card, folder)
    checkpoint = _checkpoint_folder(folder) if folder.is_dir() else None
    if checkpoint is None:
        raise ValueError(
            f"{folder} is neither a QA head folder (adapter.safetensors + adapter.json) nor a training checkpoint "
            "(model.safetensors, or checkpoint-N folders holding one): give the --out folder of a finished "
            "finetune, or the checkpoint folder its log named."
        )
    raw = load_file(str(checkpoint / CHECKPOINT_WEIGHTS))
    state = {head: v.float() for k, v in raw.items() if (head := _head_name(k)) is not None}
    if "qa_outputs.weight" not in state or len(state) < len(raw):
        raise ValueError(
            f"{checkpoint / CHECKPOINT_WEIGHTS} is not a LoRA QA head's checkpoint (it holds "
            f"{len(raw) - len(state)} weights outside the adapter and span layer): a full fine-tune saves a model "
            "folder; give that to --model instead."
        )
    card_path = checkpoint / HEAD_FILES[1]
    card = json.loads(card_path.read_text(encoding="utf-8")) if card_path.is_file() else {}
    card = {**card, "checkpoint": str(checkpoint)}
    return QAHead(state, _lora_of(card, state, checkpoint), card, checkpoint)


def _lora_of(card: dict, state: dict[str, torch.Tensor], where: Path) -> LoraConfig:
    if "lora" in card:
        lora = dict(card["lora"])
        lora["targets"] = tuple(lora.get("targets", LoraConfig().targets))
        return LoraConfig(**lora)
    return _inferred_lora(state, where)


def write_qa_head(state: dict[str, torch.Tensor], lora: LoraConfig, out_dir: str | Path, card: dict) -> Path:
    """Write a head folder: `state` (head names) as fp16 adapter.safetensors and {"lora": ..., **card} as adapter.json.

    Returns:
        the folder.
    """
    from safetensors.torch import save_file

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().float().half().contiguous() for k, v in state.items()}
    save_file(tensors, str(out_dir / HEAD_FILES[0]))
    card = {"lora": lora.to_dict(), **{k: v for k, v in card.items() if k != "lora"}}
    (out_dir / HEAD_FILES[1]).write_text(json.dumps(_portable(card), indent=2), encoding="utf-8")
    return out_dir


def _portable(value: object) -> object:
    """A card without this machine's paths: the cache folder as "LONGDOC_CACHE", the package's own folder as
    "longformer_core" (a head is shipped and read on other machines)."""
    from longformer_core.settings import cache_dir

    if isinstance(value, dict):
        return {k: _portable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_portable(v) for v in value]
    if isinstance(value, str):
        package = str(Path(__file__).resolve().parents[1])
        return value.replace(str(cache_dir()), "LONGDOC_CACHE").replace(package, "longformer_core")
    return value


def export_head(source: str | Path, out_dir: str | Path) -> Path:
    """A head folder from a training checkpoint (or a copy of a head folder), usable wherever a head is.

    The card keeps what the checkpoint's card said and adds where it came from and its step.

    Args:
        source: a checkpoint folder, or a run's checkpoint folder (its latest checkpoint is taken).
        out_dir: where to write adapter.safetensors and adapter.json.
    Returns:
        the folder written.
    """
    head = read_qa_head(source)
    card = {k: v for k, v in head.card.items() if k != "checkpoint"}
    card["exported_from"] = str(head.source)
    for marker in CHECKPOINT_MARKERS:
        path = head.source / marker if head.source else None
        if path is not None and path.is_file():
            saved = json.loads(path.read_text(encoding="utf-8"))
            card["step"] = saved.get("global_step", saved.get("step"))
    return write_qa_head(head.state, head.lora, out_dir, card)


class AnswerTypeHead(nn.Module):
    """span / yes / no from the mean of the [CLS] and question states: (batch, hidden) -> (batch, 3)."""

    def __init__(self, hidden_size: int) -> None:
        super().__init__()
        self.classifier = nn.Linear(hidden_size, len(ANSWER_TYPES))

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        return self.classifier(pooled)


def load_answer_type_head(head_dir: str | Path, hidden_size: int) -> AnswerTypeHead | None:
    """The answer-type classifier saved next to a QA head (`answer_type.weight` / `.bias`), or None."""
    from safetensors.torch import load_file

    path = Path(head_dir) / "adapter.safetensors"
    if not path.is_file():
        return None
    state = load_file(str(path))
    if "answer_type.weight" not in state:
        return None
    head = AnswerTypeHead(hidden_size)
    if tuple(state["answer_type.weight"].shape) != tuple(head.classifier.weight.shape):
        raise ValueError(
            f"The answer-type classifier in {path} expects hidden size {state['answer_type.weight'].shape[1]}, "
            f"the model has {hidden_size}: the head was trained for another model."
        )
    with torch.no_grad():
        head.classifier.weight.copy_(state["answer_type.weight"].float())
        head.classifier.bias.copy_(state["answer_type.bias"].float())
    return head.eval()
