"""Session state (ui/state.py): a kept result is returned only for what it was computed from."""

from __future__ import annotations

from typing import get_args

from longformer_core.choices import TASKS, VIEW_NAMES, QAMethod, reads_per_request
from longformer_core.reading.encoding import VIEWS
from longformer_core.reading.strategies import DEFAULT_FOR_TASK
from ui.state import AUTO, COMPARE_LAST, Provenance, Settings, store, stored


def _settings(model_key: str = "embedded", choice: str = AUTO, keywords: tuple[str, ...] = ()) -> Settings:
    return Settings(pair=None, model_key=model_key, strategy_choice=choice, keywords=keywords)  # type: ignore[arg-type]


def test_a_result_is_kept_for_its_documents_model_and_strategy():
    session: dict = {}
    now = _settings().provenance("similarity", "sha-a", "sha-b")
    store(COMPARE_LAST, now, "record", session)
    assert stored(COMPARE_LAST, now, session) == "record"
    assert stored(COMPARE_LAST, _settings().provenance("similarity", "sha-a", "sha-b"), session) == "record"


def test_a_result_is_dropped_when_the_model_document_or_strategy_changes():
    base = _settings().provenance("similarity", "sha-a", "sha-b")
    changes = [
        _settings(model_key="roberta|").provenance("similarity", "sha-a", "sha-b"),
        _settings().provenance("similarity", "sha-a", "sha-c"),
        _settings(choice="sentences").provenance("similarity", "sha-a", "sha-b"),
    ]
    for changed in changes:
        session: dict = {}
        store(COMPARE_LAST, base, "record", session)
        assert stored(COMPARE_LAST, changed, session) is None
        assert COMPARE_LAST not in session, "a stale result is dropped, not kept for later"


def test_provenance_ignores_parameters_of_strategies_not_in_use():
    plain = _settings().provenance("qa", "sha")
    assert _settings(keywords=("x",)).provenance("qa", "sha") == plain  # keywords unused by "question"
    typed = _settings(choice="keywords", keywords=("x",)).provenance("qa", "sha")
    assert typed.keywords == ("x",) and typed != _settings(choice="keywords", keywords=("y",)).provenance(
        "qa", "sha"
    )
    assert plain == Provenance(("sha",), "embedded", DEFAULT_FOR_TASK["qa"])


def test_vocabularies_match_the_core():
    assert VIEW_NAMES == VIEWS
    assert set(TASKS) == set(DEFAULT_FOR_TASK)
    assert [m for m in get_args(QAMethod) if reads_per_request(m)] == ["span"]
    assert reads_per_request("head") and not reads_per_request("trained head")
