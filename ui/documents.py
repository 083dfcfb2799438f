"""Choosing the document: uploads (with passwords and kept error messages) and the sample documents."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import streamlit as st

from longformer_core.documents import Document, load_document, load_path
from longformer_core.documents.pdf_worker import default_pool
from longformer_core.settings import data_dir
from ui.feedback import attempt, page_progress, user_message
from ui.state import (
    DOCUMENT,
    PASSWORD,
    SAMPLE_CHOICE,
    UPLOADER,
    USE_SAMPLE,
    PdfFile,
    current_document,
    keep_pdf,
    note_upload,
    set_document,
    set_upload_error,
    upload_error,
    widget_key,
)

REPO_ROOT = Path(__file__).resolve().parent.parent
SAMPLES_DIR = REPO_ROOT / "assets" / "samples"
SAMPLE_SUFFIXES = (".md", ".txt", ".pdf")
UPLOAD_TYPES = ["pdf", "txt", "md", "markdown", "text"]


def sample_files() -> dict[str, Path]:
    """Bundled samples and, when present, the public-domain NIST guide: {label shown: path}."""
    samples = {}
    paths = (
        sorted(SAMPLES_DIR.iterdir(), key=lambda p: (p.suffix.lower() != ".md", p.name))
        if SAMPLES_DIR.is_dir()
        else []
    )
    for path in paths:  # the project's own guide first, then the public-domain samples
        if path.suffix.lower() in SAMPLE_SUFFIXES and path.name != "README.md":
            samples[_sample_title(path)] = path
    nist = data_dir() / "pdfs" / "nist_sp800-61r2.pdf"
    if nist.is_file():
        samples["NIST SP 800-61r2: Computer Security Incident Handling Guide (79-page PDF)"] = nist
    return samples


def _sample_title(path: Path) -> str:
    """A Markdown sample's first heading, a sample's title from its questions file, else its file name."""
    meta = path.with_suffix(".questions.json")
    if meta.is_file():
        return f"{json.loads(meta.read_text(encoding='utf-8')).get('title', path.name)} ({path.suffix[1:].upper()} sample)"
    if path.suffix.lower() == ".md":
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.startswith("# "):
                return f"{line[2:].strip()} (sample guide)"
    return path.name


@st.cache_resource(show_spinner="Reading the file...")
def cached_sample(path: str, modified: float) -> Document:
    """A sample document, extracted once for all sessions (`modified` refreshes it when the file changes)."""
    return load_path(path)


@st.cache_resource(show_spinner=False)
def _pdf_worker_warming() -> threading.Thread:
    """Start one PDF worker process in the background, once per server, so that the first PDF uploaded
    does not wait for a fresh interpreter (a second or two)."""
    thread = threading.Thread(target=default_pool().warm, name="pdf-worker-warm", daemon=True)
    thread.start()
    return thread


def require_document(message: str = "Choose a document first.") -> Document:
    """The document in use; without one, say so with a link to the Document page and stop the page."""
    document = current_document()
    if document is None:
        st.info(message)
        st.page_link("pages/document.py", label="Choose a document", icon=":material/description:")
        st.stop()
    return document


def document_picker(slot: str) -> Document | None:
    """Upload a file or pick a sample; the document that loads becomes the slot's document.

    Args:
        slot: session-state key of the document (DOCUMENT for the Document page, SECOND_DOCUMENT on Compare).
    Returns:
        The slot's document (maybe from an earlier run), or None.
    """
    _pdf_worker_warming()
    uploaded = st.file_uploader(
        "Upload a PDF or a text file (.txt, .md)", type=UPLOAD_TYPES, key=widget_key(slot, UPLOADER)
    )
    password = st.text_input(
        "PDF password (only if the file is locked)", type="password", key=widget_key(slot, PASSWORD)
    )
    if uploaded is not None:
        _load_upload(slot, uploaded.file_id, uploaded.getvalue(), uploaded.name, password)
    samples = sample_files()
    if samples:
        left, right = st.columns([3, 1], vertical_alignment="bottom")
        choice = left.selectbox(
            "...or use a sample document", list(samples), key=widget_key(slot, SAMPLE_CHOICE)
        )
        if right.button("Use this sample", key=widget_key(slot, USE_SAMPLE), type="primary"):
            path = samples[choice]
            document = attempt(
                lambda: cached_sample(str(path), path.stat().st_mtime), doing="reading the sample"
            )
            if document is not None:
                _use(slot, document)
    return current_document(slot)


def _use(slot: str, document: Document) -> None:
    """Make `document` the slot's document; rerun so the sidebar (drawn before the page) shows it."""
    changed = current_document(slot) is not document
    set_document(slot, document)
    if changed and slot == DOCUMENT:
        st.rerun()


def _load_upload(slot: str, file_id: str, data: bytes, name: str, password: str) -> None:
    """Load an upload once per (file, password); keep showing its error until the user changes something."""
    if note_upload(slot, file_id, password):
        try:
            with st.spinner(f"Reading {name}..."):  # pages, pages/s and the time left in the sidebar
                document = load_document(data, name, password=password or None, on_page=page_progress(name))
        except Exception as exc:  # noqa: BLE001 - any failure becomes a message (see user_message)
            set_upload_error(slot, user_message(exc, "reading the file"))
        else:
            keep_pdf(
                document, PdfFile(data, password or None)
            )  # the page view renders it (with its password)
            _use(slot, document)
    error = upload_error(slot)
    if error:
        st.error(error)
