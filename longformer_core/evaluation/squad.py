"""Evaluation on real long documents: SQuAD at article level (contexts are whole Wikipedia articles), and
questions about one long PDF with the pages where their answers are (`pdf_questions`).

`squad_articles` runs the three views on the same questions and reports, for each:
- `sentence_hit@1`: the top answer's sentence lies in the gold paragraph and contains a gold answer;
- `em` / `f1` (official SQuAD normalisation) when the view extracts spans (a model with a QA head);
- the same split by where the gold answer starts in the document (token buckets), because a 512-token
  model can only ever be right in the first bucket.
"""

from __future__ import annotations

import collections
import json
import re
import string
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from longformer_core.documents import Document, text_document
from longformer_core.model.registry import ModelPair
from longformer_core.qa.answering import ask
from longformer_core.reading.document_reading import DocumentReader
from longformer_core.reading.encoding import VIEWS
from longformer_core.reading.retrieval import LexicalIndex
from longformer_core.reading.strategies import DEFAULT_FOR_TASK

BUCKETS = ((0, 512), (512, 2048), (2048, 4096), (4096, None))


def bucket_name(lo: int, hi: int | None) -> str:
    return f"{lo}-{hi}" if hi is not None else f"{lo}+"


def bucket_of(token: int) -> str:
    for lo, hi in BUCKETS:
        if hi is None or token < hi:
            return bucket_name(lo, hi)
    raise AssertionError("unreachable")


# Official SQuAD v1.1 evaluation normalisation.
def normalize_answer(s: str) -> str:
    s = s.lower()
    s = "".join(ch for ch in s if ch not in set(string.punctuation))
    s = re.sub(r"\b(a|an|the)\b", " ", s)
    return " ".join(s.split())


def exact_match(prediction: str, gold: str) -> float:
    return float(normalize_answer(prediction) == normalize_answer(gold))


def f1_score(prediction: str, gold: str) -> float:
    p, g = normalize_answer(prediction).split(), normalize_answer(gold).split()
    common = collections.Counter(p) & collections.Counter(g)
    same = sum(common.values())
    if same == 0:
        return 0.0
    precision, recall = same / len(p), same / len(g)
    return 2 * precision * recall / (precision + recall)


