"""Options several commands share, written once: a template function's parameters joined to each command's own.

Typer reads a command's options from its signature, so commands that take the same options would each spell out
the same parameter list. `with_options(template, into)` gives a command the template's parameters (after its own,
in `--help` too) and passes their values to it as one dict in its parameter named `into`."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any


def with_options(template: Callable[..., Any], into: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    shared = tuple(inspect.signature(template, eval_str=True).parameters.values())
    names = [p.name for p in shared]

    def decorate(command: Callable[..., Any]) -> Callable[..., Any]:
        own = [p for p in inspect.signature(command, eval_str=True).parameters.values() if p.name != into]

        @functools.wraps(command)
        def joined(**kw: Any) -> Any:
            return command(**{k: v for k, v in kw.items() if k not in names}, **{into: {k: kw[k] for k in names}})

        params = own + list(shared)
        joined.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
        joined.__annotations__ = {p.name: p.annotation for p in params}
        return joined

    return decorate
