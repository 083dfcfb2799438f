"""Small trained classification heads on document embeddings: fit, save, load, apply.

A head is a multinomial logistic regression on the L2-normalised document embedding of one view and
pooling: `probabilities = softmax(coef @ vector + intercept)`. Feature scaling is folded into `coef`
and `intercept`, so applying a head needs numpy only. A head file (`.npz`, a few KB) holds the
coefficients, the classes, the view, pooling and strategy it was trained for, the fingerprint of the
model whose embeddings it expects, the command that rebuilds it and its cross-validated scores.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

HEADS_DIR = Path(__file__).resolve().parent.parent / "assets" / "heads"
C_GRID = (0.01, 0.1, 1.0)  # inverse regularisation strengths tried by the inner cross-validation


@dataclass
class Head:
    """A fitted linear head for one view and pooling."""

    task: str  # "hyperpartisan" | "bbc" | ...
    title: str  # what the app calls it ("Hyperpartisan news?")
    view: str
    pooling: str
    strategy: str  # the Longformer's global attention when the training embeddings were made
    model: str  # corpus.model_fingerprint of the models whose embeddings it reads
    classes: list[str]  # raw labels, in coef row order
    display: dict[str, str]  # raw label -> what the user sees
    coef: np.ndarray  # (n_classes, hidden) float32
    intercept: np.ndarray  # (n_classes,) float32
    meta: dict = field(default_factory=dict)  # rebuild command, CV scores, rows, C

    def probabilities(self, vectors: np.ndarray) -> np.ndarray:
        """(n, n_classes) class probabilities for (n, hidden) or (hidden,) embeddings."""
        x = np.atleast_2d(np.asarray(vectors, dtype=np.float32))
        if x.shape[1] != self.coef.shape[1]:
            raise ValueError(
                f"This head reads {self.coef.shape[1]}-number embeddings but the model gives {x.shape[1]}: "
                "it was trained for another model."
            )
        z = x @ self.coef.T + self.intercept
        z -= z.max(1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(1, keepdims=True)

    def predict(self, vectors: np.ndarray) -> list[str]:
        return [self.classes[i] for i in self.probabilities(vectors).argmax(1)]

    def scores(self, vector: np.ndarray) -> dict[str, float]:
        """{display label: probability} for one embedding."""
        probs = self.probabilities(vector)[0]
        return {self.display.get(c, c): float(p) for c, p in zip(self.classes, probs)}

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        info = {
            k: getattr(self, k)
            for k in ("task", "title", "view", "pooling", "strategy", "model", "classes", "display")
        }
        info["meta"] = self.meta
        np.savez_compressed(
            path,
            coef=self.coef.astype(np.float32),
            intercept=self.intercept.astype(np.float32),
            info=np.array(json.dumps(info, indent=1)),
        )
        return path


def load_head(path: str | Path) -> Head:
    """Read a head file written by `Head.save`.

    Raises:
        ValueError: the file is missing or is not a head file.
    """
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            info = json.loads(str(data["info"]))
            coef, intercept = data["coef"], data["intercept"]
    except (OSError, KeyError, ValueError) as exc:
        raise ValueError(
            f"'{path}' is not a head file (expected a .npz written by the evaluate command): {exc}"
        ) from exc
    return Head(coef=coef, intercept=intercept, **info)


def bundled_heads(directory: str | Path = HEADS_DIR) -> dict[str, dict[str, Head]]:
    """The heads shipped in assets/heads: {task: {view: Head}}."""
    heads: dict[str, dict[str, Head]] = {}
    for path in sorted(Path(directory).glob("*.npz")):
        head = load_head(path)
        heads.setdefault(head.task, {})[head.view] = head
    return heads


def fit_linear(
    x: np.ndarray, y: list[str], seed: int = 0, c: float | None = None
) -> tuple[np.ndarray, np.ndarray, list[str], float]:
    """Standardise, fit a logistic regression (C chosen by inner 3-fold CV), fold the scaling into the weights.

    Args:
        x: (n, hidden) embeddings.
        y: n labels.
        seed: for the inner folds.
        c: a fixed C instead of the inner search (ten times fewer fits).
    Returns:
        (coef (n_classes, hidden), intercept (n_classes,), classes, C).
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import f1_score
    from sklearn.model_selection import StratifiedKFold
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(x)
    xs = scaler.transform(x)
    y = np.asarray(y)
    n_inner = min(3, int(np.unique(y, return_counts=True)[1].min()))
    fixed = c is not None
    c = (
        c if fixed else C_GRID[len(C_GRID) // 2]
    )  # too few rows of some label to choose: the middle of the grid
    if n_inner >= 2 and not fixed:
        inner = list(StratifiedKFold(n_splits=n_inner, shuffle=True, random_state=seed).split(xs, y))
        scores = []
        for candidate in C_GRID:
            f1s = [
                f1_score(
                    y[te],
                    LogisticRegression(C=candidate, max_iter=3000).fit(xs[tr], y[tr]).predict(xs[te]),
                    average="macro",
                )
                for tr, te in inner
            ]
            scores.append(float(np.mean(f1s)))
        c = C_GRID[int(np.argmax(scores))]
    model = LogisticRegression(C=c, max_iter=3000).fit(xs, y)
    coef, intercept = model.coef_, model.intercept_
    if coef.shape[0] == 1:  # binary: sigmoid(w x + b) == softmax over rows (0, w x + b)
        coef = np.vstack([np.zeros_like(coef), coef])
        intercept = np.concatenate([[0.0], intercept])
    scale = scaler.scale_
    folded = coef / scale  # (n_classes, hidden)
    bias = intercept - folded @ scaler.mean_
    return folded.astype(np.float32), bias.astype(np.float32), [str(k) for k in model.classes_], c
