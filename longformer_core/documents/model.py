"""The document model: a `Document` is text with pages as character ranges."""

from __future__ import annotations

import bisect
import functools
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from longformer_core.documents.tables import Table

logger = logging.getLogger(__name__)

# --------------------------------------------------------------------------------------------------
# Data types


@dataclass(frozen=True)
class Page:
    """One page of a document as a half-open range of `Document.text`."""

    start: int  # char offset in Document.text (inclusive)
    end: int  # exclusive; separators between pages belong to no page
    label: str  # printed page label from the PDF (/PageLabels), else "1", "2", ...


@dataclass(frozen=True)
class Document:
    """Extracted text of one uploaded file, with page boundaries.

    Build one with `load_document`, `load_path` or `text_document` rather than by hand.
    """

    text: str
    pages: tuple[Page, ...]  # in order, non-overlapping; at least one
    name: str  # file name shown to users
    kind: str  # "pdf" | "text"
    sha256: str  # of the original bytes (text_document: of the UTF-8 text); a cache key
    tables: tuple[Table, ...] = ()  # tables of a PDF, cells as spans of `text` (documents.tables)

    def __post_init__(self) -> None:
        if not self.pages:
            raise ValueError("Document needs at least one Page (use Page(0, len(text), '1') for plain text).")

    @functools.cached_property
    def _page_starts(self) -> list[int]:
        # cached_property writes straight into __dict__, so it works on a frozen dataclass.
        return [page.start for page in self.pages]

    @property
    def n_pages(self) -> int:
        """Number of pages (1 for text files)."""
        return len(self.pages)

    @property
    def n_chars(self) -> int:
        """Number of characters in `text`."""
        return len(self.text)

    def page_index_of(self, char_offset: int) -> int:
        """0-based index of the page holding `char_offset` (see `page_of`)."""
        index = bisect.bisect_right(self._page_starts, char_offset) - 1
        return min(max(index, 0), len(self.pages) - 1)

    def page_of(self, char_offset: int) -> int:
        """1-based page number holding a character offset.

        Args:
            char_offset: offset into `text`. Negative offsets count as the first page, offsets at or
                past the end as the last page; an offset in the blank separator between two pages
                belongs to the page before it.

        Returns:
            The page number, 1 .. n_pages (a position in the file, not the printed label).
        """
        return self.page_index_of(char_offset) + 1

    def page_label_of(self, char_offset: int) -> str:
        """Printed label (e.g. "iv", "12", "A-3") of the page holding `char_offset`.

        Args:
            char_offset: offset into `text`, clamped as in `page_of`.

        Returns:
            The page's label; PDFs without /PageLabels give "1", "2", ...
        """
        return self.pages[self.page_index_of(char_offset)].label

    def page_text(self, page_number: int) -> str:
        """Text of one page.

        Args:
            page_number: 1-based page number.

        Returns:
            The page's text (may be "" for a blank page).
        """
        if not 1 <= page_number <= len(self.pages):
            raise IndexError(f"page_number must be in 1..{len(self.pages)}, got {page_number}")
        page = self.pages[page_number - 1]
        return self.text[page.start : page.end]
