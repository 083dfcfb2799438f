"""longformer_core: the library behind the long-document explorer. Never imports streamlit."""

__version__ = "0.1.0"
