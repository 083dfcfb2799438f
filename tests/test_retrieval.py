"""Layout-aware passages, the lexical index, fused ranking and `evaluate pdf-questions`."""

from __future__ import annotations

import json

import numpy as np
import pytest

from longformer_core.documents import load_document, text_document
from longformer_core.documents.passages import passages
from longformer_core.evaluation.squad import answer_hit, lexical_pages, pdf_questions
from longformer_core.reading.retrieval import LexicalIndex, fuse, words, zscore

HEADER = "HANDBOOK OF HARBOUR OPERATIONS"
PROSE = (
    "The harbour office coordinates the arrival of every vessel and keeps the berth schedule up to date for the\n"
    "pilots, the tug crews and the port authority. Each morning the duty officer reviews the weather reports and\n"
    "the tide tables before any large ship is allowed to enter the inner basin of the port.\n"
)
GLOSSARY_PAGE = (
    "Appendix B—Glossary\n"
    "Selected terms used in this handbook are defined below.\n"
    "Berth: A designated place where a vessel is moored alongside a quay so that cargo can be\n"
    "handled safely.\n"
    "Bollard: A short thick post on a quay to which the mooring lines of a ship are made fast.\n"
    "Draught: The vertical distance between the waterline and the bottom of the hull of a vessel.\n"
)
ACRONYM_PAGE = (
    "Appendix C—Acronyms\n"
    "Selected acronyms used in this handbook are defined below.\n"
    "AIS Automatic Identification System\n"
    "ETA Estimated Time of Arrival\n"
    "PSC Port State Control\n"
    "VTS Vessel Traffic Service\n"
)
TABLE_PAGE = (
    "Table 2-1. Tug Assistance by Vessel Length\n"
    "Length Tugs required\n"
    "Under 100 metres None\n"
    "100 to 200 metres One tug at the bow\n"
    "Over 200 metres Two tugs, bow and stern\n" + PROSE
)


def _pages() -> list[str]:
    bodies = [
        PROSE,
        PROSE.replace("harbour office", "pilot station"),
        TABLE_PAGE,
        GLOSSARY_PAGE,
        ACRONYM_PAGE,
    ]
    return [f"{HEADER}\n{n + 1}\n{body}" for n, body in enumerate(bodies)]


@pytest.fixture(scope="module")
def handbook(request):
    from tests.conftest import build_pdf

    return load_document(build_pdf(_pages()), "handbook.pdf")


def _passage_texts(document) -> dict[str, str]:
    found = passages(document)
    return {document.text[a:b]: kind for (a, b), kind in zip(found.spans, found.kinds)}


def test_pdf_passages_follow_the_layout(handbook):
    found = passages(handbook)
    texts = _passage_texts(handbook)
    # Glossary entries: term + definition (continuation line included) as one passage.
    berth = next(t for t in texts if t.startswith("Berth:"))
    assert "handled safely." in berth and texts[berth] == "entry"
    assert (
        texts["Draught: The vertical distance between the waterline and the bottom of the hull of a vessel."]
        == "entry"
    )
    # Acronym entries: one line each.
    assert texts["VTS Vessel Traffic Service"] == "entry"
    assert texts["ETA Estimated Time of Arrival"] == "entry"
    # Headings attach to what follows them; the table caption is not lost.
    assert any(t.startswith("Appendix B—Glossary\nSelected terms") for t in texts)
    assert any(t.startswith("Table 2-1. Tug Assistance by Vessel Length") for t in texts)
    # Running headers and page numbers are in no passage, and they are listed as excluded.
    assert not any(HEADER in t for t in texts)
    excluded = {handbook.text[a:b] for a, b in found.excluded}
    assert HEADER in excluded and {"1", "2", "3"} <= excluded
    # Passages are ordered, disjoint spans.
    assert all(b1 <= a2 for (_, b1), (a2, _) in zip(found.spans, found.spans[1:]))


def test_text_documents_keep_sentence_passages():
    doc = text_document("First sentence here. Second one follows.\n\nA new paragraph starts.")
    found = passages(doc)
    assert [doc.text[a:b] for a, b in found.spans] == [
        "First sentence here.",
        "Second one follows.",
        "A new paragraph starts.",
    ]
    assert found.excluded == []


def test_words_keep_numbers_and_drop_question_words():
    assert words("What is Table 3-1 called, and how long is 4,590?") == ["table", "3-1", "long", "4,590"]


