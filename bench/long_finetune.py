"""Throughput of long-context fine-tuning (finetune_long) on the real embedded model: fp32 vs bf16 autocast.

Runs the same first steps twice from the same start (shipped head, same seed, same windows), once in
fp32 and once with bf16 autocast, for the Longformer reader (windows of --window-tokens) and for the
chunked twin (the same windows in 512-token chunks). Prints windows/s, the bf16/fp32 speed ratio, the
largest per-step loss difference, and how long one epoch over the full training set would take at the
measured speed. Ratios within one run are the result; absolute times are upper bounds on a shared CPU.

    nice -n 10 .venv/bin/python bench/long_finetune.py --steps 20 --window-tokens 2048
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from longformer_core.model.convert import embedded_longformer_dir, embedded_source_dir
from longformer_core.model.lora import LoraConfig
from longformer_core.model.registry import QA_HEAD_DIR
from longformer_core.training import long as fl


def _compare_precisions(results: dict, which: str, n_examples: int) -> dict:
    """bf16 against fp32 for one reader (speed-up, loss differences) and what its best speed means for an epoch."""
    import numpy as np

    out: dict = {}
    runs = [results.get(f"{which}/{p}") for p in ("fp32", "bf16")]
    if all(runs):
        fp32, bf16 = runs
        out[f"{which}/bf16_speedup"] = round(bf16["windows_per_second"] / fp32["windows_per_second"], 3)
        out[f"{which}/max_loss_difference"] = round(
            max(abs(a - b) for a, b in zip(fp32["losses"], bf16["losses"])), 5
        )
        out[f"{which}/mean_loss"] = {
            "fp32": round(float(np.mean(fp32["losses"])), 4),
            "bf16": round(float(np.mean(bf16["losses"])), 4),
        }
    best = max((r["windows_per_second"] for r in runs if r), default=0.0)
    out[f"{which}/one_epoch_hours_at_best_speed"] = round(n_examples / best / 3600, 2) if best else None
    out[f"{which}/windows_in_90_minutes_at_best_speed"] = int(best * 5400)
    return out


def main() -> int:
    data = Path(os.environ.get("LONGDOC_DATA_DIR", "../shared/data"))
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=20, help="optimizer steps per run (batch 1 window)")
    p.add_argument("--chunk-steps", type=int, default=10)
    p.add_argument("--window-tokens", type=int, default=fl.WINDOW_TOKENS)
    p.add_argument("--precisions", nargs="+", default=["fp32", "bf16"])
    args = p.parse_args()

    # finetune-long's default data: SQuAD train articles, HotpotQA train whole + the dev files' trainable halves
    heldout = json.loads((QA_HEAD_DIR / "adapter.json").read_text())["val_articles"]
    squad = fl.squad_article_examples(data / "squad" / "squad-v1.1-train.paragraphs.json", heldout)
    hot = [
        ex
        for name in ("train-distractor", "dev-distractor", "dev-distractor.more")
        for ex in fl.hotpot_train_examples(data / "hotpotqa" / f"hotpotqa-{name}.json")
    ]
    examples = squad + hot
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(embedded_longformer_dir()))
    # Only the windows the runs use are built (tokenizing every article takes a while); steps sample them
    # in a seeded order, the same in both precisions.
    import numpy as np

    pick = sorted(np.random.default_rng(0).permutation(len(examples))[: max(args.steps, args.chunk_steps)])
    sample = [examples[i] for i in pick]
    plans = fl.plan_training_windows(tokenizer, sample, args.window_tokens, seed=0)
    windows = [w for [w] in fl.TrainingWindows(plans)]
    chunks = list(fl.TrainingWindows(plans, chunk_tokens=fl.CHUNK_TOKENS))
    lora = LoraConfig(rank=16, alpha=32.0)
    results: dict = {
        "cpu": fl.cpu_model_name(),
        "threads": torch.get_num_threads(),
        "bf16_native": fl.native_bf16(torch.device("cpu")),
        "window_tokens": args.window_tokens,
        "train_questions": {"squad": len(squad), "hotpot": len(hot)},
        "mean_window_tokens": round(float(np.mean([len(w.input_ids) for w in windows])), 1),
        "chunks_per_window": round(float(np.mean([len(c) for c in chunks])), 2),
    }
    for which, source, batches, steps in (
        ("long", embedded_longformer_dir(), [[w] for w in windows], args.steps),
        ("chunked", embedded_source_dir(), chunks, args.chunk_steps),
    ):
        for precision in args.precisions:
            module, _, type_head = fl.reader_for_training(source, lora, QA_HEAD_DIR)
            settings = fl.LongTrainSettings(
                epochs=1, batch_size=1, max_steps=steps, precision=precision, warmup=0.1
            )
            log = fl.train(
                module,
                type_head,
                batches,
                settings,
                which == "long",
                tokenizer.pad_token_id,
                torch.device("cpu"),
                progress=lambda m, w=which, pr=precision: print(
                    f"{w} {pr}: {m}", file=sys.stderr, flush=True
                ),
            )
            results[f"{which}/{precision}"] = {
                "steps": log.steps,
                "seconds": round(log.seconds, 1),
                "windows_per_second": round(log.windows / log.seconds, 4),
                "tokens_per_second": round(log.tokens / log.seconds, 1),
                "losses": log.losses,
            }
            del module, type_head
        results.update(_compare_precisions(results, which, len(examples)))
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
