"""The `agent` console script itself: startup hygiene and one-line usage errors with exit code 2."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

AGENT = str(Path(sys.executable).parent / "agent")
HEAVY = ("anthropic", "openai", "textual", "torch", "transformers", "sentence_transformers")


def run_agent(args, tmp_path, env_extra=None, cwd=None, timeout=60):
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY") and k not in (
        "GHOSTLINE_MODEL", "OPENAI_BASE_URL", "ANTHROPIC_BASE_URL")}
    env.update({"XDG_DATA_HOME": str(tmp_path / "data"), "XDG_CONFIG_HOME": str(tmp_path / "config"), "CI": "true"})
    env.update(env_extra or {})
    return subprocess.run([AGENT, *args], cwd=cwd or tmp_path, env=env, capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


@pytest.mark.parametrize("args", [["--version"], ["--help"], ["run", "--help"]])
def test_startup_imports_nothing_heavy(args):
    code = (
        f"import sys; sys.argv = ['agent', *{args!r}]\n"
        "from ghostline.agent.__main__ import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        f"bad = [m for m in {HEAVY!r} if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr


def test_version(tmp_path):
    r = run_agent(["--version"], tmp_path)
    assert r.returncode == 0 and r.stdout.startswith("ghostline ")


@pytest.mark.parametrize(
    ("args", "env", "needle"),
    [
        (["run", "do it"], {}, "no model"),
        (["run", "do it", "--model", "gemini:pro"], {}, "unknown provider"),
        (["run", "do it", "--model", "anthropic:claude-sonnet-4-5"], {}, "ANTHROPIC_API_KEY"),
        (["run", "do it", "--model", "openai:gpt-4.1"], {}, "OPENAI_API_KEY"),
        (["run", "do it", "--model", "openai:x", "--base-url", "not a url"], {}, "base url"),
        (["run", "--model", "openai:x"], {"OPENAI_API_KEY": "k"}, "give a task"),
        (["run", "x", "--resume", "nope"], {}, "no session"),
    ],
)
def test_usage_errors_are_one_line_and_exit_2(tmp_path, args, env, needle):
    r = run_agent(args, tmp_path, env)
    assert r.returncode == 2, (r.stdout, r.stderr)
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, r.stderr
    assert needle.lower() in lines[0].lower()
    assert "Traceback" not in r.stderr


def test_bad_flag_value_exits_2(tmp_path):
    r = run_agent(["run", "x", "--sandbox", "yolo"], tmp_path)
    assert r.returncode == 2 and "Traceback" not in r.stderr


def test_sessions_empty(tmp_path):
    r = run_agent(["sessions"], tmp_path)
    assert r.returncode == 0 and "no sessions" in r.stdout


def test_bare_agent_takes_the_tui_options(tmp_path):
    # Without a terminal bare `agent` prints its help; the TUI's options are accepted (and listed) there.
    r = run_agent(["--model", "anthropic:claude-sonnet-5-5", "--approval", "auto-edit"], tmp_path)
    assert r.returncode == 0 and "--model" in r.stdout and "--sandbox" in r.stdout
    r = run_agent(["--sandbox", "nope"], tmp_path)
    assert r.returncode == 2 and "'nope' is not one of" in r.stderr
    r = run_agent(["--model", "x", "run", "task"], tmp_path)
    assert r.returncode == 2 and "put --model after the command: agent run --model" in r.stderr
