"""Time from "document chosen" to the first answer of each view, against what the arithmetic allows.

In one run:
  1. a matmul micro-benchmark: this machine's fp32 and bf16 GFLOP/s (square matmuls, best of a few, at
     the start and at the end of the run; the better of the two sets the bound);
  2. the FLOP count of reading the document (every window of every view, one embedding per passage,
     the per-question reader passes), from the model configs: layers, hidden, FFN, attention span;
  3. the wall time from "document chosen" (the Document is parsed; `DocumentReader` created) to the
     first answer of each view, then to the answer of a second question, through the code path the
     app's Ask page uses (`DocumentReader` + `qa.ask`, views in the order truncated, chunked, longformer).

`flop_bound_s` = reading FLOPs / the measured GFLOP/s of the dtype in use; `ratio_to_flop_bound` =
`first_answer_s` / `flop_bound_s` (1.0 would be every matmul at the micro-benchmark's speed).
`ratio_to_flop_bound_cpu` uses the process's CPU time divided by its torch threads instead of the wall
time: on a machine shared with other work it estimates the ratio with the cores to itself.

Usage:
    .venv/bin/python bench/first_answer.py --json                   # the NIST guide, embedded model
    LONGDOC_DTYPE=bf16 .venv/bin/python bench/first_answer.py --json
    .venv/bin/python bench/first_answer.py --pdf my.pdf --question "..." --model DIR --baseline DIR
    .venv/bin/python bench/first_answer.py --json out.json          # also write the numbers to a file
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))
from longformer_core.machine import machine_info

DEFAULT_PDF = (
    Path(os.environ.get("LONGDOC_DATA_DIR", REPO_ROOT.parent / "shared" / "data"))
    / "pdfs/nist_sp800-61r2.pdf"
)
DEFAULT_QUESTIONS = (
    "How long should incident handling records be retained?",
    "What is a precursor?",
)
VIEW_ORDER = ("truncated", "chunked", "longformer")


def peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)  # Linux reports KiB


def matmul_gflops(dtype, n: int = 2048, repeats: int = 5) -> float:
    """Best GFLOP/s of an (n, n) @ (n, n) matmul in `dtype` (one warm-up call first)."""
    import torch

    a = torch.randn(n, n).to(dtype)
    b = torch.randn(n, n).to(dtype)
    torch.mm(a, b)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best / 1e9


def encoder_flops(config, lengths, span) -> float:
    """Forward FLOPs of a BERT/RoBERTa/Longformer encoder over sequences of the given lengths.

    Per token and layer: Q, K, V and output projections 8*h^2, FFN 4*h*f, attention scores and the
    weighted sum of values 4*h*k for k keys attended (the sequence for full attention, 2w+1 at most for
    a sliding window). Embeddings, layer norms and softmax are a few percent and left out.

    Args:
        config: the model config (num_hidden_layers, hidden_size, intermediate_size).
        lengths: input lengths (special tokens included), one per forward sequence.
        span: keys a token attends to at most (None: the whole sequence).
    """
    h, f, layers = config.hidden_size, config.intermediate_size, config.num_hidden_layers
    total = 0.0
    for n in lengths:
        keys = n if span is None else min(n, span)
        total += layers * n * (8 * h * h + 4 * h * f + 4 * h * keys)
    return total


def units_of(reader) -> list[tuple[int, int]]:
    """The spans embedded one by one: passages (since the hybrid retrieval), sentences before."""
    passages = getattr(reader, "passages", None)
    return list(passages.spans) if passages is not None else list(reader.sentences)


def reading_flops(reader, question: str) -> dict[str, float]:
    """FLOPs each view needs to give its first answer (its pass, the passage embeddings, the reader)."""
    from longformer_core.reading.encoding import view_windows

    out: dict[str, float] = {}
    for view in VIEW_ORDER:
        model = reader.model_for(view)
        config = model.encoder.config
        window = getattr(model, "attention_window", None)
        span = 2 * window + 1 if model.is_longformer and window else None
        lengths = [
            e - s + 2 for s, e in view_windows(model, model.tokenizer, len(reader.tokens_for(view)), view)
        ]
        reader_model = model.span_model if model.head != "qa" else model.model
        # A span head reads per question; the truncated view's QA reader needs no pass of its own.
        no_pass = model.head == "qa" or (view == "truncated" and reader_model is not None)
        flops = 0.0 if no_pass else encoder_flops(config, lengths, span)
        n_q = len(model.tokenizer(question, add_special_tokens=False)["input_ids"]) + 3
        if reader_model is not None:  # retrieve-then-read / span head: the question's own passes
            from longformer_core.qa import answering as qa

            region = getattr(qa, "REGION_TOKENS", 384)
            regions = 1 if view == "truncated" else getattr(qa, "READ_REGIONS", 4)
            if model.head == "qa":
                per = lengths
            elif view == "longformer" and getattr(model, "long_reader", False):  # one long window
                per = [min(model.max_tokens, qa.LONG_WINDOW_TOKENS, len(reader.tokens_for(view)) + n_q)]
            else:
                per = [
                    min(model.max_tokens, (model.max_tokens if view == "truncated" else region) + n_q)
                ] * regions
            flops += encoder_flops(reader_model.config, per, span)
        out[view] = flops
    tok = reader.pair.baseline.tokenizer
    texts = [reader.document.text[a:b] for a, b in units_of(reader)]
    unit_lengths = [len(ids) + 2 for ids in tok(texts, add_special_tokens=False)["input_ids"]]
    out["passages"] = encoder_flops(
        reader.pair.baseline.encoder.config, [min(n, 512) for n in unit_lengths], None
    )
    return out


def _parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pdf", type=Path, default=DEFAULT_PDF)
    parser.add_argument("--question", default=DEFAULT_QUESTIONS[0], help="the first question")
    parser.add_argument("--second-question", default=DEFAULT_QUESTIONS[1])
    parser.add_argument("--model", default="embedded", help="Longformer id or folder (default: embedded)")
    parser.add_argument("--baseline", default=None, help="512-token baseline id or folder")
    parser.add_argument(
        "--json", nargs="?", const="-", default=None, help="print the numbers as JSON (to stdout, or to FILE)"
    )
    return parser.parse_args()


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _first_answers(reader, question: str, t_chosen: float) -> tuple[dict[str, float], dict[str, dict]]:
    """Ask each view in turn: ({view: seconds since the document was chosen}, {view: page and text})."""
    from longformer_core.qa.answering import ask

    per_view: dict[str, float] = {}
    answers: dict[str, dict] = {}
    for view in VIEW_ORDER:
        result = ask(reader, question, views=[view])[view]
        per_view[view] = round(time.perf_counter() - t_chosen, 2)
        best = result.best
        answers[view] = {
            "page": best.page if best else None,
            "text": " ".join(best.text.split())[:100] if best else "",
        }
        _log(f"{view}: first answer at {per_view[view]:.1f} s (page {answers[view]['page']})")
    return per_view, answers


def _write(info: dict, where: str | None) -> None:
    """Print the numbers (as lines, or JSON with --json) and write them to FILE when --json FILE."""
    text = json.dumps(info, indent=2)
    if where in (None, "-"):
        print(text if where else "\n".join(f"{k}: {v}" for k, v in info.items()))
    else:
        Path(where).parent.mkdir(parents=True, exist_ok=True)
        Path(where).write_text(text)
        print(text)


def _load(args: argparse.Namespace) -> tuple:
    """(model pair, document, seconds to load the models, seconds to parse the PDF)."""
    from longformer_core.documents import load_path
    from longformer_core.model.registry import load_models

    t0 = time.perf_counter()
    pair = load_models(args.model, args.baseline)
    load_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    # Generous parse budgets: on a busy shared machine the app's per-page guard can trip on a genuine PDF.
    document = load_path(args.pdf, time_budget_s=3600.0, page_time_budget_s=600.0)
    return pair, document, load_s, time.perf_counter() - t0


def _matmul_again(fp32_start: float, bf16_start: float) -> dict:
    """Matmul GFLOP/s measured again at the end: on a shared machine the first measurement may have met a busy
    moment; the machine's capability is the better of the two (unrounded in "matmul_gflops", for the bound)."""
    import torch

    fp32_end, bf16_end = matmul_gflops(torch.float32), matmul_gflops(torch.bfloat16)
    _log(f"matmul at the end: fp32 {fp32_end:.0f} GFLOP/s, bf16 {bf16_end:.0f} GFLOP/s")
    return {
        "matmul_gflops": {"float32": max(fp32_start, fp32_end), "bfloat16": max(bf16_start, bf16_end)},
        "matmul_gflops_start_end": {
            "float32": [round(fp32_start, 1), round(fp32_end, 1)],
            "bfloat16": [round(bf16_start, 1), round(bf16_end, 1)],
        },
    }


