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
from longformer_core.qa.one_pass import AnswerTypeHead, qa_forward
from longformer_core.training.long_data import TrainWindow


def native_bf16(device: torch.device) -> bool:
    """Whether the hardware computes bf16 natively: CUDA with bf16, or a CPU with avx512_bf16 / amx_bf16."""
    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    try:
        flags = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:  # not Linux: do not guess
        return False
    return any(f" {flag}" in flags for flag in ("avx512_bf16", "amx_bf16"))


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

    from longformer_core.model.convert import quiet_transformers

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
