"""`--junit FILE`: the batch as JUnit XML, one testcase per job, so CI dashboards (GitHub, GitLab, Jenkins) list
each job with its outcome. Written with the standard library's ElementTree (the format is a handful of elements;
the `junit-xml` package adds nothing here)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from ghostline.agent.batch.report import NOT_RUN, SUCCESS

ERRORS = ("error_during_execution", "interrupted")  # the job could not do its work; other statuses are failures
SUITE = "ghostline batch"


def _details(job: dict[str, Any]) -> str:
    fields = [("branch", job.get("branch")), ("commit", job.get("commit")), ("patch", job.get("patch")),
              ("session", job.get("session_id")), ("turns", job.get("turns")), ("cost_usd", job.get("cost_usd")),
              ("files_changed", ", ".join(job.get("files_changed") or []) or None)]
    return "\n".join(f"{k}: {v}" for k, v in fields if v not in (None, ""))


def _testcase(job: dict[str, Any]) -> ET.Element:
    case = ET.Element("testcase", classname="ghostline.batch", name=job["id"],
                      time=f"{(job.get('duration_ms') or 0) / 1000:.3f}")
    status = job["status"]
    message = " ".join(str(job.get("result") or "").split())[:500]
    if status == NOT_RUN:
        ET.SubElement(case, "skipped", message="the batch stopped before this job started")
    elif status != SUCCESS:
        tag = "error" if status in ERRORS else "failure"
        ET.SubElement(case, tag, message=f"{status}: {message}", type=status).text = str(job.get("result") or "")
    ET.SubElement(case, "system-out").text = _details(job)
    return case


def junit_xml(report: dict[str, Any]) -> bytes:
    jobs = report["jobs"]
    counts = {"tests": len(jobs),
              "failures": sum(1 for j in jobs if j["status"] not in (SUCCESS, NOT_RUN, *ERRORS)),
              "errors": sum(1 for j in jobs if j["status"] in ERRORS),
              "skipped": sum(1 for j in jobs if j["status"] == NOT_RUN)}
    seconds = f"{(report.get('duration_ms') or 0) / 1000:.3f}"
    root = ET.Element("testsuites", name=SUITE, time=seconds, **{k: str(v) for k, v in counts.items()})
    suite = ET.SubElement(root, "testsuite", name=SUITE, time=seconds, **{k: str(v) for k, v in counts.items()})
    suite.extend(_testcase(j) for j in jobs)
    ET.indent(root)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True) + b"\n"


def write_junit(report: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(junit_xml(report))
