"""The words the app and the library use for their choices, as types a checker and a reader can follow.

Plain strings stay the values (they are in saved JSON, CLI flags and session state); these `Literal`
types only name the allowed ones in one place.
"""

from __future__ import annotations

from typing import Literal, get_args

View = Literal["truncated", "chunked", "longformer"]  # how a document is read (encoding.VIEWS)
Task = Literal["qa", "classify", "similarity"]  # what a page does with the document
ModelHead = Literal["none", "qa", "classification"]  # the task head a checkpoint brings (models.LoadedModel)
QAMethod = Literal["sentence", "span", "retrieve-then-read", "long-window"]  # qa.QAResult.method
ClassifyMethod = Literal["zero-shot", "head", "trained head"]  # classify.ClassifyResult.method
AnswerMethod = QAMethod | ClassifyMethod

VIEW_NAMES: tuple[View, ...] = get_args(View)
TASKS: tuple[Task, ...] = get_args(Task)

# Methods that run the model again for every request (a model's own QA or classification head) instead of
# reusing the document's one cached pass per view.
_PER_REQUEST: frozenset[str] = frozenset({"span", "head"})


def reads_per_request(method: str) -> bool:
    """Whether a result computed by `method` ran its own pass per request (no one-off document reading).

    Args:
        method: a `QAResult.method` or `ClassifyResult.method`.
    Returns:
        True for a checkpoint's own QA head ("span") or classification head ("head").
    """
    return method in _PER_REQUEST
