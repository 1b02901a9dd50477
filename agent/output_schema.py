"""`--output-schema FILE`: the run's final answer must be JSON valid against a JSON Schema.

The model is told the schema with the task. When it ends its turn (and any --verify passed), its final answer is
parsed and validated (`jsonschema`); an invalid one goes back to it once with the validation error, and if the
second answer is still invalid the run ends with subtype `error_output_schema` (exit 6). The parsed value is the
report's `structured_result`.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from ghostline.agent import events as ev

ATTEMPTS = 2  # the first answer, and one more after the model is told what was wrong
_FENCE = re.compile(r"^```[A-Za-z0-9_-]*\s*\n(.*)\n```\s*$", re.S)


class OutputSchema:
    """A JSON Schema the final answer must satisfy. `load` raises ValueError with one line for the user."""

    def __init__(self, path: Path, schema: dict[str, Any], validator: Any):
        self.path = path
        self.schema = schema
        self._validator = validator

    @classmethod
    def load(cls, path: Path) -> OutputSchema:
        import jsonschema  # only runs that ask for a schema pay for the import

        try:
            schema = json.loads(path.read_text(encoding="utf-8"))
        except OSError as e:
            raise ValueError(f"--output-schema: cannot read {path}: {e.strerror or e}") from None
        except ValueError as e:
            raise ValueError(f"--output-schema: {path} is not JSON: {e}") from None
        if not isinstance(schema, (dict, bool)):
            raise ValueError(f"--output-schema: {path} must hold a JSON Schema object")
        validator_class = jsonschema.validators.validator_for(schema)
        try:
            validator_class.check_schema(schema)
        except jsonschema.SchemaError as e:
            raise ValueError(f"--output-schema: {path} is not a valid JSON Schema: {e.message}") from None
        return cls(path, schema, validator_class(schema))

    def instructions(self) -> str:
        """What the model is told with the task."""
        return ("When you are done, your final message must be only a JSON value valid against this JSON "
                "Schema (no other text, no code fence):\n" + json.dumps(self.schema, indent=2))

    def check(self, answer: str) -> tuple[Any, str | None]:
        """(the parsed value, None) or (None, why it is not valid)."""
        text = answer.strip()
        fenced = _FENCE.match(text)
        if fenced:  # a fence is forgiven: what is inside is the answer
            text = fenced.group(1).strip()
        try:
            value = json.loads(text)
        except ValueError as e:
            return None, f"the final answer is not JSON ({e})"
        from jsonschema.exceptions import best_match

        error = best_match(self._validator.iter_errors(value))
        if error is None:
            return value, None
        where = "/".join(str(p) for p in error.absolute_path)
        return None, f"{'at /' + where + ': ' if where else ''}{error.message}"

    def feedback(self, error: str) -> str:
        return (f"Your final answer does not satisfy the required JSON Schema: {error}. Answer again with only "
                f"the JSON value, valid against the schema.")


def with_schema(task: str | None, schema: OutputSchema | None) -> str | None:
    """The task with the schema instructions after it (a run without a new message gets them on a retry)."""
    if schema is None or not task:
        return task
    return f"{task}\n\n{schema.instructions()}"


class SchemaCheckedRun:
    """`loop.run(task)`, with the final answer of a successful run checked against `schema` (None: the loop's
    events as they are). A success is passed on only once the answer is valid; `structured` is its value."""

    def __init__(self, loop: Any, schema: OutputSchema | None):
        self.loop = loop
        self.schema = schema
        self.structured: Any = None

    def _log(self, event: ev.Event) -> ev.Event:
        if self.loop.session is not None:
            self.loop.session.append(event.to_dict())
        return event

    async def events(self, task: str | None) -> AsyncIterator[ev.Event]:
        text = with_schema(task, self.schema)
        for attempt in range(1, ATTEMPTS + 1):
            final: ev.Event | None = None
            async for e in self.loop.run(text):
                if self.schema is not None and isinstance(e, ev.Done) and e.subtype == "success":
                    final = e
                    continue
                yield e
            if final is None:  # the run ended otherwise (budget, failure...), or there is no schema
                return
            value, error = self.schema.check(final.result)  # type: ignore[union-attr]
            yield self._log(ev.OutputSchemaCheck(error is None, attempt, error or ""))
            if error is None:
                self.structured = value
                yield final
                return
            text = self.schema.feedback(error)  # type: ignore[union-attr]
        yield self._log(ev.Done(f"the final answer still does not satisfy --output-schema after {ATTEMPTS} "
                                f"attempts: {error}", "error_output_schema", self.loop.stats.num_turns))