def main() -> int:
    args = _parse_args()
    if not args.pdf.is_file():
        print(f"no PDF at {args.pdf} (set LONGDOC_DATA_DIR or give --pdf)", file=sys.stderr)
        return 2

    import torch

    from longformer_core.qa.answering import ask, preliminary_answer
    from longformer_core.reading.document_reading import DocumentReader
    from longformer_core.reading.strategies import DEFAULT_FOR_TASK

    fp32 = matmul_gflops(torch.float32)
    bf16 = matmul_gflops(torch.bfloat16)
    _log(f"matmul: fp32 {fp32:.0f} GFLOP/s, bf16 {bf16:.0f} GFLOP/s")

    pair, document, load_s, parse_s = _load(args)
    dtype = str(getattr(pair.longformer, "dtype", torch.float32)).replace("torch.", "")
    _log(f"models loaded in {load_s:.1f} s, PDF parsed in {parse_s:.1f} s; dtype {dtype}")

    # "Document chosen": from here on, what the user waits for.
    cpu_chosen = time.process_time()
    t_chosen = time.perf_counter()
    reader = DocumentReader(pair, document, strategy=DEFAULT_FOR_TASK["qa"])
    # What the app shows while the views are still reading: the lexical index and the reader on two regions.
    preliminary = {view: preliminary_answer(reader, args.question, view) for view in VIEW_ORDER}
    preliminary_answer_s = time.perf_counter() - t_chosen
    _log(
        f"preliminary answers at {preliminary_answer_s:.2f} s (pages "
        f"{', '.join(str(r.best.page if r.best else None) for r in preliminary.values())})"
    )
    per_view, answers = _first_answers(reader, args.question, t_chosen)
    first_answer_s = time.perf_counter() - t_chosen
    first_answer_cpu_s = time.process_time() - cpu_chosen

    t0 = time.perf_counter()
    second = ask(reader, args.second_question)
    second_answer_s = time.perf_counter() - t0
    _log(f"second question: {second_answer_s:.2f} s")

    matmul = _matmul_again(fp32, bf16)
    fp32, bf16 = matmul["matmul_gflops"]["float32"], matmul["matmul_gflops"]["bfloat16"]

    flops = reading_flops(reader, args.question)
    total_flops = sum(flops.values())
    flop_bound_s = total_flops / ((bf16 if dtype == "bfloat16" else fp32) * 1e9)
    info = {
        "first_answer_s": round(first_answer_s, 2),
        "second_answer_s": round(second_answer_s, 3),
        "preliminary_answer_s": round(preliminary_answer_s, 2),
        "flop_bound_s": round(flop_bound_s, 2),
        "ratio_to_flop_bound": round(first_answer_s / flop_bound_s, 2),
        # On a shared machine the wall time includes waiting for other processes; the CPU time this
        # process used, spread over its threads, is what the wall time would be with the cores to itself.
        "first_answer_cpu_s": round(first_answer_cpu_s, 1),
        "ratio_to_flop_bound_cpu": round(first_answer_cpu_s / torch.get_num_threads() / flop_bound_s, 2),
        "dtype": dtype,
        "peak_rss_mb": peak_rss_mb(),
        "tokens": len(reader.long_tokens),
        "first_answer_by_view_s": per_view,
        "reading_tflop": {k: round(v / 1e12, 3) for k, v in flops.items()}
        | {"total": round(total_flops / 1e12, 3)},
        **matmul,
        "model_load_s": round(load_s, 2),
        "pdf_parse_s": round(parse_s, 2),
        "passages": len(units_of(reader)),
        "questions": [args.question, args.second_question],
        "answers": answers,
        "second_answers": {v: (r.best.page if r.best else None) for v, r in second.items()},
        "model": args.model,
        "baseline": args.baseline or "(default)",
        "machine": machine_info("end"),
    }
    info["matmul_gflops"] = {
        k: round(v, 1) for k, v in info["matmul_gflops"].items()
    }  # best of start and end
    _write(info, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
