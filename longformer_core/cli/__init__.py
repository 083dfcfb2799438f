"""The command line, one module per command group; `python -m longformer_core` (`__main__.py`) holds the table."""