def load_squad_articles(path: str | Path) -> list[dict]:
    """Articles as {"title", "context", "paragraph_starts", "qas"} from a SQuAD-format file whose
    contexts are whole articles (paragraphs joined by blank lines; each qa has `paragraph_index`)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"Could not read SQuAD file {path}: {exc}") from exc
    articles = []
    for art in data.get("data", []):
        for para in art.get("paragraphs", []):
            ctx = para["context"]
            starts = [0] + [m.end() for m in re.finditer(r"\n\n", ctx)]
            articles.append(
                {
                    "title": art.get("title", ""),
                    "context": ctx,
                    "paragraph_starts": starts,
                    "qas": para["qas"],
                }
            )
    if not articles:
        raise ValueError(f"{path} holds no SQuAD articles (expected {{'data': [{{'paragraphs': [...]}}]}}).")
    return articles


def _paragraph_range(article: dict, qa: dict) -> tuple[int, int]:
    starts = article["paragraph_starts"]
    i = qa.get("paragraph_index")
    if i is None:  # no gold paragraph recorded: any place in the article counts
        return 0, len(article["context"])
    return starts[i], starts[i + 1] if i + 1 < len(starts) else len(article["context"])


def squad_articles(
    pair: ModelPair,
    path: str | Path,
    limit: int | None = None,
    max_articles: int | None = None,
    strategy: str = DEFAULT_FOR_TASK["qa"],
    seed: int = 0,
    progress: Callable[[str], None] | None = None,
    titles: Sequence[str] | None = None,
) -> dict:
    """Run truncated, chunked and Longformer QA over SQuAD articles and score them on the same questions.

    Args:
        pair: the models.
        path: SQuAD-format JSON with article-level contexts.
        limit: at most this many questions in all, sampled evenly over the articles (seeded).
        max_articles: use only the first N articles.
        strategy: global-attention strategy for the Longformer.
        seed: question sampling seed.
        progress: called with a line of text after each article.
        titles: only these articles (e.g. those a QA head never trained on).
    Returns:
        {"questions": N, "articles": A, "strategy": s, view: {"sentence_hit@1", ["em", "f1"],
         "by_answer_position": {bucket: {...}}, "seconds_per_question", "encode_seconds"}}.
    """
    articles = load_squad_articles(path)
    if titles is not None:
        articles = [a for a in articles if a["title"] in set(titles)]
        if not articles:
            raise ValueError(f"None of the articles {', '.join(titles)} is in {path}.")
    articles = articles[:max_articles]
    rng = np.random.default_rng(seed)
    per_article = None if limit is None else max(1, -(-limit // len(articles)))
    rows: list[dict] = []
    timing = {v: {"encode": 0.0, "answer": 0.0} for v in VIEWS}
    t_start = time.perf_counter()
    for n_art, article in enumerate(articles):
        qas = article["qas"]
        if per_article is not None:
            qas = [qas[i] for i in sorted(rng.permutation(len(qas))[:per_article])]
        if limit is not None:
            qas = qas[: max(0, limit - len(rows))]
        if not qas:
            break
        reader = DocumentReader(pair, text_document(article["context"], article["title"]), strategy=strategy)
        for qa in qas:
            pa, pb = _paragraph_range(article, qa)
            golds = [a["text"] for a in qa["answers"]]
            norm_golds = [normalize_answer(g) for g in golds]
            answer_char = qa["answers"][0]["answer_start"]
            row = {"bucket": bucket_of(reader.long_tokens.token_at(answer_char))}
            for view, result in ask(reader, qa["question"], n_best=1).items():
                timing[view]["encode"] += result.encode_seconds
                timing[view]["answer"] += result.seconds
                best = result.best
                if best is None:
                    row[view] = {"hit": 0.0, "em": 0.0, "f1": 0.0}
                    continue
                sentence = _sentence_text(reader, best.char_span)
                in_para = pa <= best.char_span[0] < pb
                hit = float(in_para and any(g and g in normalize_answer(sentence) for g in norm_golds))
                row[view] = {"hit": hit}
                if result.method != "sentence":
                    row[view]["em"] = max(exact_match(best.text, g) for g in golds)
                    row[view]["f1"] = max(f1_score(best.text, g) for g in golds)
            rows.append(row)
        if progress:
            progress(
                f"article {n_art + 1}/{len(articles)} ({article['title']}): {len(rows)} questions, "
                f"{time.perf_counter() - t_start:.0f} s"
            )
    return _summarise(rows, timing, len(articles), strategy)


def _sentence_text(reader: DocumentReader, span: tuple[int, int]) -> str:
    """The sentence(s) that hold a character span (a span answer is judged by its sentence for hit@1)."""
    a, b = span
    pieces = [reader.document.text[s:e] for s, e in reader.sentences if s < b and e > a]
    return " ".join(pieces) or reader.document.text[a:b]


def _metrics(rows: list[dict], view: str) -> dict:
    out = {"questions": len(rows)}
    if not rows:
        return out
    out["sentence_hit@1"] = round(float(np.mean([r[view]["hit"] for r in rows])), 4)
    if all("em" in r[view] for r in rows):
        out["em"] = round(100 * float(np.mean([r[view]["em"] for r in rows])), 2)
        out["f1"] = round(100 * float(np.mean([r[view]["f1"] for r in rows])), 2)
    return out


def _summarise(rows: list[dict], timing: dict, n_articles: int, strategy: str) -> dict:
    report: dict = {"questions": len(rows), "articles": n_articles, "strategy": strategy}
    for view in VIEWS:
        m = _metrics(rows, view)
        m.pop("questions")
        m["by_answer_position"] = {}
        for lo, hi in BUCKETS:
            name = bucket_name(lo, hi)
            m["by_answer_position"][name] = _metrics([r for r in rows if r["bucket"] == name], view)
        m["encode_seconds"] = round(timing[view]["encode"], 2)
        m["seconds_per_question"] = round(timing[view]["answer"] / max(1, len(rows)), 4)
        report[view] = m
    return report


# --------------------------------------------------------------------------------------------------
# Questions about one PDF (or text) with their answer pages


def answer_hit(prediction: str, gold: str) -> float:
    """1.0 when the prediction contains the gold span (case/whitespace-normalised) or has SQuAD F1 >= 0.5."""

    def fold(s: str) -> str:
        return " ".join(s.lower().split())

    return float(fold(gold) in fold(prediction) or f1_score(prediction, gold) >= 0.5)


def load_pdf_questions(path: str | Path) -> list[dict]:
    """Questions as [{"question", "answer", "pages": [1-based pages where the answer appears], ...}]."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"Could not read the questions file {path}: {exc}") from exc
    items = data.get("questions", data) if isinstance(data, dict) else data
    if not isinstance(items, list) or not all(
        isinstance(q, dict) and {"question", "answer", "pages"} <= q.keys() for q in items
    ):
        raise ValueError(f"{path} must be a JSON list of {{'question', 'answer', 'pages'}} objects.")
    return items


