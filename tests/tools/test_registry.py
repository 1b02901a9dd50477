from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from ghostline.sandbox.policy import Action, Decision, Policy
from ghostline.sandbox.store import remembered
from ghostline.tools.base import BaseTool, ToolContext, ToolError, ToolResult
from ghostline.tools.edit import EditTool
from ghostline.tools.read import ReadTool
from ghostline.tools.registry import ApprovalAnswer, ApprovalRequest, Call, ToolRegistry, default_tools
from ghostline.tools.schema import SchemaCheck
from ghostline.tools.write import WriteTool

BARRIER_TIMEOUT = 10  # only turns a would-be deadlock into a failure; never reached when calls overlap


class Rendezvous:
    """Read-only calls that can only finish if they run at the same time: each waits for all of them."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.arrived = 0
        self.all_here = asyncio.Event()


class BarrierTool(BaseTool):
    name = "probe"
    description = "test tool"
    kind = "read"
    input_schema: dict[str, Any] = {
        "type": "object",
        "properties": {"tag": {"type": "string"}},
        "required": ["tag"],
        "additionalProperties": False,
    }

    def __init__(self, rv: Rendezvous, log: list[str]) -> None:
        self.rv, self.log = rv, log

    async def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        self.log.append(f"start {args['tag']}")
        self.rv.arrived += 1
        if self.rv.arrived == self.rv.n:
            self.rv.all_here.set()
        await asyncio.wait_for(self.rv.all_here.wait(), BARRIER_TIMEOUT)
        self.log.append(f"end {args['tag']}")
        return ToolResult(f"probe {args['tag']}")


class LogWriteTool(BaseTool):
    name = "mutate"
    description = "test tool"
    kind = "edit"
    input_schema: dict[str, Any] = {
        "type": "object",
        "properties": {"tag": {"type": "string"}, "fail": {"type": "boolean"}},
        "required": ["tag"],
    }

    def __init__(self, log: list[str]) -> None:
        self.log = log

    async def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        self.log.append(f"start {args['tag']}")
        await asyncio.sleep(0)  # yield: a concurrent scheduler would interleave here
        if args.get("fail"):
            raise RuntimeError("disk on fire\nsecond line")
        self.log.append(f"end {args['tag']}")
        return ToolResult(f"mutate {args['tag']}")


class ToolErrorTool(LogWriteTool):
    name = "refuse"

    async def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        raise ToolError("refused for a reason the model can act on")


async def run(calls: list[tuple[str, str, Any]], tools: list[Any], ctx: ToolContext) -> list[ToolResult]:
    return await ToolRegistry(tools).run([Call(*c) for c in calls], ctx)


async def test_read_only_calls_overlap(ws: Path, ctx: ToolContext) -> None:
    log: list[str] = []
    probe = BarrierTool(Rendezvous(3), log)
    calls = [("c1", "probe", {"tag": "a"}), ("c2", "probe", {"tag": "b"}), ("c3", "probe", {"tag": "c"})]
    results = await run(calls, [probe], ctx)
    assert [r.content for r in results] == ["probe a", "probe b", "probe c"]
    assert not any(r.is_error for r in results)
    # All three started before any ended: they ran concurrently (sequentially they would deadlock).
    assert [e.split()[0] for e in log[:3]] == ["start"] * 3


async def test_writes_run_in_order_and_separate_read_batches(ws: Path, ctx: ToolContext) -> None:
    log: list[str] = []
    rv1, rv2 = Rendezvous(2), Rendezvous(2)
    p1, p2 = BarrierTool(rv1, log), BarrierTool(rv2, log)
    p2.name = "probe2"
    w = LogWriteTool(log)
    calls = [
        ("1", "probe", {"tag": "r1"}),
        ("2", "probe", {"tag": "r2"}),
        ("3", "mutate", {"tag": "w1"}),
        ("4", "mutate", {"tag": "w2"}),
        ("5", "probe2", {"tag": "r3"}),
        ("6", "probe2", {"tag": "r4"}),
    ]
    results = await run(calls, [p1, p2, w], ctx)
    assert [r.content for r in results] == ["probe r1", "probe r2", "mutate w1", "mutate w2", "probe r3", "probe r4"]
    assert log[4:8] == ["start w1", "end w1", "start w2", "end w2"]
    assert set(log[:4]) == {"start r1", "start r2", "end r1", "end r2"}
    assert set(log[8:]) == {"start r3", "start r4", "end r3", "end r4"}


async def test_errors_become_results(ws: Path, ctx: ToolContext) -> None:
    log: list[str] = []
    w = LogWriteTool(log)
    calls = [
        ("1", "nope", {}),
        ("2", "mutate", {"tag": "x", "fail": True}),
        ("3", "mutate", {}),
        ("4", "mutate", {"tag": 5}),
        ("5", "mutate", "not an object"),
        ("6", "refuse", {"tag": "y"}),
        ("7", "mutate", {"tag": "ok"}),
    ]
    results = await run(calls, [w, ToolErrorTool(log)], ctx)
    assert all(r.is_error for r in results[:6]) and not results[6].is_error
    assert "Unknown tool 'nope'" in results[0].content and "mutate" in results[0].content
    assert results[1].content == "mutate failed: RuntimeError: disk on fire second line"
    assert "missing required argument: tag" in results[2].content
    assert "'tag' must be of type string, got integer" in results[3].content
    assert "must be a JSON object" in results[4].content
    assert results[5].content == "refused for a reason the model can act on"
    assert results[6].content == "mutate ok"


class OnlyReads:
    """A policy that asks about anything but reads."""

    def __init__(self) -> None:
        self.seen: list[Action] = []

    def evaluate(self, action: Action, *, mode: str, approval: str, workspace: Path, cwd: Path) -> Decision:
        self.seen.append(action)
        return Decision("allow" if action.kind == "read" else "ask", "writes need approval")


async def test_headless_gate_denies_what_needs_approval(ws: Path, ctx: ToolContext) -> None:
    (ws / "a.txt").write_text("hello\n")
    policy = OnlyReads()
    registry = ToolRegistry([ReadTool(), WriteTool()], policy=policy)
    results = await registry.run([Call("1", "read", {"path": "a.txt"}), Call("2", "write", {"path": "b.txt",
                                                                                           "content": "x"})], ctx)
    assert "hello" in results[0].content
    assert results[1].is_error and "needs the user's approval" in results[1].content and results[1].meta["denied"]
    assert not (ws / "b.txt").exists()
    # The policy judged what the tools said of their calls: kinds and paths, not names.
    assert [(a.kind, a.paths) for a in policy.seen] == [("read", ("a.txt",)), ("edit", ("b.txt",))]


async def test_approver_sees_title_preview_and_rule_and_its_answer_counts(ws: Path, ctx: ToolContext) -> None:
    asked: list[ApprovalRequest] = []
    answers = [ApprovalAnswer.deny("use the existing helper instead"), ApprovalAnswer(True)]

    async def approver(request: ApprovalRequest) -> ApprovalAnswer:
        asked.append(request)
        return answers.pop(0)

    registry = ToolRegistry([WriteTool()], policy=OnlyReads(), approver=approver)
    call = Call("1", "write", {"path": "b.txt", "content": "new\n"})
    denied, allowed = await registry.run([call], ctx), await registry.run([call], ctx)
    assert denied[0].is_error and "they said: use the existing helper instead" in denied[0].content
    assert not allowed[0].is_error and (ws / "b.txt").read_text() == "new\n"
    first = asked[0]
    assert first.title == "write b.txt" and first.kind == "edit" and first.suggested_rule == "write"
    assert first.preview is not None and first.preview.kind == "diff" and "+new" in first.preview.text


async def test_a_call_bound_to_fail_is_refused_before_anyone_is_asked(ws: Path, ctx: ToolContext) -> None:
    asked: list[ApprovalRequest] = []

    async def approver(request: ApprovalRequest) -> ApprovalAnswer:
        asked.append(request)
        return ApprovalAnswer(True)

    (ws / "a.py").write_text("x = 1\n")
    policy = OnlyReads()
    registry = ToolRegistry([ReadTool(), EditTool(), WriteTool()], policy=policy, approver=approver)
    unread = [Call("1", "edit", {"path": "a.py", "old_string": "1", "new_string": "2"}),
              Call("2", "write", {"path": "a.py", "content": "y = 2\n"}),
              Call("3", "edit", {"path": "a.py", "old_string": "1", "new_string": "1"})]
    results = await registry.run(unread, ctx)
    assert [r.meta.get("unmet") for r in results] == [True, True, True] and not asked and not policy.seen
    assert "has not been read" in results[0].content and "has not been read" in results[1].content
    assert "identical" in results[2].content and (ws / "a.py").read_text() == "x = 1\n"
    await registry.run([Call("4", "read", {"path": "a.py"})], ctx)
    (edited,) = await registry.run([unread[0]], ctx)  # read first: now it is asked about, and runs
    assert not edited.is_error and len(asked) == 1 and (ws / "a.py").read_text() == "x = 2\n"


async def test_always_remembers_the_suggested_rule_for_the_project(ws: Path, ctx: ToolContext) -> None:
    async def always(request: ApprovalRequest) -> ApprovalAnswer:
        return ApprovalAnswer(True, always=True)

    registry = ToolRegistry([WriteTool()], policy=Policy(), approver=always, project_root=ws)
    ctx.approval = "ask"
    verdict = await registry.admit(Call("1", "write", {"path": "b.txt", "content": "x"}), ctx)
    assert verdict.allowed and verdict.asked and verdict.remembered_rule == "write"
    assert remembered(ws) == ["write"]
    again = await registry.admit(Call("2", "write", {"path": "c.txt", "content": "y"}), ctx)
    assert again.allowed and not again.asked  # the remembered rule now allows it


async def test_malformed_and_unknown_calls_never_reach_the_policy(ws: Path, ctx: ToolContext) -> None:
    policy = OnlyReads()
    registry = ToolRegistry([ReadTool()], policy=policy)
    bad = await registry.admit(Call("1", "read", {}, raw_arguments='{"path": "a'), ctx)
    unknown = await registry.admit(Call("2", "nope", {}), ctx)
    assert bad.refusal is not None and bad.refusal.meta == {"malformed": True} and '{"path": "a' in bad.reason
    assert unknown.refusal is not None and "Unknown tool 'nope'" in unknown.reason
    assert policy.seen == []


def test_schema_check_normalises_and_explains() -> None:
    check = SchemaCheck(ReadTool.input_schema).check
    assert check({"path": "a", "offset": 2.0}) == ({"path": "a", "offset": 2}, None)
    assert check({"path": "a", "limit": None}) == ({"path": "a"}, None)
    assert "unknown argument: file_path" in str(check({"path": "a", "file_path": "b"})[1])
    assert "must be of type integer, got boolean" in str(check({"path": "a", "offset": True})[1])
    assert "must be >= 1" in str(check({"path": "a", "offset": 0})[1])
    assert "got number" in str(check({"path": "a", "offset": 1.5})[1])
    nested = SchemaCheck({"type": "object", "properties": {"items": {"type": "array", "items": {"enum": [1, 2]}}}})
    assert "argument 'items.0' must be one of 1, 2" == nested.check({"items": [3]})[1]


def test_default_tools_and_specs() -> None:
    tools = default_tools()
    names = [t.name for t in tools]
    assert names == ["read", "write", "edit", "bash", "grep", "glob", "search", "fetch", "todo_write"]
    specs = ToolRegistry(tools).specs()
    for spec in specs:
        assert set(spec) == {"name", "description", "input_schema"}
        assert spec["input_schema"]["type"] == "object" and spec["description"]
    assert {t.name: t.kind for t in tools} == {"read": "read", "write": "edit", "edit": "edit", "bash": "shell",
                                               "grep": "read", "glob": "read", "search": "read",
                                               "fetch": "read", "todo_write": "other"}
    by = {s["name"]: s["input_schema"] for s in specs}
    assert set(by["read"]["properties"]) == {"path", "offset", "limit"}
    assert set(by["write"]["properties"]) == {"path", "content"}
    assert set(by["edit"]["properties"]) == {"path", "old_string", "new_string", "replace_all"}
    assert set(by["bash"]["properties"]) == {"command", "timeout"}
    assert set(by["grep"]["properties"]) == {"pattern", "path", "glob", "ignore_case", "context", "max_results"}
    assert set(by["glob"]["properties"]) == {"pattern", "path"}
    assert set(by["fetch"]["properties"]) == {"url", "start"}
    patching = [t.name for t in default_tools("apply_patch")]
    assert patching == [("apply_patch" if n == "edit" else n) for n in names]


class SometimesReadsTool(BarrierTool):
    """A tool that can do more than read (kind other) but says of some calls that they only read."""

    name = "maybe"
    kind = "other"
    input_schema: dict[str, Any] = {
        "type": "object",
        "properties": {"tag": {"type": "string"}, "reads": {"type": "boolean"}},
        "required": ["tag"],
    }

    def action(self, args: dict[str, Any]) -> Action:
        return Action(self.name, "read" if args.get("reads") else "other")


async def test_a_call_that_says_it_reads_runs_concurrently_whatever_the_tools_kind(ws: Path,
                                                                                  ctx: ToolContext) -> None:
    log: list[str] = []
    tool = SometimesReadsTool(Rendezvous(2), log)
    registry = ToolRegistry([tool], policy=Policy(remembered=False))
    verdicts = [await registry.admit(Call(i, "maybe", {"tag": i, "reads": True}), ctx) for i in ("a", "b")]
    assert [v.kind for v in verdicts] == ["read", "read"]
    results = await registry.execute(verdicts, ctx)
    assert [r.content for r in results] == ["probe a", "probe b"]  # they overlapped (else the barrier times out)
    other = await registry.admit(Call("c", "maybe", {"tag": "c"}), ctx)
    assert other.kind == "other"


class ReportingTool(LogWriteTool):
    name = "reporter"

    async def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        assert ctx.report is not None and ctx.progress is not None
        ctx.progress("some output")
        ctx.report({"step": args["tag"]})
        return ToolResult(ctx.call_id)


async def test_each_call_runs_with_its_id_and_its_reports_go_out_under_it(ws: Path, ctx: ToolContext) -> None:
    seen: list[tuple[str, Any]] = []
    ctx.on_progress = lambda call_id, text: seen.append((call_id, text))
    ctx.on_report = lambda call_id, item: seen.append((call_id, item))
    results = await ToolRegistry([ReportingTool([])]).run([Call("c1", "reporter", {"tag": "x"}),
                                                           Call("c2", "reporter", {"tag": "y"})], ctx)
    assert [r.content for r in results] == ["c1", "c2"]
    assert seen == [("c1", "some output"), ("c1", {"step": "x"}), ("c2", "some output"), ("c2", {"step": "y"})]
