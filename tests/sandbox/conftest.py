"""Fixtures for sandbox tests: Ghostline's config/data dirs isolated per test, layers that work here."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _isolated_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GHOSTLINE_CONFIG_DIR", str(tmp_path / "_cfg"))
    monkeypatch.setenv("GHOSTLINE_DATA_DIR", str(tmp_path / "_data"))
    monkeypatch.delenv("GHOSTLINE_SANDBOX", raising=False)


def confining_levels() -> list:
    """bubblewrap and landlock as pytest params, skipped (with the reason) where the layer is absent."""
    from tests.sandbox.adversarial import available_levels

    out = []
    for level, why in available_levels().items():
        marks = [pytest.mark.skip(reason=f"{level} not available here: {why}")] if why else []
        out.append(pytest.param(level, marks=marks, id=level))
    return out


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=cwd, check=True,
                          capture_output=True, text=True).stdout
