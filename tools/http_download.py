"""The fetch tool's HTTP side, apart from it so that the agent's start does not import httpx (~0.1 s of CPU that
the first model request would wait for): this module loads with the first download."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

from ghostline.tools.base import ToolError


@dataclass(frozen=True)
class Download:
    url: str  # after the redirects followed
    status: int
    headers: Mapping[str, str]
    body: bytes
    cut: bool  # the body stopped at the size cap


async def download(url: str, *, follow: Callable[[str, str], Awaitable[str]], headers: dict[str, str],
                   timeout_s: float, max_bytes: int, max_redirects: int,
                   transport: httpx.AsyncBaseTransport | None = None) -> Download:
    """GET `url`, following a redirect by asking `follow(url, target)` for the URL to go on with (it raises
    ToolError to refuse one)."""
    async with httpx.AsyncClient(follow_redirects=False, timeout=timeout_s, transport=transport,
                                 headers=headers) as client:
        for _ in range(max_redirects + 1):
            got = await _get(client, url, timeout_s, max_bytes)
            location = got.headers.get("location")
            if got.status in (301, 302, 303, 307, 308) and location:
                url = await follow(url, location)
                continue
            return got
    raise ToolError(f"{url}: more than {max_redirects} redirects; giving up")


async def _get(client: httpx.AsyncClient, url: str, timeout_s: float, max_bytes: int) -> Download:
    try:
        async with client.stream("GET", url) as response:
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body.extend(chunk)
                if len(body) > max_bytes:
                    return Download(url, response.status_code, response.headers, bytes(body[:max_bytes]), True)
            return Download(url, response.status_code, response.headers, bytes(body), False)
    except httpx.TimeoutException:
        raise ToolError(f"{url}: no answer from {urlsplit(url).netloc} within {timeout_s:.0f} s") from None
    except httpx.HTTPError as exc:
        raise ToolError(f"cannot fetch {url}: {type(exc).__name__}: {exc}") from None

