"""Fixtures of the TUI's tests: a data dir for the input box alone; a repository for the whole app."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    d = tmp_path / "data"
    monkeypatch.setenv("GHOSTLINE_DATA_DIR", str(d))
    return d


@pytest.fixture
def repo(tmp_path: Path, fake_model_env, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A throwaway git repository to run the TUI in, with its config and data dirs, against the fake server."""
    cfg = tmp_path / "config" / "ghostline"
    cfg.mkdir(parents=True)
    (cfg / "config.toml").write_text("[retry]\nmax_attempts = 2\nbase_delay = 0.01\nmax_delay = 0.02\n")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setenv("GHOSTLINE_EMBEDDINGS", "off")
    for name in ("GHOSTLINE_MODEL", "CI", "GHOSTLINE_DATA_DIR", "GHOSTLINE_CONFIG_DIR", "GHOSTLINE_TUI_FRAME_MS"):
        monkeypatch.delenv(name, raising=False)
    r = tmp_path / "repo"
    r.mkdir()
    (r / "calc.py").write_text("def add(a, b):\n    return a + b\n")
    for args in (["init", "-q"], ["add", "-A"], ["-c", "user.email=t@e", "-c", "user.name=t", "commit", "-qm", "i"]):
        subprocess.run(["git", *args], cwd=r, check=True)
    return r
