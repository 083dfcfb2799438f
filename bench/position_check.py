"""Does the converted Longformer read worse far from the start? Same paragraph, same question, two positions.

For SQuAD paragraphs the shipped QA head never trained on (its 6 held-out dev articles), one question each,
build a `--length`-token input `[CLS] question [SEP] filler[:k] paragraph filler[k:] [SEP]` with the same
filler (paragraphs of other held-out articles) and the paragraph starting at document token k = 100 or
k = 3000; [CLS] and the question are global; the embedded Longformer's QA reader (shipped head) reads it in
one pass. Span F1 (official SQuAD normalisation) of the best span inside the paragraph (how well it reads
there) and of the best span anywhere (whether far text distracts it), next to the paragraph read alone.
Tiled position embeddings repeat the 512 learned rows, so position 3,000 looks like 3,000 mod 512 = 440.

    nice -n 10 .venv/bin/python bench/position_check.py --paragraphs 50
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from longformer_core.evaluation.squad import f1_score
from longformer_core.model.registry import QA_HEAD_DIR, load_embedded
from longformer_core.qa.one_pass import pool_mask_of, qa_forward
from longformer_core.qa.spans import best_spans
from longformer_core.reading.encoding import DocumentTokens, build_input, model_kwargs, tokenize


def main() -> int:
    data = Path(os.environ.get("LONGDOC_DATA_DIR", "../shared/data"))
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--paragraphs", type=int, default=50)
    p.add_argument("--positions", type=int, nargs="+", default=[100, 3000])
    p.add_argument(
        "--length", type=int, default=4096, help="input tokens, special tokens and question included"
    )
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()

    heldout = set(json.loads((QA_HEAD_DIR / "adapter.json").read_text())["val_articles"])
    squad = json.loads((data / "squad" / "squad-v1.1-dev.paragraphs.json").read_text())
    paragraphs = [
        (a["title"], para) for a in squad["data"] if a["title"] in heldout for para in a["paragraphs"]
    ]
    rng = np.random.default_rng(args.seed)
    chosen = [paragraphs[i] for i in rng.permutation(len(paragraphs))[: args.paragraphs]]
    pair = load_embedded()
    model = pair.longformer
    reader = model.span_model
    tok = model.tokenizer
    results: dict[str, list[float]] = {}
    t0 = time.perf_counter()
    for n, (title, para) in enumerate(chosen):
        qa = para["qas"][int(rng.integers(len(para["qas"])))]
        golds = [a["text"] for a in qa["answers"]]
        q_ids = tok(qa["question"], add_special_tokens=False)["input_ids"]
        target = tokenize(tok, para["context"])
        # Filler: other held-out articles' paragraphs, in a seeded order, as many tokens as needed.
        need = args.length - 3 - len(q_ids) - len(target)
        others = [pp["context"] for t, pp in paragraphs if t != title]
        filler_text = " ".join(others[i] for i in rng.permutation(len(others)))
        filler = tokenize(tok, filler_text, stop_after=need + 10)
        filler = DocumentTokens(filler.ids[:need], filler.offsets[:need])
        runs = {"alone": 0, **{f"at {k}": k for k in args.positions}}
        for name, k in runs.items():
            if name == "alone":
                ids, para_range = target.ids, (0, len(target))
            else:
                ids = np.concatenate([filler.ids[:k], target.ids, filler.ids[k:]])
                para_range = (k, k + len(target))
            doc = DocumentTokens(ids, np.zeros((len(ids), 2), dtype=np.int64))
            win = build_input(
                tok, doc, (0, len(ids)), question_ids=q_ids, global_first=True, global_question=True
            )
            with torch.inference_mode():
                start, end, _ = qa_forward(reader, model_kwargs(model, win), pool_mask_of(win))
            s, e = start[0].float().numpy(), end[0].float().numpy()
            for scope, ctx in (
                ("in paragraph", (win.doc_start + para_range[0], win.doc_start + para_range[1])),
                ("anywhere", (win.doc_start, win.doc_start + len(ids))),
            ):
                if name == "alone" and scope == "anywhere":
                    continue
                spans, _ = best_spans(s, e, ctx, 1, 30)
                sp = spans[0]
                a, b = sp.start - win.doc_start, sp.end - win.doc_start
                inside = para_range[0] <= a and b < para_range[1]
                text = ""
                if inside:
                    offs = target.offsets[a - para_range[0] : b - para_range[0] + 1]
                    text = para["context"][offs[0, 0] : offs[-1, 1]]
                f1 = max(f1_score(text, g) for g in golds)
                results.setdefault(f"{name} / {scope}", []).append(f1)
                if scope == "anywhere":
                    results.setdefault(f"{name} / answer inside paragraph", []).append(float(inside))
        print(
            f"{n + 1}/{len(chosen)} paragraphs, {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True
        )
    summary = {k: round(100 * float(np.mean(v)), 2) for k, v in results.items()}
    summary["paragraphs"] = len(chosen)
    summary["length"] = args.length
    summary["seconds"] = round(time.perf_counter() - t0, 1)
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
