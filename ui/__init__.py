"""The Streamlit app's shared UI, by concern: state, session (sidebar), feedback, documents, tasks, render,
charts, columns, collection and attention. Pages import the modules they need; none holds model logic."""
