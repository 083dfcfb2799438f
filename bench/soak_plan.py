"""The soak benchmark's documents: each session gets its own, named so another session's name is easy to spot.

HotpotQA and SQuAD-style contexts and BBC news as text (with questions), the Alice PDF (shown, not asked
about), the NIST PDF for the worker kill, and a hostile file every third upload with the words of the
message the app shows for it today (computed with the core, not typed).
"""

from __future__ import annotations

import csv
import json
import os
import random
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = Path(os.environ.get("LONGDOC_DATA_DIR", REPO_ROOT.parent / "shared" / "data"))
KILLED_WORKER_WORDS = "stopped unexpectedly"
BBC_QUESTIONS = ["What is this article about?", "Who said it?"]


@dataclass
class Upload:
    name: str
    data: bytes
    mime: str
    questions: list[str]
    text: str = ""  # what the document says (to check highlighted answers); "" for PDFs
    expect_error: str | None = None  # words of the message a hostile file must get
    timeout_s: float | None = (
        None  # seconds each request about this document may take (None: --action-timeout)
    )


def big_upload(path: Path, question: str, timeout_s: float) -> Upload:
    """The book-length PDF of `soak.py --big`: uploaded by session 0 first, then asked one question (which
    reads the whole book in the background while the other sessions ask theirs)."""
    return Upload(
        f"soak0-big-{path.name}", path.read_bytes(), "application/pdf", [question], timeout_s=timeout_s
    )


def _squad_articles(path: Path, limit: int) -> list[tuple[str, str, list[str]]]:
    data = json.loads(path.read_text())["data"]
    out = []
    for article in data[:limit]:
        for paragraph in article["paragraphs"][:1]:
            questions = [qa["question"] for qa in paragraph["qas"]]
            out.append((article["title"], paragraph["context"], questions))
    return out


def _bbc_rows(path: Path, limit: int) -> list[tuple[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    return [(row["filename"], row["text"]) for row in rows[:limit]]


def _hostile(session: int, k: int) -> Upload:
    """A hostile file and the words of the message the app shows for it today (computed, not typed)."""
    from longformer_core.documents import DocumentError, load_document

    kinds = [
        (f"soak{session}h{k}-scan.txt", bytes(range(256)) * 8, "text/plain"),
        (f"soak{session}h{k}-broken.pdf", b"%PDF-1.7\n" + b"\x00garbage" * 100, "application/pdf"),
        (f"soak{session}h{k}-empty.txt", b"   \n\t ", "text/plain"),
        (f"soak{session}h{k}-word.txt", b"PK\x03\x04" + b"\x14\x00" * 40, "text/plain"),
    ]
    name, data, mime = kinds[k % len(kinds)]
    try:
        load_document(data, name)
    except DocumentError as error:
        expected = str(error)
    else:
        raise AssertionError(f"{name} is not hostile")
    return Upload(name, data, mime, [], expect_error=expected.split(":")[0])


def session_plan(session: int, n_sessions: int, rng: random.Random) -> list[Upload]:
    """Documents for one session, in order (more than it will have time for)."""
    hotpot = _squad_articles(DATA_DIR / "hotpotqa" / "hotpotqa-dev-distractor.squad.json", 400)
    bbc = _bbc_rows(DATA_DIR / "bbc" / "bbc-news.csv", 400)
    plan: list[Upload] = []
    if session == 1:
        alice = (DATA_DIR / "pdfs" / "alice_in_wonderland_latex_edition.pdf").read_bytes()
        # Uploaded and shown, not asked about: reading 112 pages takes minutes on a shared 2-core machine.
        plan.append(Upload("soak1-alice.pdf", alice, "application/pdf", []))
    # Then short documents with questions, a hostile file every third upload; disjoint across sessions.
    mine_hotpot = hotpot[session::n_sessions]
    mine_bbc = bbc[session::n_sessions]
    for k in range(40):
        if session == 0 and k == 1:
            # The worker kill: NIST takes seconds to parse; the bench kills the busy worker meanwhile.
            nist = (DATA_DIR / "pdfs" / "nist_sp800-61r2.pdf").read_bytes()
            plan.append(
                Upload("soak0-nist-kill.pdf", nist, "application/pdf", [], expect_error=KILLED_WORKER_WORDS)
            )
            plan.append(Upload("soak0-nist.pdf", nist, "application/pdf", []))
        if k % 3 == 2:
            plan.append(_hostile(session, k))
        elif k % 3 == 1 and k // 3 < len(mine_bbc):
            filename, text = mine_bbc[k // 3]
            plan.append(
                Upload(
                    f"soak{session}x{k}-bbc-{filename}", text.encode(), "text/plain", BBC_QUESTIONS[:1], text
                )
            )
        else:
            _, text, questions = mine_hotpot[k % len(mine_hotpot)]
            plan.append(
                Upload(
                    f"soak{session}x{k}-hotpot.txt",
                    text.encode(),
                    "text/plain",
                    rng.sample(questions, 1) * 2,
                    text,
                )
            )  # the same question twice: a warm cache
    return plan
