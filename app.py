"""Explore long documents with Longformer: entry point of the Streamlit app (`streamlit run app.py`).

This file only lists the pages. Each page draws the shared sidebar itself (ui.session.page_setup), the
shared UI helpers are in the ui/ package and the models in longformer_core/.
"""

from __future__ import annotations

from longformer_core.machine import let_idle_torch_threads_sleep, share_the_interpreter_finely

# Before anything imports torch (the imports below do): its threads will sleep between ops, not spin.
let_idle_torch_threads_sleep()

import streamlit as st

from longformer_core.reading.priority import foreground
from ui.explain import cached_samples

PAGES = [
    st.Page("pages/document.py", title="Document", icon=":material/description:", default=True),
    st.Page("pages/ask.py", title="Ask", icon=":material/question_answer:"),
    st.Page("pages/classify.py", title="Classify", icon=":material/label:"),
    st.Page("pages/compare.py", title="Compare", icon=":material/compare:"),
    st.Page("pages/collection.py", title="Collection", icon=":material/hub:"),
    st.Page("pages/attention.py", title="Attention", icon=":material/visibility:"),
]

share_the_interpreter_finely()  # sessions' threads take turns on the GIL every 0.25 ms, not 5 ms
cached_samples()  # the bundled samples are read once per server process, so a demo never waits for them
# Someone waits for every page run: background readings (a book takes minutes) pause at their next layer until
# the page is drawn. A page that waits for a reading itself stops counting while it waits (priority.py).
with foreground():
    st.navigation(PAGES).run()
