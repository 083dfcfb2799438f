"""The readers being trained: the model with LoRA and an answer-type head, their loss, and the precision to use.

The loss is the paper's multi-span loss: -log sum p(start) over every gold start (the same for ends) in ONE
softmax over the window, plus the cross-entropy of the span/yes/no classifier.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from longformer_core.model.lora import LoraConfig, add_lora
from longformer_core.model.qa_head import AnswerTypeHead
from longformer_core.qa.one_pass import qa_forward
from longformer_core.training.long_data import TrainWindow


def native_bf16(device: torch.device) -> bool:
    """Whether the hardware computes bf16 natively: CUDA with bf16, or a CPU with AVX512-BF16 / AMX-BF16
    (`registry.cpu_has_native_bf16`, the one detection the project uses)."""
    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    from longformer_core.model.registry import cpu_has_native_bf16

    return device.type == "cpu" and cpu_has_native_bf16()


def lora_for_head(init_head: Path | None, rank: int | None) -> LoraConfig:
    """The adapter to train: the starting head's own (any rank: the new region reader is rank 64), else rank
    `rank` (default 16) with alpha = 2 x rank.

    Raises:
        ValueError: `rank` was given and differs from the head's (the message names both).
    """
    if init_head is None:
        rank = rank or 16
        return LoraConfig(rank=rank, alpha=2.0 * rank)
    from longformer_core.model.qa_head import read_qa_head

    lora = read_qa_head(init_head).lora
    if rank is not None and rank != lora.rank:
        raise ValueError(
            f"--lora-rank {rank} differs from the rank {lora.rank} of the starting head {init_head}: leave "
            "--lora-rank out (the rank follows the head) or start from scratch with --init-head none."
        )
    return lora


def init_from_head(
    model: nn.Module, adapters: dict, head_dir: Path, type_head: nn.Module | None = None
) -> None:
    """Start the LoRA adapter and span layer (and the answer-type classifier, when the head has one) from a saved
    QA head or training checkpoint (`model.qa_head.read_qa_head`), e.g. the shipped one; same rank as `adapters`."""
    from longformer_core.model.qa_head import read_qa_head

    state = read_qa_head(head_dir).state
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
        if type_head is not None and "answer_type.weight" in state:
            type_head.classifier.weight.copy_(state["answer_type.weight"].float())
            type_head.classifier.bias.copy_(state["answer_type.bias"].float())


def reader_for_training(
    source: str | Path, lora: LoraConfig, init_head: Path | None
) -> tuple[nn.Module, dict, AnswerTypeHead]:
    """(QA model with LoRA, its adapters, an answer-type head: the starting head's when it has one, else fresh);
    HF's own attention (it trains)."""
    from transformers import AutoModelForQuestionAnswering

    from longformer_core.model.convert import quiet_transformers

    quiet_transformers()
    model = AutoModelForQuestionAnswering.from_pretrained(str(source))
    adapters = add_lora(model, lora)
    type_head = AnswerTypeHead(model.config.hidden_size)
    if init_head is not None:
        init_from_head(model, adapters, init_head, type_head)
    return model, adapters, type_head


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
