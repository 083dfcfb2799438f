"""The answer on the PDF page: render a page with pypdfium2 and outline where given passages sit on it.

The app's `Document.text` comes from pypdf's `extract_text()` (cleaned: spaces collapsed, line-end hyphens
joined, pages joined by a blank line), while the boxes come from PDFium's text layer, whose characters are
counted differently (its own spacing, generated line breaks, ligatures). So a document span is mapped
to PDFium's characters on the same page by comparing the two texts with only letters and digits kept
(NFKC, case-folded): the span's normalised text is searched on PDFium's page (the occurrence nearest its
expected position wins), and when the two extractions differ, difflib's matching blocks map its ends.
Character boxes of the matched PDFium characters are merged into one rectangle per line
(`FPDFText_CountRects`).
"""

from __future__ import annotations

import bisect
import difflib
import threading
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache

from PIL import Image, ImageDraw

from longformer_core.documents import Document

DEFAULT_SCALE = 1.5  # pixels per PDF point (72 dpi -> 108 dpi)
MAX_RENDER_PIXELS = 40_000_000  # a page larger than this is rendered at a smaller scale
COLORS = {"answer": (220, 38, 38), "evidence": (245, 158, 11)}  # outline colour per box kind (RGB)
_PDFIUM_LOCK = threading.Lock()  # PDFium is not thread-safe: one call at a time in this process


@dataclass(frozen=True)
class Box:
    """One outlined rectangle on a rendered page."""

    page: int  # 1-based
    kind: str  # "answer" | "evidence"
    rect: tuple[float, float, float, float]  # (left, top, right, bottom) in image pixels
    label: str = ""


@dataclass
class PageView:
    """A rendered page and the boxes drawn on it."""

    page: int  # 1-based
    image: Image.Image  # RGB, outlines drawn
    boxes: list[Box] = field(default_factory=list)
    scale: float = DEFAULT_SCALE


def _normalised(chars: Sequence[str]) -> tuple[str, list[int]]:
    """Letters and digits of `chars` (NFKC, case-folded) and, per kept character, the index it came from."""
    out: list[str] = []
    where: list[int] = []
    for i, ch in enumerate(chars):
        for c in unicodedata.normalize("NFKC", ch).casefold():
            if c.isalnum():
                out.append(c)
                where.append(i)
    return "".join(out), where


class PdfPages:
    """One PDF opened with PDFium, its pages' text layers cached.

    Args:
        data: the PDF's bytes (the same file the Document was extracted from).
        password: for an encrypted PDF.
    Raises:
        ValueError: PDFium cannot open the file.
    """

    def __init__(self, data: bytes, password: str | None = None) -> None:
        import pypdfium2 as pdfium

        self._pdfium = pdfium
        with _PDFIUM_LOCK:
            try:
                self._pdf = pdfium.PdfDocument(data, password=password)
            except pdfium.PdfiumError as exc:
                raise ValueError(f"This PDF could not be opened to show its pages ({exc}).") from exc
            self.n_pages = len(self._pdf)
        self._chars: dict[int, tuple[str, list[int]]] = {}

    def _page_norm(self, index: int) -> tuple[str, list[int]]:
        """Normalised text of page `index` (0-based) and the PDFium char index of each normalised char."""
        if index not in self._chars:
            with _PDFIUM_LOCK:
                textpage = self._pdf[index].get_textpage()
                n = textpage.count_chars()
                raw = self._pdfium.raw
                chars = [chr(raw.FPDFText_GetUnicode(textpage.raw, i) or 32) for i in range(n)]
            self._chars[index] = _normalised(chars)
        return self._chars[index]

    def locate(self, document: Document, span: tuple[int, int]) -> list[tuple[int, int, int]]:
        """PDFium character ranges holding a document span.

        Args:
            document: the Document extracted from this PDF (`documents.load_document`).
            span: [start, end) character offsets in `document.text`.
        Returns:
            [(page 1-based, first PDFium char, last PDFium char inclusive)], one per page the span touches
            and could be found on (empty when the text layer does not hold it).
        """
        a, b = span
        found = []
        for index in range(document.page_index_of(a), document.page_index_of(max(a, b - 1)) + 1):
            page = document.pages[index]
            la, lb = max(a, page.start) - page.start, min(b, page.end) - page.start
            if lb <= la or index >= self.n_pages:
                continue
            doc_norm, doc_where = _normalised(document.text[page.start : page.end])
            n0 = bisect.bisect_left(doc_where, la)
            n1 = bisect.bisect_left(doc_where, lb)
            if n1 <= n0:
                continue
            pdf_norm, pdf_where = self._page_norm(index)
            hit = _find(doc_norm, pdf_norm, n0, n1)
            if hit is not None:
                found.append((index + 1, pdf_where[hit[0]], pdf_where[hit[1] - 1]))
        return found

    def rects(self, page: int, first: int, last: int) -> list[tuple[float, float, float, float]]:
        """Line rectangles (left, bottom, right, top) in PDF points of PDFium chars [first, last] on a page."""
        with _PDFIUM_LOCK:
            textpage = self._pdf[page - 1].get_textpage()
            n = textpage.count_rects(first, last - first + 1)
            return [tuple(textpage.get_rect(i)) for i in range(n)]

    def page_size(self, page: int) -> tuple[float, float]:
        """(width, height) of a page in PDF points."""
        with _PDFIUM_LOCK:
            return tuple(self._pdf[page - 1].get_size())

    def render(
        self,
        document: Document,
        page: int,
        spans: Sequence[tuple[str, tuple[int, int]]] = (),
        scale: float = DEFAULT_SCALE,
    ) -> PageView:
        """Render one page with the parts of `spans` that lie on it outlined.

        Args:
            document: the Document extracted from this PDF.
            page: 1-based page number.
            spans: (kind, char span) pairs, kind "answer" or "evidence"; drawn evidence first, answer on top.
            scale: pixels per PDF point.
        Returns:
            PageView with the RGB image and the boxes (image pixels; origin top left).
        """
        if not 1 <= page <= self.n_pages:
            raise ValueError(f"This PDF has pages 1 to {self.n_pages}; page {page} does not exist.")
        width, height = self.page_size(page)
        scale = min(scale, (MAX_RENDER_PIXELS / max(1.0, width * height)) ** 0.5)
        with _PDFIUM_LOCK:
            image = self._pdf[page - 1].render(scale=scale).to_pil().convert("RGB")
        boxes: list[Box] = []
        for n, (kind, span) in enumerate(sorted(spans, key=lambda s: s[0] == "answer")):
            for p, first, last in self.locate(document, span):
                if p != page:
                    continue
                for left, bottom, right, top in self.rects(p, first, last):
                    rect = (left * scale, (height - top) * scale, right * scale, (height - bottom) * scale)
                    boxes.append(
                        Box(page, kind, rect, label=kind if kind == "answer" else f"evidence {n + 1}")
                    )
        return PageView(page, draw_boxes(image, boxes), boxes, scale)


