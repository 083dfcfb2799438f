"""Two sessions at once (issue 7): one cached model, each session sees only its own document and answers.

Two `AppTest` sessions run in two threads of this process, the way Streamlit runs two browser tabs: each
script run in its own thread, `st.cache_resource` shared, `st.session_state` per session. The same
scenario against a real server and two browser contexts is in test_browser.py.
"""

from __future__ import annotations

import threading
import time

from streamlit.testing.v1.util import patch_config_options
from test_app import assert_healthy, sidebar_text, start, upload

from longformer_core.model.registry import EMBEDDED
from ui import session

SESSIONS = {
    "ferry.pdf": (
        [
            "Harbour notes\nThe old ferry crosses the bay twice a day.",
            "Weather\nThe lighthouse is painted red and white.",
        ],
        "What colour is the lighthouse?",
        "red and white",
    ),
    "garden.pdf": (
        [
            "Garden diary\nThe roses were planted in April.",
            "Tools\nThe wheelbarrow is kept in the green shed.",
        ],
        "Where is the wheelbarrow kept?",
        "green shed",
    ),
}


def _session(name: str, make_pdf, results: dict, errors: dict, both_started: threading.Barrier) -> None:
    try:
        pages, question, _ = SESSIONS[name]
        both_started.wait(timeout=60)  # start together: both want the model at the same moment
        at = start()
        upload(at, name, make_pdf(pages))
        at.switch_page("pages/ask.py").run()
        at.text_input(key="question").input(question)
        at.button(key="ask_button").click().run()
        results[name] = at
    except BaseException as error:  # noqa: BLE001 - reported by the main thread
        errors[name] = error


def _keep_apptest_runtime(monkeypatch) -> None:
    """AppTest installs a process-wide mock Runtime for each run and sets it back to None when the run
    ends, so one session finishing would pull the Runtime from under the other one's script thread
    ("Runtime hasn't been created!": a harness race, not the app's; a real server has one Runtime).
    Keep answering with the last mock Runtime while the other session still runs."""
    from streamlit.runtime.runtime import Runtime

    last: list = []

    def instance(cls):
        if cls._instance is not None:
            last[:] = [cls._instance]
            return cls._instance
        if last:
            return last[0]
        raise RuntimeError("Runtime hasn't been created!")

    monkeypatch.setattr(Runtime, "instance", classmethod(instance))
    monkeypatch.setattr(Runtime, "exists", classmethod(lambda cls: cls._instance is not None or bool(last)))


def test_two_sessions_at_once_share_one_model_and_keep_their_own_documents(make_pdf, monkeypatch):
    real_load = session.load_models
    loads: list[tuple] = []

    def counting_load(*args, **kwargs):
        loads.append(args)
        time.sleep(0.5)  # widen the window in which the second session also asks for the model
        return real_load(*args, **kwargs)

    monkeypatch.setattr(session, "load_models", counting_load)
    session.cached_models.clear()  # earlier tests in this process may have loaded it already
    _keep_apptest_runtime(monkeypatch)

    results: dict = {}
    errors: dict = {}
    barrier = threading.Barrier(len(SESSIONS))
    threads = [
        threading.Thread(target=_session, args=(name, make_pdf, results, errors, barrier), name=name)
        for name in SESSIONS
    ]
    # AppTest turns the process-wide option global.appTest on for each run and restores the old value
    # afterwards, so one session finishing would switch it off under the other (a harness race, not
    # the app's). Holding it on for the whole test keeps every restore at True.
    with patch_config_options({"global.appTest": True}):
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=600)
    assert not errors, errors
    assert set(results) == set(SESSIONS), "both sessions must finish"

    assert len(loads) == 1, f"the model was loaded {len(loads)} times"
    assert session.cached_models(EMBEDDED, "") is session.cached_models(EMBEDDED, ""), "one shared copy"

    for name, at in results.items():
        other = next(n for n in SESSIONS if n != name)
        _, question, expected = SESSIONS[name]
        _, _, other_answer = SESSIONS[other]
        assert_healthy(at)
        assert at.session_state["document"].name == name
        assert name in sidebar_text(at) and other not in sidebar_text(at)
        history = at.session_state["ask_history"]
        assert [record.question for record in history] == [question]
        assert history[0].source.name == name
        assert expected in history[0].answers["longformer"].result.best.text
        shown = " ".join(h.value for h in at.get("html"))
        assert expected in shown and other_answer not in shown


def test_tokenizer_shared_by_threads_gives_the_same_embeddings(embedded_pair):
    """A background reading and a question use one Rust tokenizer at once: no "Unable to create tensor", and
    every thread gets the embeddings it would get alone."""
    import threading

    import numpy as np

    from longformer_core.reading.encoding import embed_texts, tokenize

    model = embedded_pair.baseline
    texts = [("word " * n).strip() + f" number {n}." for n in (3, 40, 7, 90, 1, 25, 60, 12)]
    alone = embed_texts(model, texts)
    errors: list[BaseException] = []
    outputs: list[np.ndarray] = []

    def embed() -> None:
        try:
            for _ in range(5):
                outputs.append(embed_texts(model, texts))
        except BaseException as exc:  # noqa: BLE001 - the test reports any failure of the thread
            errors.append(exc)

    def read() -> None:
        try:
            for _ in range(5):
                tokenize(model.tokenizer, "A long document line.\n" * 3000)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=embed), threading.Thread(target=embed), threading.Thread(target=read)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert len(outputs) == 10 and all(np.allclose(out, alone, atol=1e-5) for out in outputs)
