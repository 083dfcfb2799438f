"""Benchmark the attention plots (longformer_core.plots) on a 16k-token document: payload, time, peak memory.

    .venv/bin/python bench/plots.py                      # NIST SP 800-61 (shared data), strategies cls + sentences
    .venv/bin/python bench/plots.py --strategy pages     # one strategy
    .venv/bin/python bench/plots.py --json               # one JSON object on stdout

The document is the first 16,382 tokens of NIST SP 800-61r2 ($LONGDOC_DATA_DIR/pdfs, default
../shared/data), i.e. one full 16,384-token pass of the embedded model; without the shared data a
generated text of the same length is used. Each measurement runs in a fresh subprocess so that its
peak RSS (resource.getrusage ru_maxrss) is its own:

* pattern: the whole-document pattern (grid + figure) and cost summary; only the tokenizer is loaded.
  Also measured on the whole NIST document (~47,000 tokens, three windows).
* token: the embedded model's band-format probabilities for one layer and one head on the pass
  (one forward), then the per-token line, shaded text, band view and global-rows figures.

Payload is len(fig.to_json()) (what the browser receives); times are wall-clock seconds of one run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))
from longformer_core import settings
from longformer_core.machine import cpu_model_name

TOKENS = 16_382  # document tokens in one 16,384-token pass ([CLS] + doc + [SEP])
LAYER, HEAD = 5, 0  # last layer, first head of the embedded model


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def load_text(full: bool) -> tuple[str, str]:
    """(text, description): the NIST guide, or generated text when the shared data is absent."""
    from longformer_core.documents import load_path

    data = settings.data_dir()
    pdf = data / "pdfs" / "nist_sp800-61r2.pdf"
    if pdf.is_file():
        return load_path(pdf).text, "NIST SP 800-61r2"
    sentence = "Incident handling teams review every alert, record the evidence and report to management. "
    return sentence * (5000 if full else 1100), "generated text"


def document(full: bool):
    """The benchmark document: whole, or cut to TOKENS tokens of the embedded tokenizer."""
    from transformers import AutoTokenizer

    from longformer_core.documents import text_document
    from longformer_core.model.convert import embedded_longformer_dir
    from longformer_core.reading.encoding import tokenize

    text, source = load_text(full)
    tokenizer = AutoTokenizer.from_pretrained(embedded_longformer_dir())
    if not full:
        offsets = tokenize(tokenizer, text).offsets
        text = text[: int(offsets[min(TOKENS, len(offsets)) - 1, 1])]
    return text_document(text, source), tokenizer


def measure_pattern(full: bool, strategy: str) -> dict:
    """Pattern grid + figure + cost for the document, with only the tokenizer loaded."""
    from longformer_core import plots
    from longformer_core.reading.encoding import LONG_OVERLAP, plan_windows, tokenize
    from longformer_core.reading.strategies import plan_global

    doc, tokenizer = document(full)
    tokens = tokenize(tokenizer, doc.text)
    plan = plan_global(strategy, doc, tokens)
    windows = plan_windows(len(tokens), 16_384 - 2, LONG_OVERLAP)  # the embedded model's passes
    before = peak_rss_mb()
    start = time.perf_counter()
    spec = plots.document_pattern_spec(len(tokens), 256, plan.doc_mask, plan.global_first, windows)
    fig = plots.pattern_figure(plots.pattern_grid(spec))
    cost = plots.attention_cost(spec, heads=12, head_dim=32, layers=6)
    build = time.perf_counter() - start
    start = time.perf_counter()
    payload = len(fig.to_json())
    return {
        "part": "pattern",
        "strategy": strategy,
        "tokens": len(tokens),
        "globals": spec.n_global,
        "windows": len(spec.windows) or 1,
        "build_s": build,
        "to_json_s": time.perf_counter() - start,
        "payload_bytes": payload,
        "peak_rss_mb": peak_rss_mb(),
        "rss_before_mb": before,
        "attended_share": cost.share,
        "saving": cost.saving,
    }


def measure_token(strategy: str) -> dict:
    """One layer/head of the embedded model's probabilities on the pass, then the per-token figures."""
    from longformer_core import plots
    from longformer_core.model.registry import load_embedded
    from longformer_core.reading.document_reading import DocumentReader

    doc, _ = document(full=False)
    pair = load_embedded()
    reader = DocumentReader(pair, doc, strategy=strategy)
    n = len(reader.long_tokens)
    token = n // 2
    doc_range = plots.token_window(reader, token)
    before = peak_rss_mb()
    start = time.perf_counter()
    att = plots.reader_layer_attention(reader, doc_range, LAYER, HEAD)
    model_s = time.perf_counter() - start
    after_model = peak_rss_mb()
    figures, times = {}, {}
    start = time.perf_counter()
    tw = plots.document_token_weights(att, token)
    label = plots.token_label(doc.text, reader.long_tokens, token)
    figures["token_line"] = plots.token_attention_figure(
        tw, label=label, marks=plots.page_marks(doc, reader.long_tokens)
    )
    times["token_line"] = time.perf_counter() - start
    start = time.perf_counter()
    text_html = plots.token_text_html(doc.text, reader.long_tokens, tw, page_of=doc.page_of)
    times["text_html"] = time.perf_counter() - start
    start = time.perf_counter()
    figures["band_view"] = plots.band_figure(plots.band_view(att))
    times["band_view"] = time.perf_counter() - start
    if att.global_positions.size:
        start = time.perf_counter()
        figures["global_rows"] = plots.global_rows_figure(plots.global_rows_view(att))
        times["global_rows"] = time.perf_counter() - start
    payloads = {name: len(fig.to_json()) for name, fig in figures.items()} | {"text_html": len(text_html)}
    return {
        "part": "token",
        "strategy": strategy,
        "tokens": n,
        "pass_tokens": att.length,
        "globals": int(att.global_positions.size),
        "layer": LAYER + 1,
        "head": HEAD + 1,
        "model_s": model_s,
        "build_s": times,
        "payload_bytes": payloads,
        "sum_of_weights": tw.total,
        "rss_before_model_mb": before,
        "peak_rss_after_model_mb": after_model,
        "peak_rss_mb": peak_rss_mb(),
    }


