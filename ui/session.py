"""Page setup: page config and the shared sidebar (document in use, model, global-attention strategy).

Every page starts with `page_setup(task)` and uses the `Settings` it returns.
"""

from __future__ import annotations

import gc
import re

import streamlit as st

from longformer_core.choices import Task
from longformer_core.documents import Document
from longformer_core.model.registry import EMBEDDED, ModelPair, load_models
from longformer_core.reading.strategies import DEFAULT_EVERY_K, DEFAULT_FOR_TASK, STRATEGIES
from ui.feedback import attempt
from ui.render import md
from ui.state import AUTO, BASELINE_ID, EVERY_K, KEYWORDS, MODEL_ID, STRATEGY, Settings, current_document
from ui.tasks import token_count

TASK_WORDS = {"qa": "questions", "classify": "classification", "similarity": "comparing documents"}


@st.cache_resource(show_spinner="Loading the model (once for everyone using this app)...")
def cached_models(model_id: str, baseline_id: str) -> ModelPair:
    """One copy of each model pair, shared by every session."""
    pair = load_models(model_id or EMBEDDED, baseline=baseline_id or None)
    # The libraries and models are ~440k Python objects that live as long as the server: out of the garbage
    # collector's sight, a full collection (Streamlit runs one after every script run, progress refreshes
    # included) takes about 1 ms instead of 0.3 s with every other thread waiting on it.
    gc.freeze()
    return pair


def parse_keywords(text: str) -> tuple[str, ...]:
    """Keywords typed by the user, separated by commas or new lines."""
    return tuple(k.strip() for k in re.split(r"[,\n]", text) if k.strip())


def _strategy_label(key: str) -> str:
    return "Recommended for each task" if key == AUTO else STRATEGIES[key].label


def _strategy_explanation(choice: str, task: Task | None) -> str:
    if choice != AUTO:
        return STRATEGIES[choice].explanation
    if task is None:
        return (
            "Uses the paper's choices: the words of your question when you ask questions, "
            "the first (summary) token when you classify or compare documents."
        )
    chosen = STRATEGIES[DEFAULT_FOR_TASK[task]]
    return f"For {TASK_WORDS[task]} this is **{chosen.label.lower()}**: {chosen.explanation}"


def _sidebar_models() -> tuple[ModelPair, str]:
    """The model section of the sidebar; falls back to the embedded model when a custom one fails."""
    st.subheader("Model")
    with st.expander("Use another checkpoint"):
        model_id = st.text_input(
            "Longformer checkpoint",
            key=MODEL_ID,
            placeholder="e.g. allenai/longformer-base-4096 or /models/my-longformer",
            help="A Hugging Face id already in this machine's cache, or a folder written by save_pretrained. "
            "Leave empty to use the small offline model that ships with the app.",
        ).strip()
        baseline_id = st.text_input(
            "512-token model to compare with (optional)",
            key=BASELINE_ID,
            placeholder="e.g. roberta-base",
            help="Leave empty to use the checkpoint's usual partner, "
            "or the same model limited to 512 tokens.",
        ).strip()
    if model_id:
        pair = attempt(lambda: cached_models(model_id, baseline_id), doing="loading the model")
        if pair is not None:
            return pair, f"{model_id}|{baseline_id}"
        st.caption("Using the built-in offline model until this is fixed.")
    pair = attempt(lambda: cached_models(EMBEDDED, ""), doing="loading the built-in model")
    if pair is None:
        st.stop()  # nothing works without a model; the message above says why
    return pair, EMBEDDED


def page_setup(task: Task | None) -> Settings:
    """Start a page: page config and the sidebar (document in use, model, global-attention strategy).

    Every page calls this first instead of relying on app.py: Streamlit can run a file in pages/ on its
    own (its "pages directory" mode, e.g. the first request after a restart, and in AppTest), and the
    sidebar must be there all the same.

    Args:
        task: the page's task ("qa", "classify", "similarity"), None on the Document page.
    Returns:
        the models and strategy to use.
    """
    st.set_page_config(
        page_title="Long documents with Longformer", page_icon=":material/menu_book:", layout="wide"
    )
    with st.sidebar:
        summary = st.container()
        pair, model_key = _sidebar_models()
        st.caption(
            f"**{pair.name}**: the Longformer reads up to {pair.longformer.max_tokens:,} tokens at once; "
            f"the model it is compared with reads {pair.baseline.max_tokens}."
        )
        st.subheader("Global attention")
        choice = st.selectbox(
            "Which words read the whole document?",
            [AUTO, *STRATEGIES],
            format_func=_strategy_label,
            key=STRATEGY,
            help="In a Longformer most words only look at their neighbours. A few 'global' words read the "
            "whole document and every word can consult them. This choice decides which words those are.",
        )
        st.caption(_strategy_explanation(choice, task))
        keywords: tuple[str, ...] = ()
        if choice == "keywords":
            keywords = parse_keywords(
                st.text_input(
                    "Keywords (separate with commas)", key=KEYWORDS, placeholder="e.g. retention, evidence"
                )
            )
        every_k = DEFAULT_EVERY_K
        if choice == "every_k":
            every_k = int(
                st.number_input(
                    "k: tokens between signposts", 16, 4096, DEFAULT_EVERY_K, step=16, key=EVERY_K
                )
            )
    settings = Settings(pair, model_key, choice, keywords, every_k)
    with summary:
        attempt(
            lambda: show_document_summary(current_document(), settings),
            doing="counting the document's tokens",
        )
    return settings


def show_document_summary(document: Document | None, settings: Settings) -> None:
    """The sidebar's 'document in use' box (choosing a new document reruns the page, so it shows at once)."""
    st.subheader("Document")
    if document is None:
        st.caption("None yet: choose one on the Document page.")
        return
    st.markdown(f"**{md(document.name)}**")
    st.caption(
        f"{document.n_pages:,} page{'s' * (document.n_pages != 1)} · "
        f"{token_count(document, settings):,} tokens · {document.n_chars:,} characters"
    )
