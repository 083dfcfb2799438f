"""Limits of what is read: upload size, characters, one PDF page's content and time."""

from __future__ import annotations

import logging

logger = logging.getLogger(__name__)

# Refuse uploads bigger than this (override: LONGDOC_MAX_UPLOAD_MB); a 1,500-page book with figures fits.
DEFAULT_MAX_BYTES = 200 * 1024 * 1024
# ~1.5M tokens of English (4.1-5 characters a token): the token limit of the embedded pair with room for PDF
# whitespace; a 1,500-page book fits. The token limit is the one that protects memory (reading/document_reading).
DEFAULT_MAX_CHARS = 8_000_000
MAX_PAGE_CONTENT_BYTES = 50 * 1024 * 1024  # decoded drawing data of one PDF page; more is a zip bomb
# One page of real text takes milliseconds (NIST SP 800-61: 79 pages in ~5 s); a page that takes seconds
# is a crafted one, e.g. tens of MB of drawing commands that unpack from a few kB (under the limit above).
DEFAULT_PAGE_TIME_BUDGET_S = 5.0
# The whole PDF: a minute, plus this much per page once the page count is known (pypdf reads ~60 pages/s on two
# cores, 0.017 s a page: 0.2 s leaves a wide margin on a busy server; a 1,221-page manual gets ~5 minutes).
DEFAULT_DOCUMENT_TIME_BUDGET_S = 60.0
DOCUMENT_TIME_BUDGET_PER_PAGE_S = 0.2
MAX_UPLOAD_ENV = "LONGDOC_MAX_UPLOAD_MB"

TEXT_EXTENSIONS = frozenset({".txt", ".md", ".markdown", ".text"})
PDF_EXTENSIONS = frozenset({".pdf"})

# Below these a PDF is treated as scanned (images of pages, no text layer).
_MIN_PDF_CHARS = 20
_MIN_PDF_CHARS_PER_PAGE = 5.0

# Text files whose decoded characters are more than this share of control characters are binary.
_MAX_CONTROL_RATIO = 0.02
# cp1252 decodes almost any byte string; real legacy text is still mostly ASCII.
_MAX_CP1252_NON_ASCII_RATIO = 0.3


def document_time_budget_s(n_pages: int) -> float:
    """Seconds a PDF of `n_pages` pages may take to read (DEFAULT_DOCUMENT_TIME_BUDGET_S plus
    DOCUMENT_TIME_BUDGET_PER_PAGE_S a page)."""
    return DEFAULT_DOCUMENT_TIME_BUDGET_S + DOCUMENT_TIME_BUDGET_PER_PAGE_S * n_pages
