"""`agent batch` end to end: the real console script, the real SDKs, the fake model server, a throwaway repository.
One process runs the jobs; the fake server answers each job by the `[id]` its task starts with."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

from tests.agent.test_e2e import AGENT, MODELS, _wait_for, agent_env, make_repo, run_agent
from tests.fakeserver import FakeModelServer, reply

USAGE = {"input_tokens": 1000, "output_tokens": 100, "cache_read_input_tokens": 0,
         "cache_creation_input_tokens": 0}  # fixed: sharded and unsharded totals compare exactly


def job_and_turn(body: dict) -> tuple[str, int]:
    first = body["messages"][0]["content"]
    text = first if isinstance(first, str) else "".join(b.get("text", "") for b in first)
    assistants = sum(1 for m in body["messages"] if m["role"] == "assistant")
    return re.match(r"\[([\w-]+)\]", text).group(1), assistants


def writes_then_done(content: dict[str, str] | None = None, seen: list[str] | None = None, at_once: tuple = ()):
    """Each job writes <id>.txt (content by job id, default "ok"), then says it is done (those in `at_once` say
    so at once)."""
    def script(body, provider):
        job, turn = job_and_turn(body)
        if seen is not None and turn == 0:
            seen.append(job)
        if turn == 0 and job not in at_once:
            text = (content or {}).get(job, "ok")
            return reply("", [("write", {"path": f"{job}.txt", "content": text + "\n"})], usage=USAGE)
        return reply(f"Wrote {job}.txt for job {job}.", usage=USAGE)
    return script


def write_jobs(path: Path, jobs: list[dict]) -> Path:
    path.write_text("".join(json.dumps(j) + "\n" for j in jobs))
    return path


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=True).stdout


def batch(args: list[str], *, cwd: Path, env: dict, timeout: int = 180):
    return run_agent(["batch", *args, "-m", MODELS["anthropic"], "--approval", "auto"], cwd=cwd, env=env,
                     timeout=timeout)


def lines(stdout: str) -> list[dict]:
    return [json.loads(x) for x in stdout.splitlines()]


SIX = [{"id": "a1", "task": "[a1] write a1.txt"},
       {"id": "a2", "task": "[a2] write a2.txt"},
       {"id": "verify-fails", "task": "[verify-fails] write it", "verify": "grep -q fixed verify-fails.txt"},
       {"id": "over-budget", "task": "[over-budget] write it", "max_cost": 0.001},
       {"id": "a5", "task": "[a5] write a5.txt"},
       {"id": "a6", "task": "[a6] write a6.txt", "max_turns": 5}]


def test_a_batch_of_six_with_a_failing_verification_and_a_budget_then_resume(tmp_path):
    repo = make_repo(tmp_path)
    head = git(repo, "rev-parse", "HEAD").strip()
    jobs = write_jobs(tmp_path / "jobs.jsonl", SIX)
    report_path, junit_path, patches = tmp_path / "report.json", tmp_path / "junit.xml", tmp_path / "patches"
    with FakeModelServer(writes_then_done({"verify-fails": "broken"})) as srv:
        env = agent_env(tmp_path, srv, "anthropic")
        r = batch([str(jobs), "--parallel", "3", "--report", str(report_path), "--junit", str(junit_path),
                   "--commit", "--patch", str(patches), "--verify-attempts", "0"], cwd=repo, env=env)
    assert r.returncode == 1, r.stderr
    report = json.loads(report_path.read_text())
    by_id = {j["id"]: j for j in report["jobs"]}
    assert [j["id"] for j in report["jobs"]] == [j["id"] for j in SIX]
    assert {k: v["status"] for k, v in by_id.items()} == {
        "a1": "success", "a2": "success", "verify-fails": "error_verification", "over-budget": "error_budget",
        "a5": "success", "a6": "success"}
    assert report["exit_code"] == 1 and report["stopped_by"] is None and report["shard"] is None
    t = report["totals"]
    assert (t["jobs"], t["succeeded"], t["failed"], t["turns"], t["commits"]) == (6, 4, 2, 11, 4)
    assert t["by_status"] == {"error_budget": 1, "error_verification": 1, "success": 4}
    assert t["input_tokens"] == 11 * 1000 and t["output_tokens"] == 11 * 100 and t["cost_usd"] > 0
    for job_id, job in by_id.items():
        worktree = Path(job["worktree"])
        assert job["branch"] == f"ghostline/{job_id}" and job["base_commit"] == head and job["session_id"]
        assert worktree.parent.name == "repo.worktrees" and (worktree / f"{job_id}.txt").is_file()
        assert job["files_changed"] == [f"{job_id}.txt"] and job["diffstat"]["files"] == 1
        assert Path(job["patch"]) == patches / f"{job_id}.patch" and f"+++ b/{job_id}.txt" in Path(job["patch"]).read_text()
        if job["status"] == "success":
            assert job["commit"] == git(repo, "rev-parse", f"ghostline/{job_id}").strip()
            assert git(repo, "log", "-1", "--format=%s", job["commit"]).strip() == f"Wrote {job_id}.txt for job {job_id}."
        else:
            assert job["commit"] is None and git(repo, "rev-parse", f"ghostline/{job_id}").strip() == head
    assert by_id["verify-fails"]["verification"]["passed"] is False
    assert git(repo, "status", "--porcelain") == "" and not (repo / "a1.txt").exists()  # the main checkout
    cases = ET.parse(junit_path).getroot().find("testsuite")
    assert cases.get("tests") == "6" and cases.get("failures") == "2" and cases.get("errors") == "0"
    failed = {c.get("name"): c.find("failure").get("type") for c in cases if c.find("failure") is not None}
    assert failed == {"verify-fails": "error_verification", "over-budget": "error_budget"}
    progress = lines(r.stdout)
    assert [p["type"] for p in progress].count("job_finished") == 6 and progress[-1]["type"] == "batch_finished"

    # --resume: only the two jobs that did not succeed run again, from their base, and now succeed.
    seen: list[str] = []
    with FakeModelServer(writes_then_done({"verify-fails": "fixed"}, seen, at_once=("over-budget",))) as srv:
        r2 = batch([str(jobs), "--resume", str(report_path), "--report", str(tmp_path / "report2.json"),
                    "--commit", "--verify-attempts", "0"], cwd=repo, env=agent_env(tmp_path, srv, "anthropic"))
    assert r2.returncode == 0, r2.stderr
    assert sorted(seen) == ["over-budget", "verify-fails"]
    again = {j["id"]: j for j in json.loads((tmp_path / "report2.json").read_text())["jobs"]}
    assert {j["status"] for j in again.values()} == {"success"}
    assert again["a1"] == by_id["a1"]  # carried over as it was
    assert again["verify-fails"]["session_id"] != by_id["verify-fails"]["session_id"]
    assert git(repo, "show", "ghostline/verify-fails:verify-fails.txt") == "fixed\n"


FOUR = [{"id": f"s{i}", "task": f"[s{i}] write it"} for i in range(5)]


def test_shards_run_every_job_once_and_merge_to_the_unsharded_totals(tmp_path):
    jobs = write_jobs(tmp_path / "jobs.jsonl", FOUR)
    sharded, whole = tmp_path / "sharded", tmp_path / "whole"
    sharded.mkdir(), whole.mkdir()
    seen: list[str] = []
    with FakeModelServer(writes_then_done(seen=seen)) as srv:
        env = agent_env(tmp_path, srv, "anthropic")
        repo = make_repo(sharded)
        runs = [batch([str(jobs), "--shard", f"{k}/2", "--report", str(tmp_path / f"r{k}.json")], cwd=repo, env=env)
                for k in (1, 2)]
        shard_seen = sorted(seen)
        seen.clear()
        single = batch([str(jobs), "--parallel", "2", "--report", str(tmp_path / "all.json")], cwd=make_repo(whole),
                       env=env)
    assert all(r.returncode == 0 for r in runs) and single.returncode == 0, [r.stderr for r in runs]
    assert shard_seen == sorted(seen) == [f"s{i}" for i in range(5)]  # every job once
    first = json.loads((tmp_path / "r1.json").read_text())
    assert first["shard"] == "1/2" and [j["id"] for j in first["jobs"]] == ["s0", "s2", "s4"]
    merged = run_agent(["batch", "merge", str(tmp_path / "r2.json"), str(tmp_path / "r1.json"), "--junit",
                        str(tmp_path / "merged.xml")], cwd=tmp_path, env=env)
    assert merged.returncode == 0, merged.stderr
    report = json.loads(merged.stdout)
    unsharded = json.loads((tmp_path / "all.json").read_text())
    assert report["totals"] == unsharded["totals"] and report["totals"]["jobs"] == 5
    assert report["shards"] == ["1/2", "2/2"] and [j["id"] for j in report["jobs"]] == [f"s{i}" for i in range(5)]
    assert ET.parse(tmp_path / "merged.xml").getroot().get("tests") == "5"
    missing = run_agent(["batch", "merge", str(tmp_path / "r1.json")], cwd=tmp_path, env=env)
    assert missing.returncode == 2 and "missing: 2/2" in missing.stderr


def test_a_malformed_jobs_line_is_one_error_and_nothing_runs(tmp_path):
    repo = make_repo(tmp_path)
    jobs = tmp_path / "jobs.jsonl"
    jobs.write_text('{"id": "ok", "task": "fine"}\n\n{"id": "bad", "task": "x", "colour": "red"}\n'
                    '{"id": "ok", "task": "twice"}\n')
    with FakeModelServer([]) as srv:
        r = batch([str(jobs), "--report", str(tmp_path / "report.json")], cwd=repo,
                  env=agent_env(tmp_path, srv, "anthropic"))
        calls = len(srv.requests)
    assert r.returncode == 2 and calls == 0 and r.stdout == ""
    assert r.stderr.strip().count("\n") == 0
    assert r.stderr.startswith(f"agent: {jobs}:3: Additional properties are not allowed ('colour' was unexpected)")
    assert not (tmp_path / "repo.worktrees").exists() and not (tmp_path / "report.json").exists()


def test_ctrl_c_mid_batch_saves_sessions_and_resume_goes_on(tmp_path):
    repo = make_repo(tmp_path)
    jobs = write_jobs(tmp_path / "jobs.jsonl", [{"id": f"c{i}", "task": f"[c{i}] wait"} for i in range(3)])
    report_path = tmp_path / "report.json"

    def waits(body, provider):
        job, turn = job_and_turn(body)
        return reply("", [("bash", {"command": f"touch {tmp_path}/started-{job}; sleep 60"})]) if turn == 0 \
            else reply("done")

    with FakeModelServer(waits) as srv:
        env = agent_env(tmp_path, srv, "anthropic")
        p = subprocess.Popen([AGENT, "batch", str(jobs), "--parallel", "2", "--report", str(report_path), "-m",
                              MODELS["anthropic"], "--sandbox", "full-access"], cwd=repo, env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
        try:
            assert _wait_for(lambda: len(list(tmp_path.glob("started-*"))) == 2), "two jobs never started"
            p.send_signal(signal.SIGINT)
            out, err = p.communicate(timeout=60)
        finally:
            p.kill()
    assert p.returncode == 130, err
    report = json.loads(report_path.read_text())
    status = {j["id"]: j["status"] for j in report["jobs"]}
    assert sorted(status.values()) == ["interrupted", "interrupted", "not_run"] and report["stopped_by"] == "interrupted"
    sessions = tmp_path / "data" / "ghostline" / "sessions"
    interrupted = [j for j in report["jobs"] if j["status"] == "interrupted"]
    for job in interrupted:
        assert '"type":"interrupted"' in (sessions / f"{job['session_id']}.jsonl").read_text()

    with FakeModelServer(lambda body, provider: reply("finished")) as srv:
        r = batch([str(jobs), "--resume", str(report_path), "--report", str(tmp_path / "after.json")], cwd=repo,
                  env=agent_env(tmp_path, srv, "anthropic"))
        continued = [q.body for q in srv.requests]
    assert r.returncode == 0, r.stderr
    after = {j["id"]: j for j in json.loads((tmp_path / "after.json").read_text())["jobs"]}
    for job in interrupted:  # the interrupted jobs went on in their own sessions
        assert after[job["id"]]["session_id"] == job["session_id"] and after[job["id"]]["status"] == "success"
    assert len(continued) == 3 and sum("Carry on with the task" in json.dumps(b) for b in continued) == 2


def test_max_cost_total_stops_the_batch_with_exit_4(tmp_path):
    repo = make_repo(tmp_path)
    jobs = write_jobs(tmp_path / "jobs.jsonl", [{"id": f"m{i}", "task": f"[m{i}] loop"} for i in range(3)])
    endless = lambda body, provider: reply("", [("glob", {"pattern": "*.py"})], usage=USAGE)  # noqa: E731
    with FakeModelServer(endless) as srv:
        r = batch([str(jobs), "--parallel", "2", "--max-cost-total", "0.01", "--report", str(tmp_path / "r.json")],
                  cwd=repo, env=agent_env(tmp_path, srv, "anthropic"))
    assert r.returncode == 4, r.stderr
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["stopped_by"] == "max_cost_total" and report["max_cost_total"] == 0.01
    assert [j["status"] for j in report["jobs"]] == ["error_budget", "error_budget", "not_run"]
    assert "--max-cost-total" in report["jobs"][0]["result"] and report["totals"]["cost_usd"] >= 0.01
    assert "the batch reached --max-cost-total ($0.01)" in r.stderr
