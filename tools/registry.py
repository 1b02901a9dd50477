"""The tool registry: the default tool set, specs for providers, and running one message's tool calls."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from ghostline.tools.base import Tool, ToolContext, ToolError, ToolResult

log = logging.getLogger(__name__)

# Asked before each call runs; returns None to allow, or the reason the call is refused (sent to the model).
Gate = Callable[[Tool, dict[str, Any]], Awaitable[str | None]]


def default_tools() -> list[Tool]:
    """read, write, edit, bash, grep, glob and search, in that order."""
    from ghostline.tools.bash import BashTool
    from ghostline.tools.edit import EditTool
    from ghostline.tools.glob_tool import GlobTool
    from ghostline.tools.grep import GrepTool
    from ghostline.tools.read import ReadTool
    from ghostline.tools.search import SearchTool
    from ghostline.tools.write import WriteTool

    return [ReadTool(), WriteTool(), EditTool(), BashTool(), GrepTool(), GlobTool(), SearchTool()]


def tool_specs(tools: Sequence[Tool]) -> list[dict[str, Any]]:
    """`{"name", "description", "input_schema"}` per tool, in order; providers translate these."""
    return [{"name": t.name, "description": t.description, "input_schema": t.input_schema} for t in tools]


# --- argument validation ---------------------------------------------------------------------------

_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "array": (list,),
    "object": (dict,),
    "null": (type(None),),
}


def _type_ok(value: Any, expected: str | list[str]) -> bool:
    names = [expected] if isinstance(expected, str) else list(expected)
    for name in names:
        if name in ("integer", "number") and isinstance(value, bool):
            continue
        if name == "integer" and isinstance(value, float) and value.is_integer():
            return True
        py = _JSON_TYPES.get(name)
        if py is None or isinstance(value, py):
            return True
    return False


def validate_args(schema: dict[str, Any], args: Any) -> tuple[dict[str, Any] | None, str | None]:
    """Check arguments against a tool's (flat, object) JSON schema: required keys, property types, enums,
    minimums, unknown keys when `additionalProperties` is false. Returns (normalised args, None) or
    (None, one-line error for the model). Integral floats for integers become ints."""
    if not isinstance(args, dict):
        return None, f"arguments must be a JSON object, got {type(args).__name__}"
    props: dict[str, Any] = schema.get("properties", {})
    missing = [k for k in schema.get("required", []) if k not in args or args[k] is None]
    if missing:
        return None, "missing required argument" + ("s" if len(missing) > 1 else "") + ": " + ", ".join(missing)
    if schema.get("additionalProperties") is False:
        unknown = [k for k in args if k not in props]
        if unknown:
            return None, (
                f"unknown argument{'s' if len(unknown) > 1 else ''}: {', '.join(unknown)} "
                f"(expected: {', '.join(props)})"
            )
    out: dict[str, Any] = {}
    for key, value in args.items():
        spec = props.get(key)
        if spec is None:
            out[key] = value
            continue
        if value is None and key not in schema.get("required", []):
            continue  # an optional argument sent as null means "not given"
        expected = spec.get("type")
        if expected is not None and not _type_ok(value, expected):
            return None, f"argument {key!r} must be of type {expected}, got {_json_type(value)}"
        if expected == "integer" and isinstance(value, float):
            value = int(value)
        if "enum" in spec and value not in spec["enum"]:
            return None, f"argument {key!r} must be one of {', '.join(map(repr, spec['enum']))}"
        if "minimum" in spec and isinstance(value, int | float) and value < spec["minimum"]:
            return None, f"argument {key!r} must be >= {spec['minimum']}"
        if "maximum" in spec and isinstance(value, int | float) and value > spec["maximum"]:
            return None, f"argument {key!r} must be <= {spec['maximum']}"
        out[key] = value
    return out, None


def _json_type(value: Any) -> str:
    for name, py in _JSON_TYPES.items():
        if name in ("integer", "number") and isinstance(value, bool):
            continue
        if isinstance(value, py):
            return name
    return type(value).__name__


# --- running calls ---------------------------------------------------------------------------------


def _one_line(text: str, limit: int = 500) -> str:
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


async def run_one(tool: Tool, call_id: str, args: Any, ctx: ToolContext, gate: Gate | None = None) -> ToolResult:
    """Validate and run one call. Never raises (except cancellation): every failure is an error result."""
    clean, err = validate_args(tool.input_schema, args)
    if err is not None:
        return ToolResult(f"Invalid arguments for {tool.name}: {err}", is_error=True, meta={"invalid_args": True})
    assert clean is not None
    try:
        if gate is not None:
            reason = await gate(tool, clean)
            if reason is not None:
                return ToolResult(reason, is_error=True, meta={"denied": True})
        result = await tool.run(clean, ctx)
    except ToolError as exc:
        # Deliberate messages for the model: kept as written (apply's errors quote the closest region).
        return ToolResult(str(exc).strip() or f"{tool.name} failed", is_error=True)
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # a bug or an unexpected OS error: the model gets one line, the log the traceback
        log.debug("tool %s (call %s) raised", tool.name, call_id, exc_info=True)
        msg = _one_line(str(exc))
        return ToolResult(
            f"{tool.name} failed: {type(exc).__name__}" + (f": {msg}" if msg else ""), is_error=True
        )
    if not isinstance(result, ToolResult):
        return ToolResult(f"{tool.name} returned no result", is_error=True)
    return result


async def run_tool_calls(
    calls: Sequence[tuple[str, str, Any]],
    tools: Sequence[Tool],
    ctx: ToolContext,
    *,
    gate: Gate | None = None,
) -> list[ToolResult]:
    """Run the tool calls of one assistant message; results come back in call order.

    Consecutive read-only calls run concurrently; any other call runs alone, after everything before
    it has finished and before anything after it starts. An unknown tool or invalid arguments give an
    error result; so does any exception inside a tool (cancellation propagates).
    """
    by_name = {t.name: t for t in tools}
    results: list[ToolResult | None] = [None] * len(calls)
    batch: list[tuple[int, Tool, str, Any]] = []

    async def flush() -> None:
        if not batch:
            return
        outs = await asyncio.gather(*(run_one(t, cid, a, ctx, gate) for _, t, cid, a in batch))
        for (i, *_), out in zip(batch, outs, strict=True):
            results[i] = out
        batch.clear()

    for i, (call_id, name, args) in enumerate(calls):
        tool = by_name.get(name)
        if tool is None:
            known = ", ".join(by_name) or "none"
            results[i] = ToolResult(f"Unknown tool {name!r}; available tools: {known}", is_error=True)
            continue
        if tool.read_only:
            batch.append((i, tool, call_id, args))
            continue
        await flush()
        results[i] = await run_one(tool, call_id, args, ctx, gate)
    await flush()
    return [r if r is not None else ToolResult("tool call was not run", is_error=True) for r in results]
