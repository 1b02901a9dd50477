"""Checking a call's arguments against its tool's JSON schema (fastjsonschema: compiled once per schema, any
schema an MCP server sends), with errors phrased for the model in one line."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import fastjsonschema

log = logging.getLogger(__name__)

_JSON_TYPE_NAMES = ((bool, "boolean"), (int, "integer"), (float, "number"), (str, "string"), (list, "array"),
                    (dict, "object"), (type(None), "null"))


def json_type(value: Any) -> str:
    for py, name in _JSON_TYPE_NAMES:
        if isinstance(value, py):
            return name
    return type(value).__name__


class SchemaCheck:
    """One tool's input schema. `check(args)` -> (normalised args, None) or (None, error for the model).

    Normalising keeps what models commonly send meaning well: an optional argument sent as null is "not given",
    and an integral float (2.0) where the schema wants an integer is that integer."""

    def __init__(self, schema: dict[str, Any]) -> None:
        self.schema = schema
        self._validate: Any = None  # compiled on first use: sessions rarely call every tool

    def check(self, args: Any) -> tuple[dict[str, Any] | None, str | None]:
        if not isinstance(args, dict):
            return None, f"arguments must be a JSON object, got {json_type(args)}"
        args = self._normalise(args)
        validate, invalid = self._validator()
        try:
            validate(args)
        except invalid as exc:
            return None, _explain(exc, self.schema)
        return args, None

    def _validator(self) -> tuple[Any, type[Exception]]:
        """The compiled check, and the error it raises. fastjsonschema is imported here, at the first call of a
        tool (~4 ms a run's start need not wait for)."""
        import fastjsonschema

        if self._validate is None:
            try:
                self._validate = fastjsonschema.compile(self.schema)
            except (fastjsonschema.JsonSchemaDefinitionException, ValueError, TypeError) as exc:
                # A schema we cannot compile (an MCP server's draft we do not know): the tool validates itself.
                log.debug("cannot compile schema %r: %s", self.schema, exc)
                self._validate = _accept_any
        return self._validate, fastjsonschema.JsonSchemaValueException

    def _normalise(self, args: dict[str, Any]) -> dict[str, Any]:
        props: dict[str, Any] = self.schema.get("properties") or {}
        required = set(self.schema.get("required") or ())
        out: dict[str, Any] = {}
        for key, value in args.items():
            if value is None and key not in required and "null" not in _types(props.get(key)):
                continue
            if isinstance(value, float) and value.is_integer() and _types(props.get(key)) == ["integer"]:
                value = int(value)
            out[key] = value
        return out


def _accept_any(args: Any) -> Any:
    return args


def _types(spec: Any) -> list[str]:
    t = spec.get("type") if isinstance(spec, dict) else None
    return [t] if isinstance(t, str) else list(t or [])


def _argument(exc: fastjsonschema.JsonSchemaValueException) -> str:
    path = [str(p) for p in (exc.path or [])][1:]  # the first element is "data"
    return ".".join(path)


def _explain(exc: fastjsonschema.JsonSchemaValueException, schema: dict[str, Any]) -> str:
    name, rule, value = _argument(exc), exc.rule, exc.value
    where = f"argument {name!r}" if name else "the arguments"
    if rule == "required" and isinstance(value, dict):
        missing = [k for k in exc.rule_definition if k not in value]
        return "missing required argument" + ("s" if len(missing) > 1 else "") + ": " + ", ".join(missing)
    if rule == "additionalProperties" and isinstance(value, dict):
        known = list((exc.definition or {}).get("properties") or {})
        unknown = [k for k in value if k not in known]
        return (f"unknown argument{'s' if len(unknown) > 1 else ''}: {', '.join(unknown)} "
                f"(expected: {', '.join(known)})")
    if rule == "type":
        want = exc.rule_definition if isinstance(exc.rule_definition, str) else " or ".join(exc.rule_definition)
        return f"{where} must be of type {want}, got {json_type(value)}"
    if rule == "enum":
        return f"{where} must be one of {', '.join(map(repr, exc.rule_definition))}"
    if rule in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        op = {"minimum": ">=", "maximum": "<=", "exclusiveMinimum": ">", "exclusiveMaximum": "<"}[rule]
        return f"{where} must be {op} {exc.rule_definition}"
    return exc.message.replace("data.", "argument ", 1).replace("data ", "the arguments ", 1)
