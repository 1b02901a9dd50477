"""action.yml and docs/ci.md keep their promises: the YAML parses, the action has the inputs and steps it
documents (and never pastes an input into a script), the examples use options the CLI has, and the action's own
scripts run: a batch against the fake model server, then pull requests through a stand-in `gh`."""

from __future__ import annotations

import json
import os
import re
import shlex
import stat
import subprocess
from pathlib import Path

import pytest
import typer
import yaml

from ghostline.agent.cli import app
from tests.agent.test_batch import job_and_turn, write_jobs
from tests.agent.test_e2e import AGENT, agent_env, make_repo
from tests.fakeserver import FakeModelServer, reply

ROOT = Path(__file__).resolve().parents[2]
ACTION = yaml.safe_load((ROOT / "action.yml").read_text())
DOC = (ROOT / "docs" / "ci.md").read_text()
STEPS = {s["name"]: s for s in ACTION["runs"]["steps"]}


def code_blocks(text: str) -> list[tuple[str, str]]:
    """(language, body) of each fenced block."""
    return re.findall(r"^```(\w*)\n(.*?)^```$", text, re.S | re.M)


def yaml_blocks() -> list:
    return [yaml.safe_load(body) for lang, body in code_blocks(DOC) if lang == "yaml"]


def cli_options(*path: str) -> set[str]:
    cmd = typer.main.get_command(app)
    for name in path:
        cmd = cmd.commands[name]  # type: ignore[attr-defined]
    return {opt for p in cmd.params for opt in p.opts + p.secondary_opts if opt.startswith("-")}


def test_the_action_is_composite_with_the_inputs_it_promises():
    assert ACTION["runs"]["using"] == "composite"
    assert {"task", "jobs", "merge-reports", "model", "anthropic-api-key", "openai-api-key", "verify", "shard",
            "parallel", "max-cost-total", "commit", "open-pr", "args", "artifact-name", "fail-on-error"} <= set(
        ACTION["inputs"])
    assert set(ACTION["outputs"]) == {"exit-code", "report"}
    uses = [s.get("uses", "") for s in ACTION["runs"]["steps"]]
    assert any(u.startswith("actions/setup-python@") for u in uses)
    assert "pip install" in STEPS["Install Ghostline"]["run"]
    run = STEPS["Run the agent"]["run"]
    assert 'agent batch "$JOBS"' in run and 'agent run "$TASK"' in run and "agent batch merge" in run
    assert STEPS["Run the agent"]["env"]["ANTHROPIC_API_KEY"] == "${{ inputs.anthropic-api-key }}"
    upload = STEPS["Upload the report, patches and JUnit"]
    assert upload["uses"].startswith("actions/upload-artifact@") and upload["if"] == "always()"
    assert {"report.json", "junit.xml", "patches/"} <= {Path(p).name + ("/" if p.endswith("/") else "")
                                                        for p in upload["with"]["path"].split()}
    assert "gh pr create" in STEPS["Open pull requests"]["run"] and "command -v gh" in STEPS["Open pull requests"]["run"]
    # Inputs reach scripts through the environment only: `${{ inputs.x }}` inside a script is an injection.
    assert all("${{" not in s.get("run", "") for s in ACTION["runs"]["steps"])


def test_the_docs_show_a_ten_line_workflow_a_four_machine_matrix_and_gitlab():
    first, matrix, gitlab = yaml_blocks()
    block = next(body for lang, body in code_blocks(DOC) if lang == "yaml")
    assert len(block.strip().splitlines()) <= 10
    step = first["jobs"]["refactor"]["steps"][-1]
    assert step["with"]["task"] and step["with"]["anthropic-api-key"] == "${{ secrets.ANTHROPIC_API_KEY }}"
    assert set(step["with"]) <= set(ACTION["inputs"])
    batch, merge = matrix["jobs"]["batch"], matrix["jobs"]["merge"]
    assert batch["strategy"]["matrix"]["shard"] == [1, 2, 3, 4]
    shard_step = batch["steps"][-1]["with"]
    assert shard_step["shard"] == "${{ matrix.shard }}/4" and set(shard_step) <= set(ACTION["inputs"])
    assert merge["needs"] == "batch" and merge["if"] == "always()"
    assert merge["steps"][-1]["with"]["merge-reports"] == "shards/*/report.json"
    assert gitlab["ghostline"]["parallel"] == 4 and gitlab["ghostline-merge"]["needs"] == ["ghostline"]
    commands = gitlab["ghostline"]["script"] + gitlab["ghostline-merge"]["script"]
    assert any('--shard "$CI_NODE_INDEX/$CI_NODE_TOTAL"' in c for c in commands)
    assert any(c.startswith("agent batch merge report-*.json") for c in commands)


