"""Training data for fine-tuning: SQuAD-format QA examples and their tokenized windows, labelled CSVs, padding.

QA examples become windows of `max_length` tokens that overlap by `stride` (question first, then a piece of
the context), each labelled with the answer's token span or, when the answer lies outside the window, with
[CLS] (SQuAD 2.0 style).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from longformer_core.evaluation.hotpot import is_heldout


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

    training: leave out HotpotQA dev questions (recognised by their `hotpot_answer` field, in a file whose name
        does not say "train") of the held-out half (`hotpot.is_heldout`), so a head trained on the shared HotpotQA
        dev files can still be evaluated on questions it never saw; a HotpotQA train file is trained on whole.
    """
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    training = training and "train" not in Path(path).name
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


def pad_id(tokenizer) -> int:
    """The tokenizer's padding id (0 when it has none)."""
    return tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0


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
