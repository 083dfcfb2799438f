"""Attention page: which words each word can read, and what one word actually reads, on the whole document."""

from __future__ import annotations

import streamlit as st

from ui import attention
from ui.session import page_setup
from ui.state import current_document

settings = page_setup(None)
st.title("Attention: who reads whom")
document = current_document()
if document is None:  # no page link: this page is also run on its own (AppTest), outside st.navigation
    st.info("Choose a document first: open one on the Document page, then come back here.")
    st.stop()
attention.show(settings, document)