def test_every_option_the_docs_use_exists():
    blocks = code_blocks(DOC) + code_blocks((ROOT / "README.md").read_text())
    commands = [c for lang, body in blocks if lang in ("yaml", "sh", "")
                for c in re.findall(r"agent (?:batch|run)\b[^\n`]*(?:\n {6,}--[^\n]*)*", body.replace("\\\n", " "))]
    used = {"batch": set(), "run": set()}
    for c in commands:
        words = shlex.split(c.replace("\n", " "), comments=True)
        kind = "batch" if words[1] == "batch" else "run"
        if kind == "batch" and words[2] == "merge":
            assert {w for w in words if w.startswith("--")} <= cli_options("batch", "merge")
            continue
        used[kind] |= {w.split("=")[0] for w in words if w.startswith("-") and w != "-"}
    assert used["batch"] and used["batch"] <= cli_options("batch", "run")
    assert used["run"] <= cli_options("run")


def _script(step: str, tmp_path: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    path = tmp_path / f"{step.split()[0].lower()}.sh"
    path.write_text(STEPS[step]["run"])
    return subprocess.run(["bash", "-eo", "pipefail", str(path)], env=env, capture_output=True, text=True,
                          timeout=180, cwd=env["GITHUB_WORKSPACE"])


@pytest.fixture
def stand_in_gh(tmp_path: Path) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    gh = bin_dir / "gh"
    gh.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" >> {tmp_path}/gh-calls\n')
    gh.chmod(gh.stat().st_mode | stat.S_IEXEC)
    return bin_dir


def test_the_actions_scripts_run_a_batch_and_open_pull_requests(tmp_path, stand_in_gh):
    repo = make_repo(tmp_path)
    origin = tmp_path / "origin.git"
    subprocess.run(["git", "init", "-q", "--bare", str(origin)], check=True)
    subprocess.run(["git", "-C", str(repo), "remote", "add", "origin", str(origin)], check=True)
    jobs = write_jobs(repo / "jobs.jsonl", [{"id": "one", "task": "[one] go"}, {"id": "two", "task": "[two] go"}])

    def script(body, provider):
        job, turn = job_and_turn(body)
        return reply("", [("write", {"path": f"{job}.txt", "content": "x\n"})]) if turn == 0 else \
            reply(f"Add {job}.txt\n\nFor the test.")

    with FakeModelServer(script) as srv:
        env = agent_env(tmp_path, srv, "anthropic")
        key = env.pop("ANTHROPIC_API_KEY")
        env.update({"PATH": f"{stand_in_gh}:{Path(AGENT).parent}:{os.environ['PATH']}", "RUNNER_TEMP": str(tmp_path),
                    "GITHUB_OUTPUT": str(tmp_path / "outputs"), "GITHUB_WORKSPACE": str(repo),
                    "ANTHROPIC_API_KEY": key, "JOBS": str(jobs), "MODEL": "anthropic:claude-sonnet-5-5",
                    "PARALLEL": "2", "COMMIT": "true", "OUT": str(tmp_path / "ghostline"),
                    "EXTRA_ARGS": "--allow 'bash: npm test *' --max-turns 5"})
        for name in ("TASK", "MERGE_REPORTS", "BASE_URL", "VERIFY", "MAX_TURNS", "MAX_COST", "MAX_COST_TOTAL",
                     "SHARD", "BRANCH"):
            env[name] = ""
        ran = _script("Run the agent", tmp_path, env)
    assert ran.returncode == 0, ran.stderr
    outputs = dict(line.split("=", 1) for line in (tmp_path / "outputs").read_text().splitlines())
    assert outputs["exit-code"] == "0"
    report = json.loads(Path(outputs["report"]).read_text())
    assert [j["status"] for j in report["jobs"]] == ["success", "success"]
    assert (tmp_path / "ghostline" / "junit.xml").is_file() and (tmp_path / "ghostline" / "patches" / "one.patch").is_file()

    env.update({"REPORT": outputs["report"], "PR_BASE": "", "DEFAULT_BRANCH": "main", "GH_TOKEN": "t"})
    prs = _script("Open pull requests", tmp_path, env)
    assert prs.returncode == 0, prs.stderr
    pushed = subprocess.run(["git", "-C", str(origin), "for-each-ref", "--format=%(refname:short) %(objectname)"],
                            capture_output=True, text=True, check=True).stdout.split("\n")
    assert sorted(filter(None, pushed)) == sorted(f"{j['branch']} {j['commit']}" for j in report["jobs"])
    calls = (tmp_path / "gh-calls").read_text().split("\n")
    assert calls.count("create") == 2 and "ghostline/one" in calls and "Add one.txt" in calls
    assert calls[calls.index("--base") + 1] == "main"