def draw_boxes(image: Image.Image, boxes: Sequence[Box], pad: float = 2.0) -> Image.Image:
    """Outline each box on a copy of `image` (answer red and thick, evidence amber and translucent)."""
    base = image.convert("RGBA")
    overlay = Image.new("RGBA", base.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(overlay)
    for box in boxes:
        r, g, b = COLORS.get(box.kind, (59, 130, 246))
        left, top, right, bottom = box.rect
        rect = (left - pad, top - pad, right + pad, bottom + pad)
        thick = box.kind == "answer"
        draw.rectangle(
            rect, fill=(r, g, b, 40 if thick else 28), outline=(r, g, b, 255), width=3 if thick else 2
        )
    return Image.alpha_composite(base, overlay).convert("RGB")


def _find(doc_norm: str, pdf_norm: str, n0: int, n1: int) -> tuple[int, int] | None:
    """Where doc_norm[n0:n1] is in pdf_norm: [start, end) in pdf_norm, or None.

    An exact occurrence nearest the expected place wins; otherwise the ends are mapped through the
    matching blocks of the two texts (the extractions differ: reading order, dropped characters).
    """
    needle = doc_norm[n0:n1]
    expected = n0 * len(pdf_norm) / max(1, len(doc_norm))
    best, start = None, pdf_norm.find(needle)
    while start != -1:
        if best is None or abs(start - expected) < abs(best - expected):
            best = start
        start = pdf_norm.find(needle, start + 1)
    if best is not None:
        return best, best + len(needle)
    blocks = _matching_blocks(doc_norm, pdf_norm)
    first, last, matched = None, None, 0
    for a, b, size in blocks:
        lo, hi = max(a, n0), min(a + size, n1)
        if hi > lo:
            first = b + lo - a if first is None else first
            last = b + hi - a
            matched += hi - lo
    if first is None or matched < max(1, (n1 - n0) // 2):  # under half the span found: not on this page
        return None
    return first, last


@lru_cache(maxsize=64)
def _matching_blocks(doc_norm: str, pdf_norm: str) -> list[tuple[int, int, int]]:
    matcher = difflib.SequenceMatcher(None, doc_norm, pdf_norm, autojunk=False)
    return [(m.a, m.b, m.size) for m in matcher.get_matching_blocks() if m.size]


def answer_page_spans(
    answer_span: tuple[int, int], evidence_spans: Sequence[tuple[int, int]] = ()
) -> list[tuple[str, tuple[int, int]]]:
    """The (kind, span) list `PdfPages.render` takes: the answer and its evidence passages."""
    return [("answer", tuple(answer_span))] + [("evidence", tuple(s)) for s in evidence_spans]
