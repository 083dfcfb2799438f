"""Collection page: many documents at once: clusters, a map, neighbours and recommendations, per model."""

from __future__ import annotations

import streamlit as st

from ui.collection import current_collection, read_section, show_collection
from ui.session import page_setup

settings = page_setup("similarity")
st.title("Explore a collection")
st.markdown(
    "Upload many documents at once (a CSV file with one article per row, or several PDF or text files). "
    "Each model turns every document into a list of numbers; documents with similar meaning end up close "
    "together. You get groups of similar documents (clusters), a map, the nearest neighbours of any "
    "document, and recommendations, for the Longformer and for the model that reads only the first 512 tokens."
)
read_section(settings)
state = current_collection(settings)
if state is None:
    st.info("Upload a CSV file or some documents, then press the button.")
    st.stop()
show_collection(state, settings)