def lexical_pages(document: Document, question: str) -> list[int]:
    """The no-model baseline: pages ranked by BM25 between the question and each page's text (1-based, best first)."""
    index = LexicalIndex([document.page_text(p) for p in range(1, document.n_pages + 1)])
    scores = index.scores(question)
    return [int(i) + 1 for i in np.argsort(-scores, kind="stable")]


def pdf_questions(
    pair: ModelPair,
    document: Document,
    questions: Sequence[dict],
    strategy: str = DEFAULT_FOR_TASK["qa"],
    views: Sequence[str] = VIEWS,
    progress: Callable[[str], None] | None = None,
) -> dict:
    """Read one document once and ask it every question; score each view and a lexical page baseline.

    Returns:
        {"questions": N, "document": name, "pages": n, VIEW | "lexical": {"page_hit@1", "answer_hit", "f1",
         "seconds_per_question"}, "by_kind": {kind: {VIEW: page_hit@1}}, "rows": [per question]}.
    """
    reader = DocumentReader(pair, document, strategy=strategy)
    rows: list[dict] = []
    seconds = dict.fromkeys([*views, "lexical"], 0.0)
    for n, q in enumerate(questions):
        row: dict = {"question": q["question"], "kind": q.get("kind", ""), "pages": list(q["pages"])}
        t0 = time.perf_counter()
        top_page = lexical_pages(document, q["question"])[0]
        lexical_answer = _best_lexical_passage(reader, q["question"], top_page)
        seconds["lexical"] += time.perf_counter() - t0
        row["lexical"] = {"page": top_page, "answer": lexical_answer}
        for view, result in ask(reader, q["question"], views=views, n_best=1).items():
            seconds[view] += result.seconds + result.encode_seconds
            best = result.best
            row[view] = {"page": best.page if best else 0, "answer": best.text if best else ""}
        for key in [*views, "lexical"]:
            got = row[key]
            got["page_hit"] = float(got["page"] in q["pages"])
            got["answer_hit"] = answer_hit(got["answer"], q["answer"])
            got["f1"] = f1_score(got["answer"], q["answer"])
        rows.append(row)
        if progress:
            progress(
                f"question {n + 1}/{len(questions)}: "
                + ", ".join(
                    f"{k} p.{row[k]['page']}{'+' if row[k]['page_hit'] else '-'}" for k in [*views, "lexical"]
                )
            )
    report: dict = {
        "questions": len(rows),
        "document": document.name,
        "pages": document.n_pages,
        "strategy": strategy,
    }
    for key in [*views, "lexical"]:
        report[key] = {
            "page_hit@1": round(float(np.mean([r[key]["page_hit"] for r in rows])), 4) if rows else 0.0,
            "answer_hit": round(float(np.mean([r[key]["answer_hit"] for r in rows])), 4) if rows else 0.0,
            "f1": round(100 * float(np.mean([r[key]["f1"] for r in rows])), 2) if rows else 0.0,
            "seconds_per_question": round(seconds[key] / max(1, len(rows)), 3),
        }
    kinds = sorted({r["kind"] for r in rows if r["kind"]})
    report["by_kind"] = {
        k: {
            key: round(float(np.mean([r[key]["page_hit"] for r in rows if r["kind"] == k])), 3)
            for key in [*views, "lexical"]
        }
        for k in kinds
    }
    report["rows"] = rows
    return report


def _best_lexical_passage(reader: DocumentReader, question: str, page: int) -> str:
    """The lexical baseline's answer: the passage on its top page with the highest BM25 score."""
    scores = reader.lexical_index.scores(question)
    on_page = [i for i, (a, _) in enumerate(reader.passages.spans) if reader.document.page_of(a) == page]
    if not on_page:
        return reader.document.page_text(page)
    best = max(on_page, key=lambda i: scores[i])
    a, b = reader.passages.spans[best]
    return reader.document.text[a:b]
