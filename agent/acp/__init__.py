"""`agent acp`: Ghostline as an Agent Client Protocol agent (protocol version 1) over stdio, for editors.

Public surface: serve() -> exit code;  GhostlineAgent (the protocol's agent side, for tests and embedding).
"""

from __future__ import annotations

import asyncio
import logging
import sys

from ghostline.agent.acp.agent import GhostlineAgent
from ghostline.agent.options import RunOptions

__all__ = ["GhostlineAgent", "serve"]


def serve(base: RunOptions | None = None) -> int:
    """Answer an editor on stdin/stdout until it hangs up. Logs (warnings) go to stderr, the editor's log."""
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="ghostline: %(message)s")
    try:
        asyncio.run(_serve(GhostlineAgent(base)))
    except KeyboardInterrupt:
        return 130
    return 0


async def _serve(agent: GhostlineAgent) -> None:
    from acp import run_agent

    try:
        await run_agent(agent)
    finally:
        await agent.close()
