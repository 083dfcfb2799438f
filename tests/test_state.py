"""Session state (ui/state.py): a kept result is returned only for what it was computed from, and no other module
touches the session or names a session key itself."""

from __future__ import annotations

import ast
import textwrap
from pathlib import Path
from typing import get_args

from longformer_core.choices import TASKS, VIEW_NAMES, QAMethod, reads_per_request
from longformer_core.reading.encoding import VIEWS
from longformer_core.reading.strategies import DEFAULT_FOR_TASK
from ui.state import AUTO, COMPARE_LAST, Provenance, Settings, store, stored

REPO_ROOT = Path(__file__).resolve().parent.parent


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


# --------------------------------------------------------------------------------------------------
# Every session key is named in ui/state.py (the rule its docstring states).

STATE_MODULE = "ui/state.py"
# Calls whose key= is a sort key, not a widget's.
SORT_CALLS = {
    "sorted",
    "sort",
    "min",
    "max",
    "nlargest",
    "nsmallest",
    "groupby",
    "bisect_left",
    "bisect_right",
}


def _ui_sources() -> dict[str, str]:
    """{path: source} of app.py and every module of ui/ and pages/ but ui/state.py."""
    paths = [
        REPO_ROOT / "app.py",
        *sorted((REPO_ROOT / "ui").glob("*.py")),
        *sorted((REPO_ROOT / "pages").glob("*.py")),
    ]
    return {
        p.relative_to(REPO_ROOT).as_posix(): p.read_text(encoding="utf-8")
        for p in paths
        if p.relative_to(REPO_ROOT).as_posix() != STATE_MODULE
    }


def _state_names(tree: ast.Module) -> tuple[set[str], set[str]]:
    """(names imported from ui.state, local names of the ui.state module itself) in one module."""
    names, modules = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "ui.state":
            names |= {a.asname or a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module == "ui":
            modules |= {a.asname or a.name for a in node.names if a.name == "state"}
        elif isinstance(node, ast.Import):
            modules |= {a.asname for a in node.names if a.name == "ui.state" and a.asname}
    return names, modules


def _names_a_state_key(node: ast.expr, names: set[str], modules: set[str]) -> bool:
    """A key given as a ui.state constant, a call of a ui.state function without string literals, or either
    of two such keys (`a if cond else b`)."""
    if isinstance(node, ast.Name):
        return node.id in names
    if isinstance(node, ast.Attribute):
        return isinstance(node.value, ast.Name) and node.value.id in modules
    if isinstance(node, ast.IfExp):
        return _names_a_state_key(node.body, names, modules) and _names_a_state_key(
            node.orelse, names, modules
        )
    if isinstance(node, ast.Call):
        literal = any(
            isinstance(a, ast.JoinedStr) or (isinstance(a, ast.Constant) and isinstance(a.value, str))
            for a in [*node.args, *(k.value for k in node.keywords)]
        )
        return not literal and _names_a_state_key(node.func, names, modules)
    return False


def session_key_offences(source: str) -> list[str]:
    """Where a module touches the session itself or names a widget key that is not from ui.state.

    Checked: any `session_state` (attribute, name or import); every `key=` argument but sort keys; the key of
    `st.form(...)`. Each must be a name imported from ui.state, `state.NAME`, or a call of a ui.state function
    (`widget_key(slot, UPLOADER)`) with no string literal among its arguments.
    """
    tree = ast.parse(source)
    names, modules = _state_names(tree)
    found = []
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and node.attr == "session_state") or (
            isinstance(node, ast.Name) and node.id == "session_state"
        ):
            found.append(f"line {node.lineno}: session_state")
        elif isinstance(node, ast.ImportFrom) and any(a.name == "session_state" for a in node.names):
            found.append(f"line {node.lineno}: imports session_state")
        elif isinstance(node, ast.Call):
            func = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            keys = [k.value for k in node.keywords if k.arg == "key" and func not in SORT_CALLS]
            if func == "form" and node.args:
                keys.append(node.args[0])
            found += [
                f"line {node.lineno}: {func}(key={ast.unparse(k)})"
                for k in keys
                if not _names_a_state_key(k, names, modules)
            ]
    return sorted(found, key=lambda f: int(f.split(":")[0].removeprefix("line ")))


def test_the_key_check_sees_what_it_forbids():
    source = textwrap.dedent(
        """
        import streamlit as st
        from streamlit import session_state
        from ui import state
        from ui.state import QUESTION, widget_key
        st.session_state["document"] = None
        st.text_input("q", key=QUESTION)
        st.button("b", key="ask_button")
        st.plotly_chart(fig, key=f"seen_{view}")
        st.slider("s", key=widget_key("attn", view))
        st.radio("r", key=state.POOLING)
        st.selectbox("m", key=LOCAL_KEY)
        with st.form("ask"):
            pass
        sorted(rows, key=lambda r: r[0])
        """
    )
    offences = session_key_offences(source)
    assert [o.split(": ", 1)[1] for o in offences] == [
        "imports session_state",
        "session_state",
        "button(key='ask_button')",
        "plotly_chart(key=f'seen_{view}')",
        "slider(key=widget_key('attn', view))",
        "selectbox(key=LOCAL_KEY)",
        "form(key='ask')",
    ]


def test_only_ui_state_touches_the_session_and_names_its_keys():
    """Session keys and their provenance stay in one module (docs/app.md, "Session state")."""
    offences = {
        path: found for path, source in _ui_sources().items() if (found := session_key_offences(source))
    }
    assert not offences, (
        f"{offences}: read and write the session through accessors of ui/state.py, and name widget keys "
        "there (a constant with a comment, or widget_key(CONSTANT, view) for one widget per view or slot)."
    )


def test_state_keys_are_distinct():
    """Two constants with one value would make two widgets (or a widget and a result) share a session entry."""
    tree = ast.parse((REPO_ROOT / STATE_MODULE).read_text(encoding="utf-8"))
    values: dict[str, list[str]] = {}
    for node in tree.body:
        if (
            isinstance(node, ast.Assign)
            and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, str)
            and all(isinstance(t, ast.Name) and t.id.isupper() for t in node.targets)
        ):
            values.setdefault(node.value.value, []).extend(t.id for t in node.targets)
    assert len(values) > 60
    assert not {v: n for v, n in values.items() if len(n) > 1}
