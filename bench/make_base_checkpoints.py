"""Random-weight checkpoints with exactly the configs of allenai/longformer-base-4096 and roberta-base.

No hub is reachable here, so the weights are random and the tokenizer is a byte-level BPE (RoBERTa's
kind, same special tokens) trained locally with `tokenizers` on the shared SQuAD articles, capped at
RoBERTa's 50,265 entries. The models' configs are the hub ones to the letter (hidden 768, 12 layers,
12 heads, FFN 3072, vocab 50,265, 4,098 / 514 positions, window 512): what time and memory depend on.
Answers from random weights mean nothing; use the folders for timing and memory only:

    .venv/bin/python bench/make_base_checkpoints.py artifacts/base-ckpts
    .venv/bin/python bench/first_answer.py --model artifacts/base-ckpts/longformer-base-4096 \
        --baseline artifacts/base-ckpts/roberta-base --json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CORPUS = (
    Path(os.environ.get("LONGDOC_DATA_DIR", REPO_ROOT.parent / "shared" / "data"))
    / "squad/squad-v1.1-dev.articles.json"
)
ROBERTA_VOCAB = 50265
SPECIAL = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]  # ids 0..4, as in roberta-base
COMMON = {  # shared by both hub configs (their config.json files)
    "vocab_size": ROBERTA_VOCAB,
    "hidden_size": 768,
    "num_hidden_layers": 12,
    "num_attention_heads": 12,
    "intermediate_size": 3072,
    "hidden_act": "gelu",
    "hidden_dropout_prob": 0.1,
    "attention_probs_dropout_prob": 0.1,
    "type_vocab_size": 1,
    "initializer_range": 0.02,
    "layer_norm_eps": 1e-5,
    "pad_token_id": 1,
    "bos_token_id": 0,
    "eos_token_id": 2,
}
LONGFORMER = COMMON | {"max_position_embeddings": 4098, "attention_window": [512] * 12, "sep_token_id": 2}
ROBERTA = COMMON | {"max_position_embeddings": 514}


def corpus_texts(path: Path) -> list[str]:
    """Every string longer than 200 characters in the JSON file (the SQuAD article texts)."""
    found: list[str] = []

    def walk(node: object) -> None:
        if isinstance(node, str) and len(node) > 200:
            found.append(node)
        elif isinstance(node, dict):
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(json.loads(path.read_text(encoding="utf-8")))
    return found


def build_tokenizer(texts: list[str], out: Path):
    """A RoBERTa-style byte-level BPE trained on `texts`, at most ROBERTA_VOCAB entries."""
    from tokenizers import ByteLevelBPETokenizer
    from transformers import RobertaTokenizerFast

    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(texts, vocab_size=ROBERTA_VOCAB, min_frequency=2, special_tokens=SPECIAL)
    out.mkdir(parents=True, exist_ok=True)
    bpe.save_model(str(out))
    return RobertaTokenizerFast(
        vocab=str(out / "vocab.json"), merges=str(out / "merges.txt"), model_max_length=4096
    )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("out", type=Path, help="folder to write longformer-base-4096/ and roberta-base/ into")
    parser.add_argument(
        "--corpus", type=Path, default=DEFAULT_CORPUS, help="JSON whose long strings train the BPE"
    )
    args = parser.parse_args()

    import torch
    from transformers import LongformerConfig, LongformerModel, RobertaConfig, RobertaModel

    if not args.corpus.is_file():
        print(f"no corpus at {args.corpus} (set LONGDOC_DATA_DIR or give --corpus)", file=sys.stderr)
        return 2
    tokenizer = build_tokenizer(corpus_texts(args.corpus), args.out / "bpe")
    torch.manual_seed(0)
    for name, config, cls in (
        ("longformer-base-4096", LongformerConfig(**LONGFORMER), LongformerModel),
        ("roberta-base", RobertaConfig(**ROBERTA), RobertaModel),
    ):
        folder = args.out / name
        model = cls(config).eval()
        model.save_pretrained(folder)
        tokenizer.model_max_length = config.max_position_embeddings - 2
        tokenizer.save_pretrained(folder)
        n_params = sum(p.numel() for p in model.parameters())
        print(f"{folder}: {n_params / 1e6:.1f}M parameters, tokenizer of {len(tokenizer):,} entries")
        del model
    return 0


if __name__ == "__main__":
    sys.exit(main())
