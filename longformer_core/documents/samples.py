"""Bundled public-domain demo samples (assets/samples/): documents with suggested questions, a collection.

A sample is a document file plus an optional `NAME.questions.json` next to it:
`{"title": str, "description": str, "questions": [{"question": str, "answer": str}, ...]}` (the answer is
what the question asks for, quoted from the document; tests check it is there, beyond token 512).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from longformer_core.documents import Document, load_path
from longformer_core.settings import REPO_ROOT

SAMPLES_DIR = REPO_ROOT / "assets" / "samples"
DOCUMENT_SUFFIXES = (".pdf", ".txt", ".md")
COLLECTION_FILE = "kjv_short_books.csv"  # the sample collection for the Collection page


@dataclass(frozen=True)
class SuggestedQuestion:
    question: str
    answer: str  # the expected answer, quoted from the document


@dataclass
class Sample:
    """One bundled document and what to ask it."""

    name: str  # file name without extension: the `?sample=NAME` key
    path: Path
    title: str
    description: str = ""
    questions: list[SuggestedQuestion] = field(default_factory=list)
    data: bytes = b""  # the file's bytes (the page view renders PDFs from them)
    document: Document | None = None


def sample_names(folder: Path = SAMPLES_DIR) -> list[str]:
    """Names of the bundled documents, sorted."""
    return sorted(p.stem for p in folder.iterdir() if p.suffix in DOCUMENT_SUFFIXES and p.stem != "README")


def load_sample(name: str, folder: Path = SAMPLES_DIR) -> Sample:
    """Read one sample (its document extracted, its questions parsed).

    Raises:
        ValueError: no sample of that name (the message lists the ones there are).
    """
    paths = [folder / f"{name}{suffix}" for suffix in DOCUMENT_SUFFIXES]
    path = next((p for p in paths if p.is_file()), None)
    if path is None or "/" in name or name.startswith("."):
        raise ValueError(f"There is no sample called '{name}'. Samples: {', '.join(sample_names(folder))}.")
    meta_path = folder / f"{name}.questions.json"
    meta = json.loads(meta_path.read_text(encoding="utf-8")) if meta_path.is_file() else {}
    questions = [SuggestedQuestion(q["question"], q.get("answer", "")) for q in meta.get("questions", [])]
    data = path.read_bytes()
    return Sample(
        name=name,
        path=path,
        title=meta.get("title", name.replace("_", " ")),
        description=meta.get("description", ""),
        questions=questions,
        data=data,
        document=load_path(path),
    )


def load_samples(folder: Path = SAMPLES_DIR) -> dict[str, Sample]:
    """Every bundled sample, read once (the app calls this when the server starts)."""
    return {name: load_sample(name, folder) for name in sample_names(folder)}


def sample_collection_path(folder: Path = SAMPLES_DIR) -> Path:
    """The CSV of the sample collection (columns title, section, text)."""
    return folder / COLLECTION_FILE
