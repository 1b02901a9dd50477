"""A JOBS file (JSON lines, one job each) and which of its jobs a shard runs.

Each line is `{"id", "task", "cwd"?, "model"?, "verify"?, "max_turns"?, "max_cost"?, "base"?}`; blank lines are
skipped. Every problem is found before anything runs and reported as one line naming the file and line number.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

JOB_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["id", "task"],
    "additionalProperties": False,
    "properties": {
        "id": {"type": "string", "pattern": r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$"},
        "task": {"type": "string", "minLength": 1},
        "cwd": {"type": "string", "minLength": 1},
        "model": {"type": "string", "minLength": 1},
        "verify": {"type": "string", "minLength": 1},
        "max_turns": {"type": "integer", "minimum": 1},
        "max_cost": {"type": "number", "minimum": 0},
        "base": {"type": "string", "minLength": 1},
    },
}
_SHARD = re.compile(r"^(\d+)/(\d+)$")


class JobsError(ValueError):
    """A JOBS file or --shard that cannot be used: one line for the user."""


@dataclass(frozen=True)
class Job:
    index: int  # 0-based position among the file's jobs (what --shard splits on)
    line: int  # 1-based line number in the file
    id: str
    task: str
    cwd: str | None = None
    model: str | None = None
    verify: str | None = None
    max_turns: int | None = None
    max_cost: float | None = None
    base: str | None = None


@dataclass(frozen=True)
class JobsFile:
    path: Path
    jobs: list[Job]
    digest: str  # sha256 of the file: shard reports of one batch carry the same


def _problem(error: Any) -> str:
    if error.validator == "additionalProperties":
        known = ", ".join(JOB_SCHEMA["properties"])
        return f"{error.message} (a job has: {known})"
    if error.validator == "pattern" and list(error.absolute_path) == ["id"]:
        return (f"id {error.instance!r} must be letters, digits, '.', '_' or '-' (it names the job's branch), "
                f"at most 100 characters")
    where = "/".join(str(p) for p in error.absolute_path)
    return f"{where + ': ' if where else ''}{error.message}"


def load_jobs(path: Path) -> JobsFile:
    """Read and check the whole file. Raises JobsError naming the first bad line."""
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import best_match

    try:
        data = path.read_bytes()
    except OSError as e:
        raise JobsError(f"cannot read the jobs file {path}: {e.strerror or e}") from None
    validator = Draft202012Validator(JOB_SCHEMA)
    jobs: list[Job] = []
    first_line: dict[str, int] = {}
    for number, raw in enumerate(data.decode("utf-8", errors="replace").splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            obj = json.loads(raw)
        except ValueError as e:
            raise JobsError(f"{path}:{number}: not a JSON object: {e}") from None
        error = best_match(validator.iter_errors(obj))
        if error is not None:
            raise JobsError(f"{path}:{number}: {_problem(error)}")
        if obj["id"] in first_line:
            raise JobsError(f"{path}:{number}: job id {obj['id']!r} is already used on line {first_line[obj['id']]}")
        first_line[obj["id"]] = number
        jobs.append(Job(index=len(jobs), line=number, **obj))
    if not jobs:
        raise JobsError(f"{path} holds no jobs (one JSON object per line: {{\"id\": ..., \"task\": ...}})")
    return JobsFile(path, jobs, hashlib.sha256(data).hexdigest())


def parse_shard(text: str) -> tuple[int, int]:
    """`K/N` (1 <= K <= N) → (K, N). Raises JobsError."""
    m = _SHARD.match(text.strip())
    if not m or not 1 <= int(m.group(1)) <= int(m.group(2)):
        raise JobsError(f"--shard takes K/N with 1 <= K <= N, e.g. --shard 2/4 (got {text!r})")
    return int(m.group(1)), int(m.group(2))


def select_shard(jobs: list[Job], shard: tuple[int, int] | None) -> list[Job]:
    """The jobs of shard K of N: those whose index i has i % N == K - 1 (all of them without a shard)."""
    if shard is None:
        return list(jobs)
    k, n = shard
    return [j for j in jobs if j.index % n == k - 1]
