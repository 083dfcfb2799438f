"""Bytes -> Document: the text of an uploaded PDF or text file, with page boundaries as char offsets.

Everything downstream (tokenisation, answers, page numbers shown to the user) works on `Document.text`
and maps character offsets back to pages with `Document.page_of`. Loading never lets a raw library
exception escape: every failure is a `DocumentError` whose message tells a non-programmer what happened
and what to do next, so the app can show `str(error)` as is.

The package, by job: `model` (Page, Document), `errors`, `limits`, `loading` (load_document, load_path,
text_document), `decoding` (text files), `pdf` (pypdf extraction, run in a worker process by `longformer_core.documents.pdf_worker`),
and `sentences` (regex `sentence_spans` and `paragraph_spans`, no nltk). The public names are
re-exported here: import them from `longformer_core.documents`.
"""

from longformer_core.documents.decoding import clean_text
from longformer_core.documents.errors import (
    BinaryTextError,
    CorruptPdfError,
    DocumentError,
    DocumentTooLargeError,
    EmptyDocumentError,
    EncryptedPdfError,
    ExtractionTimeoutError,
    ExtractionWorkerError,
    NoTextError,
    UnsupportedFileTypeError,
)
from longformer_core.documents.limits import (
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_CHARS,
    DEFAULT_PAGE_TIME_BUDGET_S,
    MAX_PAGE_CONTENT_BYTES,
    MAX_UPLOAD_ENV,
    PDF_EXTENSIONS,
    TEXT_EXTENSIONS,
)
from longformer_core.documents.loading import default_max_bytes, load_document, load_path, text_document
from longformer_core.documents.model import Document, Page
from longformer_core.documents.pdf import clean_pdf_page_text
from longformer_core.documents.sentences import paragraph_spans, sentence_spans

__all__ = [
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MAX_CHARS",
    "DEFAULT_PAGE_TIME_BUDGET_S",
    "MAX_PAGE_CONTENT_BYTES",
    "MAX_UPLOAD_ENV",
    "PDF_EXTENSIONS",
    "TEXT_EXTENSIONS",
    "BinaryTextError",
    "CorruptPdfError",
    "Document",
    "DocumentError",
    "DocumentTooLargeError",
    "EmptyDocumentError",
    "EncryptedPdfError",
    "ExtractionTimeoutError",
    "ExtractionWorkerError",
    "NoTextError",
    "Page",
    "UnsupportedFileTypeError",
    "clean_pdf_page_text",
    "clean_text",
    "default_max_bytes",
    "load_document",
    "load_path",
    "paragraph_spans",
    "sentence_spans",
    "text_document",
]
