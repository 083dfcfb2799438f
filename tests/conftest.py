"""Shared fixtures. Real data comes from LONGDOC_DATA_DIR (default ../shared/data); tests skip without it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent


def data_dir() -> Path:
    return Path(os.environ.get("LONGDOC_DATA_DIR", REPO_ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The shared public data folder; skips the test when it is absent."""
    path = data_dir()
    if not path.is_dir():
        pytest.skip(f"shared data not found at {path} (set LONGDOC_DATA_DIR)")
    return path


@pytest.fixture(scope="session")
def nist_pdf(shared_data: Path) -> Path:
    path = shared_data / "pdfs" / "nist_sp800-61r2.pdf"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    return path
