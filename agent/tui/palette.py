"""Ctrl+P: the slash commands in Textual's command palette (picking one is the same as typing it)."""

from __future__ import annotations

from functools import partial
from typing import Any

from textual.command import DiscoveryHit, Hit, Hits, Provider

from ghostline.agent.tui import slash


class SlashPalette(Provider):
    async def _run(self, name: str) -> None:
        app: Any = self.app
        await app.submit(f"/{name}")

    def _specs(self) -> tuple[slash.CommandSpec, ...]:
        app: Any = self.app
        return app.command_specs()  # the command files too, once the run is ready

    async def discover(self) -> Hits:
        for c in self._specs():
            yield DiscoveryHit(f"/{c.name}", partial(self._run, c.name), help=c.description)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for c in self._specs():
            score = matcher.match(f"/{c.name} {c.description}")
            if score > 0:
                yield Hit(score, matcher.highlight(f"/{c.name}"), partial(self._run, c.name), help=c.description)
