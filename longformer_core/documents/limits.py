"""Limits of what is read: upload size, characters, one PDF page's content and time."""

from __future__ import annotations

import logging

logger = logging.getLogger(__name__)

DEFAULT_MAX_BYTES = 50 * 1024 * 1024  # refuse uploads bigger than this (override: LONGDOC_MAX_UPLOAD_MB)
DEFAULT_MAX_CHARS = 2_000_000  # ~400k words: far beyond any model's context, and still fast to split
MAX_PAGE_CONTENT_BYTES = 50 * 1024 * 1024  # decoded drawing data of one PDF page; more is a zip bomb
# One page of real text takes milliseconds (NIST SP 800-61: 79 pages in ~5 s); a page that takes seconds
# is a crafted one, e.g. tens of MB of drawing commands that unpack from a few kB (under the limit above).
DEFAULT_PAGE_TIME_BUDGET_S = 5.0
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
