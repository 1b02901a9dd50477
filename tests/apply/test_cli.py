import json
import subprocess
import sys
from pathlib import Path

import typer
from typer.testing import CliRunner

from ghostline.agent.commands.apply import register

ROOT = Path(__file__).resolve().parents[2]


def app():
    a = typer.Typer()
    register(a)

    @a.command("noop")
    def noop() -> None:  # a second command keeps typer from collapsing to a single-command app
        pass

    return a


def setup(tmp_path):
    (tmp_path / "m.py").write_text("x = 1\ny = 2\n")
    edits = tmp_path / "edits.json"
    return edits


def test_apply_ok_json(tmp_path):
    edits = setup(tmp_path)
    edits.write_text(json.dumps({"path": "m.py", "old_string": "y = 2", "new_string": "y = 3"}))
    r = CliRunner().invoke(app(), ["apply", str(edits), "--root", str(tmp_path), "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["applied"] is True
    assert out["results"][0]["path"] == "m.py" and out["results"][0]["rung"] == "exact"
    assert set(out["results"][0]) >= {"path", "rung", "applied", "error"}
    assert (tmp_path / "m.py").read_text() == "x = 1\ny = 3\n"


def test_apply_refused_exit_1_file_untouched(tmp_path):
    edits = setup(tmp_path)
    edits.write_text(json.dumps([{"path": "m.py", "old_string": "x = 1", "new_string": "x = 5"},
                                 {"path": "m.py", "old_string": "zzz", "new_string": "q"}]))
    r = CliRunner().invoke(app(), ["apply", str(edits), "--root", str(tmp_path)])
    assert r.exit_code == 1
    assert "applied m.py" in r.stdout
    assert "refused m.py" in r.stderr and "\n" not in r.stderr.strip()
    assert (tmp_path / "m.py").read_text() == "x = 5\ny = 2\n"


def test_apply_dry_run_and_format_flag(tmp_path):
    edits = setup(tmp_path)
    edits.write_text("m.py\n<<<<<<< SEARCH\nx = 1\n=======\nx = 9\n>>>>>>> REPLACE\n")
    r = CliRunner().invoke(app(), ["apply", str(edits), "--root", str(tmp_path), "--dry-run",
                                   "--format", "search-replace"])
    assert r.exit_code == 0, r.output
    assert "would apply m.py" in r.stdout and "+x = 9" in r.stdout
    assert (tmp_path / "m.py").read_text() == "x = 1\ny = 2\n"


def test_apply_unreadable_input_exit_2(tmp_path):
    setup(tmp_path)
    r = CliRunner().invoke(app(), ["apply", str(tmp_path / "nope.txt"), "--root", str(tmp_path)])
    assert r.exit_code == 2 and "no such file" in r.stderr
    bad = tmp_path / "bad.json"
    bad.write_text("this is not an edit")
    r = CliRunner().invoke(app(), ["apply", str(bad), "--root", str(tmp_path), "--format", "edit-json"])
    assert r.exit_code == 2 and "invalid JSON" in r.stderr and "Traceback" not in r.output
    binary = tmp_path / "bin"
    binary.write_bytes(b"\xff\xfe\x00")
    r = CliRunner().invoke(app(), ["apply", str(binary), "--root", str(tmp_path)])
    assert r.exit_code == 2 and "UTF-8" in r.stderr


def test_real_console_script_when_wired(tmp_path):
    cli = (ROOT / "agent" / "cli.py")
    if not cli.exists() or '"apply"' not in cli.read_text():
        import pytest

        pytest.skip("agent apply is not wired into agent/cli.py yet")
    edits = setup(tmp_path)
    edits.write_text(json.dumps({"path": "m.py", "old_string": "x = 1", "new_string": "x = 2"}))
    p = subprocess.run([sys.executable, "-m", "ghostline.agent", "apply", str(edits), "--root", str(tmp_path), "--json"],
                       capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["applied"] is True


def test_apply_reads_stdin(tmp_path):
    setup(tmp_path)
    diff = "--- a/m.py\n+++ b/m.py\n@@ -1,2 +1,2 @@\n x = 1\n-y = 2\n+y = 4\n"
    r = CliRunner().invoke(app(), ["apply", "-", "--root", str(tmp_path)], input=diff)
    assert r.exit_code == 0, r.output
    assert (tmp_path / "m.py").read_text() == "x = 1\ny = 4\n"


def test_apply_resolves_a_near_miss_file_name(tmp_path):
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "util.py").write_text("x = 1\n")
    (tmp_path / "node_modules").mkdir()
    (tmp_path / "node_modules" / "util.py").write_text("x = 1\n")  # a second candidate, were it listed
    edits = tmp_path / "edits.txt"
    edits.write_text("util.py\n<<<<<<< SEARCH\nx = 1\n=======\nx = 2\n>>>>>>> REPLACE\n")
    r = CliRunner().invoke(app(), ["apply", str(edits), "--root", str(tmp_path)])
    assert r.exit_code == 0, r.output
    assert "applied pkg/util.py" in r.stdout
    assert (tmp_path / "pkg" / "util.py").read_text() == "x = 2\n"
    assert (tmp_path / "node_modules" / "util.py").read_text() == "x = 1\n"


def test_project_files_gives_up_on_huge_trees(tmp_path, monkeypatch):
    from ghostline.agent.commands import apply as apply_command

    for name in ("a.py", "b.py", "c.py"):
        (tmp_path / name).write_text("")
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "HEAD").write_text("")
    assert sorted(apply_command.project_files(tmp_path)) == ["a.py", "b.py", "c.py"]
    monkeypatch.setattr(apply_command, "_MAX_FILES", 2)
    assert apply_command.project_files(tmp_path) == []
