"""longformer_core.settings: every LONGDOC_* variable is declared once and documented in the README."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from longformer_core import settings

REPO_ROOT = Path(__file__).resolve().parent.parent
SOURCES = ["longformer_core", "ui", "pages", "bench", "scripts", "app.py"]


def _readme_rows() -> dict[str, str]:
    """{name: table row} of the README's settings table."""
    text = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    return {m.group(1): m.group(0) for m in re.finditer(r"^\| `(LONGDOC_\w+)` \|.*$", text, re.MULTILINE)}


def test_every_setting_is_documented_in_the_readme():
    rows = _readme_rows()
    missing = [s.name for s in settings.SETTINGS if s.name not in rows]
    assert not missing, f"add a row to the README's settings table for {missing}"
    assert set(rows) == set(settings.BY_NAME), "the README documents a setting the code does not know"


def test_every_longdoc_variable_in_the_code_is_a_declared_setting():
    used: set[str] = set()
    for source in SOURCES:
        path = REPO_ROOT / source
        files = [path] if path.is_file() else [*path.rglob("*.py"), *path.rglob("*.sh")]
        for file in files:
            used |= set(re.findall(r"\bLONGDOC_[A-Z_]+[A-Z]\b", file.read_text(encoding="utf-8")))
    assert used, "the scan found nothing: the source folders moved?"
    assert used <= set(settings.BY_NAME), (
        f"declare these in longformer_core/settings.py: {used - set(settings.BY_NAME)}"
    )


def test_values_fall_back_to_defaults(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    monkeypatch.delenv("LONGDOC_MAX_UPLOAD_MB", raising=False)
    assert settings.value("LONGDOC_MAX_UPLOAD_MB") == "200"
    monkeypatch.setenv("LONGDOC_MAX_UPLOAD_MB", "  ")  # blank counts as unset
    assert settings.value("LONGDOC_MAX_UPLOAD_MB") == "200"
    monkeypatch.setenv("LONGDOC_MAX_UPLOAD_MB", "lots")
    assert settings.positive_number("LONGDOC_MAX_UPLOAD_MB") == 200.0
    monkeypatch.setenv("LONGDOC_CACHE", str(tmp_path))
    assert settings.cache_dir() == tmp_path
    monkeypatch.delenv("LONGDOC_CORPUS_CACHE", raising=False)
    assert settings.path("LONGDOC_CORPUS_CACHE") is None
    monkeypatch.setenv("LONGDOC_DATA_DIR", str(tmp_path))
    assert settings.data_dir() == tmp_path
    with pytest.raises(KeyError):
        settings.value("LONGDOC_NO_SUCH_SETTING")