def test_lexical_index_and_fusion_rank_the_definition_first(handbook):
    found = passages(handbook)
    texts = [handbook.text[a:b] for a, b in found.spans]
    index = LexicalIndex(texts)
    scores = index.scores("What does VTS stand for?")
    assert texts[int(np.argmax(scores))] == "VTS Vessel Traffic Service"
    assert index.scores("zebra").max() == 0.0  # no word in common: all zero, no error
    # Fusion: a lexical winner stays first when the other signals are flat; weights move the result.
    seen = np.ones(len(texts), dtype=bool)
    flat = np.zeros(len(texts))
    ranking = fuse({"lexical": scores, "dense": flat}, seen)
    assert texts[ranking.order[0]] == "VTS Vessel Traffic Service"
    assert ranking.main_signal(int(ranking.order[0])) == "lexical"
    dense = np.zeros(len(texts))
    dense[3] = 10.0
    assert fuse({"lexical": scores, "dense": dense}, seen, {"lexical": 0.0, "dense": 1.0}).order[0] == 3
    unseen = seen.copy()
    unseen[int(np.argmax(scores))] = False
    assert int(np.argmax(scores)) not in fuse({"lexical": scores}, unseen).order


def test_zscore_is_zero_when_flat_or_unseen():
    seen = np.array([True, True, False])
    assert zscore(np.array([1.0, 1.0, 5.0]), seen).tolist() == [0.0, 0.0, 0.0]
    z = zscore(np.array([1.0, 3.0, 100.0]), seen)
    assert z[0] == pytest.approx(-1.0) and z[1] == pytest.approx(1.0) and z[2] == 0.0


def test_lexical_pages_and_answer_hit(handbook):
    assert lexical_pages(handbook, "What does VTS stand for?")[0] == 5
    assert answer_hit("VTS Vessel Traffic Service", "vessel  traffic service") == 1.0
    assert answer_hit("Two tugs, bow and stern", "two tugs") == 1.0
    assert answer_hit("the pilots", "Estimated Time of Arrival") == 0.0


@pytest.mark.slow
def test_definition_question_is_answered_from_its_glossary_entry(embedded_pair, handbook):
    from longformer_core.qa.answering import ask
    from longformer_core.reading.document_reading import DocumentReader

    reader = DocumentReader(embedded_pair, handbook, strategy="question")
    result = ask(reader, "What is a bollard?", views=("longformer",))["longformer"]
    best = result.best
    assert best.page == 4
    assert "post on a quay" in handbook.text[best.passage[0] : best.passage[1]]
    assert best.found_by


@pytest.mark.slow
def test_evaluate_pdf_questions_end_to_end(embedded_pair, handbook, tmp_path):
    from tests.conftest import build_pdf

    questions = [
        {"question": "What does AIS stand for?", "answer": "Automatic Identification System", "pages": [5]},
        {
            "question": "What is the draught of a vessel?",
            "answer": "vertical distance between the waterline",
            "pages": [4],
        },
        {"question": "How many tugs does a ship over 200 metres need?", "answer": "Two tugs", "pages": [3]},
    ]
    report = pdf_questions(embedded_pair, handbook, questions)
    assert report["questions"] == 3 and report["pages"] == 5
    for key in ("truncated", "chunked", "longformer", "lexical"):
        assert set(report[key]) == {"page_hit@1", "answer_hit", "f1", "seconds_per_question"}
    assert report["longformer"]["page_hit@1"] >= 2 / 3
    assert report["lexical"]["page_hit@1"] >= 2 / 3
    # The CLI prints the same report as JSON.
    import subprocess
    import sys

    pdf = tmp_path / "handbook.pdf"
    pdf.write_bytes(build_pdf(_pages()))
    qfile = tmp_path / "questions.json"
    qfile.write_text(json.dumps(questions))
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "longformer_core",
            "evaluate",
            "pdf-questions",
            str(pdf),
            str(qfile),
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    )
    cli = json.loads(out.stdout)
    assert cli["questions"] == 3 and "rows" not in cli and cli["longformer"]["page_hit@1"] >= 2 / 3


@pytest.mark.slow
def test_preliminary_answer_needs_no_reading(embedded_pair, handbook):
    from longformer_core.qa.answering import preliminary_answer
    from longformer_core.reading.document_reading import DocumentReader

    reader = DocumentReader(embedded_pair, handbook, strategy="question")
    result = preliminary_answer(reader, "What does VTS stand for?", "longformer")
    assert result.best.text == "VTS Vessel Traffic Service" and result.best.page == 5
    assert not reader.has_pass("longformer")  # the view did not read the document for it
    assert "first answer" in result.notes[0]


def test_a_background_reading_can_pause_between_pages_and_chunks_of_passages(handbook, monkeypatch):
    from longformer_core.reading import retrieval

    pages: list[int] = []
    found = passages(handbook, pause=lambda: pages.append(1))
    assert len(pages) == handbook.n_pages and found.spans == passages(handbook).spans  # same passages
    monkeypatch.setattr(retrieval, "WORDS_AT_ONCE", 2)
    chunks: list[int] = []
    paused = LexicalIndex(found.texts, pause=lambda: chunks.append(1))
    assert len(chunks) == -(-len(found.texts) // 2)
    question = "What does VTS stand for?"
    assert np.array_equal(paused.scores(question), LexicalIndex(found.texts).scores(question))
