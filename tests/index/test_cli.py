"""`agent index build|status|search` (lexical-only)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from ghostline.agent.commands.index import register


@pytest.fixture
def app() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def _root() -> None:
        """test root"""

    register(app)
    return app


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("GHOSTLINE_EMBEDDINGS", "off")
    root = tmp_path / "proj"
    (root / "src").mkdir(parents=True)
    (root / ".git").mkdir()
    (root / "src" / "shapes.py").write_text(
        "class Circle:\n    def area(self, radius):\n        return 3.14159 * radius ** 2\n"
    )
    (root / "src" / "main.py").write_text("from src.shapes import Circle\n\nprint(Circle().area(2))\n")
    return root


def test_build_status_search(app: typer.Typer, project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    runner = CliRunner()
    monkeypatch.chdir(project / "src")  # the enclosing repository is found from a subdirectory
    r = runner.invoke(app, ["index", "build"])
    assert r.exit_code == 0, r.output
    assert "indexed 2 files" in r.output and "embeddings: off" in r.output
    r = runner.invoke(app, ["index", "status", "--json"])
    assert r.exit_code == 0, r.output
    st = json.loads(r.output)
    assert st["files"] == 2 and st["root"] == str(project.resolve()) and st["symbols"] == 2
    r = runner.invoke(app, ["index", "search", "circle area", "--json", "--k", "1"])
    assert r.exit_code == 0, r.output
    hits = json.loads(r.output)
    assert len(hits) == 1 and hits[0]["path"] == "src/shapes.py" and hits[0]["symbol"] == "Circle"
    r = runner.invoke(app, ["index", "search", "area", "--mode", "lexical"])
    assert r.exit_code == 0 and "src/shapes.py:1-3" in r.output
    r = runner.invoke(app, ["index", "search", "nothingmatcheszz"])
    assert r.exit_code == 1 and "no results" in r.output
    r = runner.invoke(app, ["index", "build", "--rebuild", "--json"])
    assert r.exit_code == 0 and json.loads(r.output)["stats"]["added"] == 2


def test_user_errors_are_one_line(app: typer.Typer, tmp_path: Path) -> None:
    runner = CliRunner()
    r = runner.invoke(app, ["index", "status", "--root", str(tmp_path / "missing")])
    assert r.exit_code == 2
    assert "not a directory" in r.output and "Traceback" not in r.output
    r = runner.invoke(app, ["index", "search", "x", "--mode", "fuzzy"])
    assert r.exit_code == 2


def test_real_console_script(project: Path) -> None:
    agent = shutil.which("agent", path=str(Path(sys.executable).parent))  # the venv running these tests
    if agent is None:
        pytest.skip("no `agent` console script beside this Python")
    env = {**os.environ, "GHOSTLINE_EMBEDDINGS": "off", "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    assert "index" in subprocess.run([agent, "--help"], capture_output=True, text=True, env=env).stdout
    r = subprocess.run([agent, "index", "search", "Circle", "--root", str(project), "--json"],
                       capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)[0]["path"] == "src/shapes.py"
