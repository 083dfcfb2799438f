"""Document classification, three ways: truncated, chunked and Longformer.

- **zero-shot** (any model): each label (optionally with a description) is embedded as a short text;
  the document is the mean of the view's token states; scores are a softmax over cosines. Chunked: each
  512-token chunk is scored on its own and the most confident chunk decides (best result wins).
- **head** (the model has a sequence-classification head): logits per window, [CLS] global for the
  Longformer (the paper's setting); Longformer windows are averaged, chunked takes the most confident.
- **trained head** (heads.py, e.g. the bundled "Hyperpartisan news?" and "News topic (BBC)"): a small
  logistic regression trained on one view's document embedding, one head per view.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from longformer_core.heads import Head
from longformer_core.reading.document_reading import DocumentReader
from longformer_core.reading.encoding import VIEWS, Progress, embed_texts, run_windows
from longformer_core.reading.results import Located, ModelRun, model_run, windows_run
from longformer_core.similarity import document_embedding

LABEL_TEMPERATURE = 0.05  # cosine differences are small; this makes a 0.05 gap a clear preference


@dataclass(frozen=True)
class Label:
    name: str
    description: str = ""

    @property
    def prompt(self) -> str:
        return f"{self.name}. {self.description}".strip() if self.description else self.name


@dataclass
class ClassifyResult(ModelRun):
    method: str = "zero-shot"  # "zero-shot" | "head"
    scores: dict[str, float] = field(default_factory=dict)  # label -> probability
    evidence: Located | None = None  # the chunk that decided (chunked view)

    @property
    def prediction(self) -> str:
        return max(self.scores, key=self.scores.get) if self.scores else ""

    @property
    def score(self) -> float:
        return self.scores.get(self.prediction, 0.0)


def parse_labels(lines: str | Sequence[str]) -> list[Label]:
    """Labels from user input: one per line (or list item), "name: description" optional.

    Raises:
        ValueError: fewer than two labels, or duplicates, with a message for the user.
    """
    items = lines.splitlines() if isinstance(lines, str) else list(lines)
    labels = []
    for item in items:
        name, _, description = item.partition(":")
        if name.strip():
            labels.append(Label(name.strip(), description.strip()))
    if len(labels) < 2:
        raise ValueError("Give at least two labels, one per line (e.g. 'sports' and 'politics').")
    names = [label.name.lower() for label in labels]
    if len(set(names)) != len(names):
        raise ValueError("Each label must be different: remove the repeated one.")
    return labels


def _softmax(x: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    z = (x - x.max(-1, keepdims=True)) / temperature
    e = np.exp(z)
    return e / e.sum(-1, keepdims=True)


def classify(
    reader: DocumentReader,
    labels: Sequence[Label] = (),
    views: Sequence[str] = VIEWS,
    progress: Progress | None = None,
) -> dict[str, ClassifyResult]:
    """Classify the document with each view.

    Args:
        reader: document + models + strategy.
        labels: labels for zero-shot; ignored by a view whose model has a classification head.
        views: views to run.
        progress: (fraction, message) callback.
    Returns:
        {view: ClassifyResult}.
    """
    results = {}
    for view in views:
        model = reader.model_for(view)
        if model.head == "classification":
            results[view] = classify_with_head(reader, view, progress)
        else:
            if len(labels) < 2:
                raise ValueError("Give at least two labels to choose from.")
            results[view] = classify_zero_shot(reader, labels, view, progress)
    return results


def classify_zero_shot(
    reader: DocumentReader, labels: Sequence[Label], view: str, progress: Progress | None = None
) -> ClassifyResult:
    t0 = time.perf_counter()
    cached = reader.has_pass(view)
    p = reader.encoded(view, progress)
    encode_seconds = 0.0 if cached else time.perf_counter() - t0
    t1 = time.perf_counter()
    label_vecs = embed_texts(reader.pair.baseline, [label.prompt for label in labels])  # (n_labels, hidden)
    evidence = None
    if view == "chunked":
        chunk_vecs = np.stack([p.pooled(s, e) for s, e in p.windows])  # (n_chunks, hidden) float32
        chunk_vecs /= np.linalg.norm(chunk_vecs, axis=1, keepdims=True) + 1e-12
        probs = _softmax(chunk_vecs @ label_vecs.T, LABEL_TEMPERATURE)  # (n_chunks, n_labels)
        best = int(probs.max(1).argmax())
        scores = probs[best]
        evidence = Located.of(reader.document, reader.tokens_for(view).char_span(*p.windows[best]))
    else:
        doc = p.pooled()  # (hidden,) float32 mean of the (float16) token states
        doc /= np.linalg.norm(doc) + 1e-12
        scores = _softmax(label_vecs @ doc, LABEL_TEMPERATURE)
    run = model_run(reader, view, time.perf_counter() - t1, encode_seconds)
    return ClassifyResult(
        **run,
        method="zero-shot",
        scores={label.name: float(s) for label, s in zip(labels, scores)},
        evidence=evidence,
    )


def classify_with_head(reader: DocumentReader, view: str, progress: Progress | None = None) -> ClassifyResult:
    t0 = time.perf_counter()
    model = reader.model_for(view)
    tokens = reader.tokens_for(view)
    all_probs, windows = [], []
    for win, out in run_windows(
        model,
        tokens,
        view,
        doc_global=reader.plan.doc_mask if view == "longformer" else None,
        global_first=True,  # [CLS] global: the paper's classification setting
        progress=progress,
    ):
        all_probs.append(_softmax(out.logits[0].float().cpu().numpy()))
        windows.append(win.doc_range)
    probs = np.stack(all_probs)  # (n_windows, n_labels)
    evidence = None
    if view == "chunked":
        best = int(probs.max(1).argmax())
        scores = probs[best]
        evidence = Located.of(reader.document, tokens.char_span(*windows[best]))
    else:
        scores = probs.mean(0)
    run = windows_run(reader, view, windows[-1][1], time.perf_counter() - t0)
    names = model.labels or [f"label {i}" for i in range(len(scores))]
    return ClassifyResult(
        **run, method="head", scores={n: float(s) for n, s in zip(names, scores)}, evidence=evidence
    )


def heads_for_models(heads: dict[str, Head], pair) -> dict[str, Head]:
    """The heads (by view) that read embeddings of this model pair (a head is tied to one model's embeddings)."""
    from longformer_core.corpus.embed import model_fingerprint

    fingerprint = model_fingerprint(pair)
    return {view: head for view, head in heads.items() if head.model == fingerprint}


def classify_with_trained_heads(
    reader: DocumentReader,
    heads: dict[str, Head],
    views: Sequence[str] = VIEWS,
    progress: Progress | None = None,
) -> dict[str, ClassifyResult]:
    """Classify the document with a trained head per view, each on its own view's document embedding.

    Args:
        reader: document + models + strategy.
        heads: {view: Head} (see heads.bundled_heads); views without a head are left out.
        views: views to run.
        progress: (fraction, message) callback for reading the document.
    Returns:
        {view: ClassifyResult} with method "trained head".
    Raises:
        ValueError: no head fits this model (they were trained on another model's embeddings).
    """
    usable = heads_for_models(heads, reader.pair)
    if not usable:
        raise ValueError(
            "These trained heads read the built-in model's embeddings; the model in use is another one. "
            "Switch to the built-in model, or use your own labels."
        )
    results = {}
    for view in views:
        head = usable.get(view)
        if head is None:
            continue
        t0 = time.perf_counter()
        last4 = head.pooling == "sum-last4"  # the only pooling that needs the last four layers
        cached = reader.has_pass(view, last4)
        reader.encoded(view, progress, last4=last4)
        encode_seconds = 0.0 if cached else time.perf_counter() - t0
        t1 = time.perf_counter()
        scores = head.scores(document_embedding(reader, view, head.pooling))
        run = model_run(reader, view, time.perf_counter() - t1, encode_seconds)
        rows = head.meta.get("rows", "?")
        notes = [
            f"{head.title}: a linear head on the {head.pooling} embedding, trained on {rows} labelled articles."
        ]
        if reader.strategy != head.strategy and view == "longformer":
            notes.append(
                f"Trained with the '{head.strategy}' global attention; this reading uses '{reader.strategy}'."
            )
        results[view] = ClassifyResult(**run, method="trained head", scores=scores, notes=notes)
    return results
