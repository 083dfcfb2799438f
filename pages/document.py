"""Document page: choose the document every other page works on, and see how much of it each model reads."""

from __future__ import annotations

import streamlit as st

from ui.charts import coverage_chart
from ui.documents import document_picker
from ui.feedback import attempt
from ui.render import md, text_box
from ui.session import page_setup
from ui.state import DOCUMENT
from ui.tasks import baseline_reach, longformer_windows, token_count

settings = page_setup(None)
st.title("Your document")
st.markdown(
    "Upload a long PDF or text file, or try a sample. Most language models read only the first "
    "**512 tokens** (small pieces of words, about one page); a **Longformer** reads thousands of tokens "
    "at once. The other pages show what that difference does to answers."
)

document = document_picker(DOCUMENT)

if document is None:
    st.info("No document yet: upload one above or click **Use this sample**.")
    st.stop()

st.divider()
st.subheader(md(document.name))


def show_reach() -> None:
    n_tokens = token_count(document, settings)
    reach = baseline_reach(document, settings)
    windows = longformer_windows(document, settings)
    cols = st.columns(4)
    cols[0].metric("Pages", f"{document.n_pages:,}")
    cols[1].metric("Characters", f"{document.n_chars:,}")
    cols[2].metric(
        "Tokens", f"{n_tokens:,}", help="The small pieces of text a model reads; about 1.3 per word."
    )
    cols[3].metric(
        "A 512-token model sees",
        f"{min(1.0, reach / max(1, n_tokens)):.0%}",
        help="The share of this document that a model limited to 512 tokens can read.",
    )
    st.plotly_chart(
        coverage_chart(n_tokens, reach, settings.pair.longformer.max_tokens),
        config={"displayModeBar": False},
    )
    if windows == 1:
        st.caption("The Longformer reads this whole document in one pass.")
    else:
        st.caption(
            f"This document is longer than the Longformer's limit, so it reads it in {windows} large "
            "overlapping parts."
        )


attempt(show_reach, doing="measuring the document")

st.subheader("First page" if document.kind == "pdf" else "The beginning")
st.html(text_box(document.page_text(1)))
st.page_link("pages/ask.py", label="Ask a question about it", icon=":material/question_answer:")