def run_part(args: list[str]) -> dict:
    """Run one measurement in a fresh interpreter (its own peak RSS) and return its JSON."""
    out = subprocess.run(
        [sys.executable, __file__, "--part", *args],
        check=True,
        capture_output=True,
        text=True,
        env=os.environ | {"HF_HUB_OFFLINE": "1"},
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def machine() -> str:
    return f"{cpu_model_name()}, {os.cpu_count()} CPU cores, Python {platform.python_version()}"


def report(results: list[dict]) -> None:
    mb = 1e6
    print(f"machine: {machine()}")
    for r in results:
        if r["part"] == "pattern":
            print(
                f"pattern  {r['strategy']:9s} {r['tokens']:6,d} tokens {r['globals']:4d} globals {r['windows']} window(s): "
                f"build {r['build_s']:.3f} s, to_json {r['to_json_s']:.3f} s, payload {r['payload_bytes'] / mb:.2f} MB, "
                f"peak RSS {r['peak_rss_mb']:.0f} MB (before {r['rss_before_mb']:.0f}); "
                f"{r['attended_share']:.2%} of pairs, {r['saving']:.0f}x less work than full"
            )
        else:
            builds = ", ".join(f"{k} {v:.3f} s" for k, v in r["build_s"].items())
            sizes = ", ".join(f"{k} {v / mb:.2f} MB" for k, v in r["payload_bytes"].items())
            print(
                f"token    {r['strategy']:9s} {r['tokens']:6,d} tokens {r['globals']:4d} globals, layer {r['layer']} "
                f"head {r['head']}: model pass {r['model_s']:.1f} s; build {builds}; payload {sizes}; "
                f"peak RSS {r['peak_rss_mb']:.0f} MB (before the pass {r['rss_before_model_mb']:.0f})"
            )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--strategy", action="append", help="strategies to measure (default: cls and sentences)"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument(
        "--part", nargs="+", help=argparse.SUPPRESS
    )  # internal: one measurement per subprocess
    args = parser.parse_args()
    if args.part:
        kind, strategy, *rest = args.part
        result = measure_pattern(rest == ["full"], strategy) if kind == "pattern" else measure_token(strategy)
        print(json.dumps(result))
        return
    results = []
    for strategy in args.strategy or ["cls", "sentences"]:
        results.append(run_part(["pattern", strategy]))
        results.append(run_part(["pattern", strategy, "full"]))
        results.append(run_part(["token", strategy]))
    if args.json:
        print(json.dumps({"machine": machine(), "results": results}, indent=1))
    else:
        report(results)


if __name__ == "__main__":
    main()
