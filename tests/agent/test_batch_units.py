"""The batch's pieces without processes: JOBS parsing, shards, report totals and merging, JUnit, commit messages,
the live table; the output-schema check and piped stdin."""

from __future__ import annotations

import io
import json
import os
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from rich.console import Console

from ghostline.agent import stdin_input
from ghostline.agent.batch.jobs import Job, JobsError, JobsFile, load_jobs, parse_shard, select_shard
from ghostline.agent.batch.junit import junit_xml
from ghostline.agent.batch.progress import TableProgress
from ghostline.agent.batch.report import ReportError, build_report, job_entry, merge_reports
from ghostline.agent.landing import commit_message
from ghostline.agent.output_schema import OutputSchema
from ghostline.agent.stdin_input import STDIN_CAP, StdinError, read_stdin, task_with_stdin


def _jobs(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "jobs.jsonl"
    path.write_text(text)
    return path


@pytest.mark.parametrize(("text", "error"), [
    ('{"id": "a", "task": "t"}\n{"id": "b", "task": "t", "base": "main", "retries": 3}\n',
     ":2: Additional properties are not allowed ('retries' was unexpected) (a job has: id, task, cwd,"),
    ('{"id": "a", "task": "t"}\n\n{"id": "b" "task": "t"}\n', ":3: not a JSON object: Expecting ','"),
    ('{"id": "a", "task": "t"}\n{"id": "a", "task": "u"}\n', ":2: job id 'a' is already used on line 1"),
    ('{"id": "a/b", "task": "t"}\n', ":1: id 'a/b' must be letters, digits"),
    ('{"id": "a", "task": "t", "max_turns": "ten"}\n', ":1: max_turns: 'ten' is not of type 'integer'"),
    ('{"task": "t"}\n', ":1: 'id' is a required property"),
    ('[1, 2]\n', ":1: [1, 2] is not of type 'object'"),
    ("\n\n", " holds no jobs"),
])
def test_a_bad_jobs_file_names_the_line(tmp_path, text, error):
    path = _jobs(tmp_path, text)
    with pytest.raises(JobsError) as info:
        load_jobs(path)
    assert str(info.value).startswith(str(path)) and error in str(info.value)


def test_jobs_keep_their_index_and_line(tmp_path):
    jobs = load_jobs(_jobs(tmp_path, '\n{"id": "a", "task": "t"}\n\n{"id": "b", "task": "u", "max_cost": 1.5}\n'))
    assert [(j.id, j.index, j.line, j.max_cost) for j in jobs.jobs] == [("a", 0, 2, None), ("b", 1, 4, 1.5)]
    assert len(jobs.digest) == 64


def test_shards_partition_the_jobs():
    jobs = [Job(index=i, line=i + 1, id=f"j{i}", task="t") for i in range(7)]
    shards = [select_shard(jobs, (k, 3)) for k in (1, 2, 3)]
    assert [[j.index for j in s] for s in shards] == [[0, 3, 6], [1, 4], [2, 5]]
    assert sorted(j.id for s in shards for j in s) == sorted(j.id for j in jobs)
    assert select_shard(jobs, None) == jobs
    for bad in ("0/2", "3/2", "2", "a/b", "1/0"):
        with pytest.raises(JobsError, match="--shard takes K/N"):
            parse_shard(bad)


def _result(subtype: str, turns: int, cost: float | None, files: list[str]) -> dict:
    return {"subtype": subtype, "result": f"{subtype} text", "session_id": "s", "num_turns": turns,
            "duration_ms": 1500, "usage": {"input_tokens": 10 * turns, "output_tokens": turns,
                                           "cache_read_input_tokens": 0, "cache_creation_input_tokens": 0},
            "cost_usd": cost, "files_changed": files, "branch": "ghostline/x", "commit": None, "patch": None,
            "diffstat": {"files": len(files), "insertions": 2 * len(files), "deletions": 0}}


def _report(shard: tuple[int, int] | None, indexes: list[int], digest: str = "d" * 64) -> dict:
    jobs = [Job(index=i, line=i + 1, id=f"j{i}", task="t") for i in range(4)]
    entries = [job_entry(jobs[i], _result("success" if i != 2 else "error_budget", i + 1, 0.01, [f"f{i}"]),
                         status="success" if i != 2 else "error_budget", model="m") for i in indexes]
    return build_report(JobsFile(Path("jobs.jsonl"), jobs, digest), entries, shard=shard, stopped_by=None,
                        duration_ms=100 * len(indexes), max_cost_total=None)


def test_report_totals_and_exit_code():
    report = _report(None, [0, 1, 2, 3])
    t = report["totals"]
    assert (t["jobs"], t["succeeded"], t["failed"], t["turns"], t["tokens"]) == (4, 3, 1, 10, 110)
    assert t["by_status"] == {"error_budget": 1, "success": 3} and t["cost_usd"] == 0.04
    assert (t["files_changed"], t["insertions"]) == (4, 8) and report["exit_code"] == 1
    assert _report(None, [0, 1])["exit_code"] == 0


def test_merge_gives_the_unsharded_totals_and_refuses_what_is_not_one_batch():
    whole = _report(None, [0, 1, 2, 3])
    one, two = _report((1, 2), [0, 2]), _report((2, 2), [1, 3])
    merged = merge_reports([(Path("b.json"), two), (Path("a.json"), one)])
    assert merged["totals"] == whole["totals"] and [j["id"] for j in merged["jobs"]] == ["j0", "j1", "j2", "j3"]
    assert merged["shards"] == ["1/2", "2/2"] and merged["exit_code"] == 1 and merged["duration_ms"] == 200
    with pytest.raises(ReportError, match="missing: 2/2"):
        merge_reports([(Path("a.json"), one)])
    with pytest.raises(ReportError, match="both shard 1/2"):
        merge_reports([(Path("a.json"), one), (Path("c.json"), one)])
    with pytest.raises(ReportError, match="another jobs file"):
        merge_reports([(Path("a.json"), one), (Path("b.json"), _report((2, 2), [1, 3], digest="e" * 64))])
    with pytest.raises(ReportError, match="not a shard report"):
        merge_reports([(Path("w.json"), whole)])


def test_junit_has_one_testcase_per_job():
    report = _report(None, [0, 1, 2, 3])
    report["jobs"].append({**report["jobs"][0], "id": "later", "status": "not_run"})
    report["jobs"].append({**report["jobs"][0], "id": "cut", "status": "interrupted"})
    suite = ET.fromstring(junit_xml(report)).find("testsuite")
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors"), suite.get("skipped")) == \
        ("6", "1", "1", "1")
    cases = {c.get("name"): c for c in suite}
    assert cases["j2"].find("failure").get("type") == "error_budget" and cases["j0"].get("time") == "1.500"
    assert cases["later"].find("skipped") is not None and cases["cut"].find("error") is not None
    assert "branch: ghostline/x" in cases["j0"].find("system-out").text


def test_commit_message_from_the_summary():
    long = "Migrate every open() call in the storage layer to pathlib.Path.open and read_text where it fits"
    msg = commit_message(f"{long}\n\nTwelve files changed.", "task", "S1")
    subject, body = msg.split("\n\n", 1)
    assert len(subject) <= 72 and subject.endswith("...") and long in body and "Twelve files changed." in body
    assert body.endswith("Ghostline-Session: S1\n")
    assert commit_message("", "fix the\nflaky test", "S2").startswith("Ghostline: fix the flaky test\n\n")
    assert commit_message("## Done: tests pass", "t", "S3").startswith("Done: tests pass\n")


def test_the_live_table_shows_each_job():
    out = io.StringIO()
    progress = TableProgress(["alpha", "beta"], console=Console(file=out, width=100, force_terminal=False))
    progress.started("alpha", {})
    progress.turn("alpha", 3, 0.25)
    progress.finished({"id": "beta", "status": "error_verification", "turns": 4, "cost_usd": 0.5, "commit": None})
    progress.close({"totals": {"succeeded": 0, "jobs": 2, "turns": 7, "cost_usd": 0.75}}, "r.json")
    text = out.getvalue()
    assert "1/2 done" in text and "$0.7500" in text
    row = next(line for line in text.splitlines()[::-1] if "alpha" in line)
    assert "running" in row and "3" in row and "$0.2500" in row
    assert "error_verification" in text and "0/2 jobs succeeded (7 turns, $0.7500); report: r.json" in text


def test_output_schema_checks_the_answer(tmp_path):
    path = tmp_path / "s.json"
    path.write_text(json.dumps({"type": "object", "required": ["ok"], "properties": {"ok": {"type": "boolean"}}}))
    schema = OutputSchema.load(path)
    assert schema.check('{"ok": true}') == ({"ok": True}, None)
    assert schema.check('```json\n{"ok": false}\n```') == ({"ok": False}, None)
    assert schema.check('{"ok": "yes"}') == (None, "at /ok: 'yes' is not of type 'boolean'")
    assert schema.check("Sure! {}")[1].startswith("the final answer is not JSON")
    path.write_text("[1")
    with pytest.raises(ValueError, match="is not JSON"):
        OutputSchema.load(path)


def _pipe(data: bytes):
    r, w = os.pipe()
    os.write(w, data)
    os.close(w)
    return os.fdopen(r, "rb")


def test_a_silent_pipe_left_open_is_not_waited_for(monkeypatch, capsys):
    monkeypatch.setattr(stdin_input, "QUIET_S", 0.05)
    r, w = os.pipe()  # the writer stays open and says nothing, like a CI runner's stdin
    with os.fdopen(r, "rb") as silent:
        assert task_with_stdin("the task", silent) == "the task"
    os.close(w)
    assert "nothing arrived on stdin in 0.05 s: going on without it" in capsys.readouterr().err


def test_stdin_from_a_pipe(tmp_path):
    assert task_with_stdin("review", _pipe(b"diff\n")) == "review\n\n<stdin>\ndiff\n</stdin>"
    assert task_with_stdin(None, _pipe(b"do it\n")) == "<stdin>\ndo it\n</stdin>"
    assert task_with_stdin("review", _pipe(b"  \n")) == "review"
    assert task_with_stdin("-", _pipe(b"the task\n")) == "the task\n"
    with pytest.raises(StdinError, match="stdin was empty"):
        task_with_stdin("-", _pipe(b""))
    with pytest.raises(StdinError, match="not UTF-8"):
        task_with_stdin("x", _pipe(b"\xff\xfe ok"))
    with open(os.devnull, "rb") as null:  # not a pipe: left alone
        assert task_with_stdin("task", null) == "task"
    big = tmp_path / "big.log"
    big.write_bytes("é".encode() * STDIN_CAP)
    with big.open("rb") as f:
        text, cut = read_stdin(f)
    assert cut and len(text.encode()) <= STDIN_CAP and set(text) == {"é"}


def test_land_takes_only_real_changes_and_commits_without_a_configured_identity(tmp_path, monkeypatch):
    from ghostline.agent.landing import LandingRequest, head_commit, land

    repo = tmp_path / "r"
    repo.mkdir()
    for k in ("GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "GIT_COMMITTER_NAME", "GIT_COMMITTER_EMAIL"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no global git config: a bare CI machine
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    run = lambda *a: subprocess.run(["git", "-C", str(repo), *a], check=True, capture_output=True, text=True)  # noqa: E731
    run("init", "-q")
    (repo / ".gitignore").write_text("build/\n")
    (repo / "kept.py").write_text("x = 1\n")
    run("add", "-A")
    run("-c", "user.name=t", "-c", "user.email=t@e", "commit", "-qm", "init")
    base = head_commit(repo)
    (repo / "kept.py").write_text("x = 2\n")
    (repo / "build").mkdir()
    (repo / "build" / "out.bin").write_text("ignored")
    (repo / "staged.txt").write_text("the user's")
    run("add", "staged.txt")
    out = land(repo, base=base, paths=["kept.py", "build/out.bin", "gone.txt"], request=LandingRequest(
        commit=True, patch=tmp_path / "p.patch"), succeeded=True, summary="Bump x", task="t", session_id="S")
    assert "landing_error" not in out, out
    assert out["diffstat"] == {"files": 1, "insertions": 1, "deletions": 1} and out["commit"] == head_commit(repo)
    assert run("show", "--name-only", "--format=%s", "HEAD").stdout.split() == ["Bump", "x", "kept.py"]
    assert run("status", "--porcelain").stdout.splitlines() == ["A  staged.txt"]  # the user's staging stands
    assert "kept.py" in (tmp_path / "p.patch").read_text() and "out.bin" not in (tmp_path / "p.patch").read_text()
