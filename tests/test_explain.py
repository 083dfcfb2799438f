"""Evidence for an answer (gradient x input per passage, occlusion check) and the answer on the PDF page."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from longformer_core.documents import load_document, text_document
from longformer_core.documents.page_view import PdfPages
from longformer_core.model.registry import ModelPair, load_checkpoint
from longformer_core.qa.evidence import Evidence, explain, explain_answer, page_strip
from longformer_core.reading.document_reading import DocumentReader
from longformer_core.reading.encoding import build_input, model_kwargs
from longformer_core.reading.results import Located

FILLER = (
    "The committee met again to review the quarterly schedule and the budget of the regional office. "
    "Members discussed staffing, travel plans and the maintenance of the old building on the hill. "
)
DEEP_FACT = "The lighthouse keeper Marguerite Olsen painted the tower bright green in 1911."
DEEP_TEXT = FILLER * 30 + DEEP_FACT + " " + FILLER * 5


@pytest.fixture(scope="module")
def tiny_reader(tiny_checkpoint):
    long = load_checkpoint(str(tiny_checkpoint("longformer-qa")))
    pair = ModelPair(longformer=long, baseline=long.limited_to(512), name="tiny")
    text = " ".join(f"Sentence number {i} says the capital of France is Paris." for i in range(60))
    return DocumentReader(pair, text_document(text, "tiny.txt"), strategy="question")


def test_gradient_times_input_is_the_autograd_gradient(tiny_reader, monkeypatch):
    """Passage scores are sums of d(start+end logit)/d(embedding) . embedding over the passage's tokens."""
    monkeypatch.setattr(tiny_reader.pair.longformer, "dtype", torch.float32)  # exact arithmetic to compare
    text = tiny_reader.document.text
    a = text.index("Paris", len(text) // 2)
    answer = Located.of(tiny_reader.document, (a, a + 5))
    question = "What is the capital of France?"
    ex = explain_answer(tiny_reader, "longformer", question, answer, max_tokens=256, aggregate="signed")
    magnitude = explain_answer(tiny_reader, "longformer", question, answer, max_tokens=256)
    lo, hi = ex.window_tokens
    assert hi - lo <= 256 and lo <= tiny_reader.long_tokens.tokens_in(a, a + 5)[0] < hi

    # Recompute by hand with the plain HF forward: the share of the first passage must match.
    model = tiny_reader.pair.longformer
    q_ids = model.tokenizer(question, add_special_tokens=False)["input_ids"]
    win = build_input(
        model.tokenizer,
        tiny_reader.long_tokens,
        (lo, hi),
        question_ids=q_ids,
        doc_global=tiny_reader.plan.doc_mask,
        global_first=True,
        global_question=True,
    )
    kwargs = model_kwargs(model, win)
    ids = kwargs.pop("input_ids")
    emb = model.model.get_input_embeddings()(ids).detach().requires_grad_(True)
    out = model.model(inputs_embeds=emb, **kwargs)
    t0, t1 = tiny_reader.long_tokens.tokens_in(a, a + 5)
    s, e = win.doc_start + t0 - lo, win.doc_start + t1 - 1 - lo
    (grad,) = torch.autograd.grad(out.start_logits[0, s] + out.end_logits[0, e], emb)
    per_token = (grad * emb).sum(-1)[0].detach().numpy()
    raw = {}
    for pa, pb in tiny_reader.passages.spans:
        p0, p1 = tiny_reader.long_tokens.tokens_in(pa, pb)
        p0, p1 = max(p0, lo), min(p1, hi)
        if p1 > p0:
            raw[(pa, pb)] = per_token[win.doc_start + p0 - lo : win.doc_start + p1 - lo].sum()
    total = sum(abs(v) for v in raw.values())
    assert len(ex.evidence) == len(raw)
    for ev in ex.evidence:
        assert ev.score == pytest.approx(raw[ev.char_span] / total, abs=1e-4)
    # the default sums magnitudes per passage: every score positive, shares of the total
    raw_abs = {}
    for pa, pb in raw:
        p0, p1 = tiny_reader.long_tokens.tokens_in(pa, pb)
        p0, p1 = max(p0, lo), min(p1, hi)
        raw_abs[(pa, pb)] = np.abs(per_token[win.doc_start + p0 - lo : win.doc_start + p1 - lo]).sum()
    total_abs = sum(raw_abs.values())
    for ev in magnitude.evidence:
        assert ev.score == pytest.approx(raw_abs[ev.char_span] / total_abs, abs=1e-4) and ev.score >= 0
    assert [e.score for e in ex.evidence] == sorted((e.score for e in ex.evidence), reverse=True)
    assert sum(abs(e.score) for e in ex.evidence) == pytest.approx(1.0)
    assert all(p.grad is None for p in model.model.parameters())  # the shared model is untouched


def test_a_long_window_is_explained_over_the_stretches_it_read(tiny_reader, monkeypatch):
    """A long-window answer (`QAResult.read_ranges`) is explained on the same stretches, back to back, as read."""
    monkeypatch.setattr(tiny_reader.pair.longformer, "dtype", torch.float32)
    tokens, text = tiny_reader.long_tokens, tiny_reader.document.text
    a = text.index("Paris", len(text) // 2)
    t = tokens.token_at(a)
    ranges = [(0, 40), (t - 30, t + 30), (len(tokens) - 20, len(tokens))]
    answer = Located.of(tiny_reader.document, (a, a + 5))
    question = "What is the capital of France?"
    ex = explain_answer(tiny_reader, "longformer", question, answer, ranges=ranges, aggregate="signed")
    assert (
        ex.window_ranges == ranges and ex.window_tokens == (0, len(tokens)) and "3 stretches" in ex.notes[0]
    )
    read = [
        (pa, pb)
        for pa, pb in tiny_reader.passages.spans
        if any(max(s, tokens.tokens_in(pa, pb)[0]) < min(e, tokens.tokens_in(pa, pb)[1]) for s, e in ranges)
    ]
    assert sorted(e.char_span for e in ex.evidence) == sorted(
        read
    )  # passages between the stretches: no score

    # by hand: the stretches' tokens back to back after the question, the target at the answer's input position
    model = tiny_reader.pair.longformer
    q_ids = model.tokenizer(question, add_special_tokens=False)["input_ids"]
    ids = np.concatenate([tokens.ids[s:e] for s, e in ranges])
    win = build_input(
        model.tokenizer,
        type(tokens)(ids, np.concatenate([tokens.offsets[s:e] for s, e in ranges])),
        (0, len(ids)),
        question_ids=q_ids,
        global_first=True,
        global_question=True,
    )
    kwargs = model_kwargs(model, win)
    emb = model.model.get_input_embeddings()(kwargs.pop("input_ids")).detach().requires_grad_(True)
    out = model.model(inputs_embeds=emb, **kwargs)
    t0, t1 = tokens.tokens_in(a, a + 5)
    s, e = win.doc_start + 40 + t0 - (t - 30), win.doc_start + 40 + t1 - 1 - (t - 30)
    (grad,) = torch.autograd.grad(out.start_logits[0, s] + out.end_logits[0, e], emb)
    assert ex.target_logit == pytest.approx(
        float((out.start_logits[0, s] + out.end_logits[0, e]).detach()), abs=1e-4
    )
    per_token = (grad * emb).sum(-1)[0].detach().numpy()
    starts = np.cumsum([0] + [e - s for s, e in ranges])  # where each stretch begins after the question
    raw = {}
    for span in read:
        p0, p1 = tokens.tokens_in(*span)
        raw[span] = sum(
            per_token[win.doc_start + o + max(p0, s) - s : win.doc_start + o + min(p1, e) - s].sum()
            for (s, e), o in zip(ranges, starts)
            if max(p0, s) < min(p1, e)
        )
    total = sum(abs(v) for v in raw.values())
    for ev in ex.evidence:
        assert ev.score == pytest.approx(raw[ev.char_span] / total, abs=1e-4)


def test_bf16_evidence_agrees_with_fp32(tiny_reader, monkeypatch):
    """Under bf16 autocast (the default where the CPU has it natively) the shares stay close to fp32's."""
    text = tiny_reader.document.text
    a = text.index("Paris", len(text) // 2)
    answer = Located.of(tiny_reader.document, (a, a + 5))
    question = "What is the capital of France?"
    by_dtype = {}
    for dtype in (torch.float32, torch.bfloat16):
        monkeypatch.setattr(tiny_reader.pair.longformer, "dtype", dtype)
        ex = explain_answer(tiny_reader, "longformer", question, answer, max_tokens=256)
        by_dtype[dtype] = {e.char_span: e.score for e in ex.evidence}
    fp32, bf16 = by_dtype[torch.float32], by_dtype[torch.bfloat16]
    assert fp32.keys() == bf16.keys()
    assert max(abs(fp32[k] - bf16[k]) for k in fp32) < 0.02
    assert max(fp32, key=fp32.get) in sorted(bf16, key=bf16.get)[-3:]


def test_occlusion_masks_sampled_passages_and_reports_agreement(tiny_reader):
    text = tiny_reader.document.text
    a = text.index("Paris", len(text) // 2)
    answer = Located.of(tiny_reader.document, (a, a + 5))
    ex = explain_answer(
        tiny_reader, "longformer", "What is the capital of France?", answer, max_tokens=256, occlusion=2
    )
    occluded = [e for e in ex.evidence if e.occlusion is not None]
    assert (
        len(occluded) == 4 and ex.evidence[0].occlusion is not None and ex.evidence[1].occlusion is not None
    )
    best = max(occluded, key=lambda e: e.occlusion)
    assert ex.occlusion_agrees == (best is ex.evidence[0])
    assert ex.notes and all(np.isfinite(e.occlusion) for e in occluded)


def test_evidence_json_and_page_strip(tiny_reader):
    ex = explain(tiny_reader, "What is the capital of France?", views=("longformer",), max_tokens=256)
    d = json.loads(json.dumps(ex["longformer"].to_dict()))
    assert set(d) >= {"answer", "page", "evidence"} and d["page"] == 1
    assert set(d["evidence"][0]) >= {"text", "page", "char_span", "score"}
    evidence = [
        Evidence("a", (0, 1), 1, "1", 0.4),
        Evidence("b", (5, 6), 3, "3", 0.2),
        Evidence("c", (7, 8), 3, "3", -0.5),
    ]
    assert page_strip(3, evidence).tolist() == [0.4, 0.0, 0.2]  # negative evidence does not count


def test_explaining_without_a_qa_head_says_why(embedded_sentence_pair):
    reader = DocumentReader(embedded_sentence_pair, text_document(DEEP_TEXT, "deep.txt"), strategy="question")
    with pytest.raises(ValueError, match="no question-answering head"):
        explain_answer(reader, "longformer", "Who painted the tower?", Located.of(reader.document, (0, 5)))


@pytest.mark.slow
def test_deep_answer_evidence_is_its_own_sentence(embedded_pair):
    """The embedded Longformer's answer beyond token 512: the sentence that states it is the top evidence."""
    reader = DocumentReader(embedded_pair, text_document(DEEP_TEXT, "deep.txt"), strategy="question")
    ex = explain(reader, "Who painted the tower?", views=("longformer",), occlusion=1)["longformer"]
    assert reader.long_tokens.token_at(ex.answer.char_span[0]) > 512
    assert "Marguerite Olsen" in ex.answer.text
    top3 = [e.text for e in ex.top(3)]
    assert any(DEEP_FACT in t for t in top3)
    assert ex.evidence[0].occlusion is not None


# --------------------------------------------------------------------------------------------------
# The answer on the PDF page


def _pdfium_char_boxes(data: bytes, page: int, needle: str) -> list[tuple[float, float, float, float]]:
    """Boxes of the characters of `needle` on a page, straight from PDFium's text layer (no mapping)."""
    import pypdfium2 as pdfium

    textpage = pdfium.PdfDocument(data)[page - 1].get_textpage()
    text = textpage.get_text_range()
    start = text.index(needle)
    return [
        textpage.get_charbox(i) for i in range(start, start + len(needle)) if not needle[i - start].isspace()
    ]


def test_the_outlined_box_covers_the_answer_characters(make_pdf):
    pages = [
        "Chapter one.\nThe committee met in the old hall.\nNothing else happened that week.",
        (
            "Chapter two.\nThe ship sailed from the harbour of Nantucket on a cold Monday.\n"
            "Its captain was a man named Ahab, who had lost a leg.\nThe crew did not know him yet."
        ),
    ]
    data = make_pdf(pages)
    doc = load_document(data, "ships.pdf")
    a = doc.text.index("Nantucket on a cold Monday")
    span = (a, a + len("Nantucket on a cold Monday"))
    ev = doc.text.index("Its captain")
    ev_span = (ev, doc.text.index("a leg.") + len("a leg."))
    view = PdfPages(data).render(doc, 2, [("answer", span), ("evidence", ev_span)], scale=2.0)
    assert view.page == 2 and view.image.size == (1224, 1584)
    answers = [b for b in view.boxes if b.kind == "answer"]
    assert len(answers) == 1
    left, top, right, bottom = answers[0].rect
    height = 792
    for cl, cb, cr, ct in _pdfium_char_boxes(data, 2, "Nantucket on a cold Monday"):
        px = (cl * 2, (height - ct) * 2, cr * 2, (height - cb) * 2)
        assert left - 0.5 <= px[0] and px[2] <= right + 0.5 and top - 0.5 <= px[1] and px[3] <= bottom + 0.5
    # and not much more: the box is about as wide as the answer, not the whole line
    char_boxes = _pdfium_char_boxes(data, 2, "Nantucket on a cold Monday")
    first, last = char_boxes[0], char_boxes[-1]
    assert right - left < (last[2] - first[0]) * 2 + 4
    assert any(b.kind == "evidence" for b in view.boxes)
    # the outline is drawn: the red answer colour appears on the image
    pixels = np.asarray(view.image)
    assert ((pixels[..., 0] > 200) & (pixels[..., 1] < 80)).any()
    # a span on page 1 puts nothing on page 2
    assert PdfPages(data).render(doc, 2, [("answer", (0, 7))]).boxes == []


def test_mapping_survives_extraction_differences(make_pdf):
    """pypdf's cleanup joins line-end hyphens and collapses spaces; the mapping works on letters and digits."""
    data = make_pdf(["The incident response pro-\ncedure   starts with preparation.\nThen detection."])
    doc = load_document(data, "h.pdf")
    assert "procedure starts" in doc.text
    a = doc.text.index("procedure starts")
    hits = PdfPages(data).locate(doc, (a, a + len("procedure starts")))
    assert len(hits) == 1 and hits[0][0] == 1
    import pypdfium2 as pdfium

    text = pdfium.PdfDocument(data)[0].get_textpage().get_text_range()
    assert text[hits[0][1]] == "p" and text[hits[0][2]] == "s"


# --------------------------------------------------------------------------------------------------
# Command line: explain, and qa --strategy all


def test_cli_explain_and_strategy_table(tiny_checkpoint, tmp_path, capsys):
    from longformer_core.__main__ import main

    doc = tmp_path / "doc.txt"
    doc.write_text(
        " ".join(f"Line {i}: the capital of France is Paris." for i in range(40)), encoding="utf-8"
    )
    model = str(tiny_checkpoint("longformer-qa"))
    assert (
        main(
            [
                "explain",
                str(doc),
                "-q",
                "What is the capital?",
                "--model",
                model,
                "--json",
                "--top",
                "3",
                "--max-tokens",
                "256",
                "--occlusion",
                "1",
            ]
        )
        == 0
    )
    out = json.loads(capsys.readouterr().out)
    assert set(out) == {"truncated", "chunked", "longformer"}
    for view in out.values():
        assert set(view) >= {"answer", "page", "evidence"} and len(view["evidence"]) == 3
        assert set(view["evidence"][0]) >= {"text", "page", "char_span", "score"}
        scores = [e["score"] for e in view["evidence"]]
        assert scores == sorted(scores, reverse=True)
    assert (
        main(["qa", str(doc), "-q", "What is the capital?", "--model", model, "--strategy", "all", "--json"])
        == 0
    )
    rows = json.loads(capsys.readouterr().out)
    assert [r["strategy"] for r in rows] == [
        "none",
        "cls",
        "question",
        "sentences",
        "paragraphs",
        "pages",
        "every_k",
        "keywords",
    ]
    assert next(r for r in rows if r["strategy"] == "question")["differs"] is False
    assert all(set(r) >= {"answer", "page", "confidence", "seconds", "differs"} for r in rows)
