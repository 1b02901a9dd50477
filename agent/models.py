"""Model specs ("PROVIDER:NAME"), the table of known models (window, output cap, prices) and provider construction.

No SDK is imported here at module import: `make_provider` imports the provider module (and so the SDK) lazily.

Prices are USD per million tokens, as published by the vendors (prompt-cache writes at the 5-minute TTL rate).
Any field can be overridden per model from config, e.g.::

    [models."openai:my-local"]
    context_window = 65536
    max_output_tokens = 8192
    input_price = 0.0
    output_price = 0.0
    protocol = "react"           # text ReAct protocol for servers without tool calling
    images = true                # the model takes images (a local vision model, say)
    edit_tool = "apply_patch"    # the edit tool it was trained on: "edit" (old/new strings) or "apply_patch"
"""

from __future__ import annotations

import dataclasses
import os
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from ghostline.agent.providers.base import ConfigError, Provider, TurnUsage
from ghostline.tools.images import ImageLimits

PROVIDERS = ("anthropic", "openai")
PROTOCOLS = ("native", "react")
EDIT_TOOLS = ("edit", "apply_patch")

DEFAULT_CONTEXT_WINDOW = 32_768
DEFAULT_MAX_OUTPUT = 4_096

OFFICIAL_HOSTS = {"anthropic": "api.anthropic.com", "openai": "api.openai.com"}
KEY_ENV = {"anthropic": "ANTHROPIC_API_KEY", "openai": "OPENAI_API_KEY"}
BASE_URL_ENV = {"anthropic": "ANTHROPIC_BASE_URL", "openai": "OPENAI_BASE_URL"}
# Sent when a custom (local) server needs no key: the SDKs refuse to start without one.
PLACEHOLDER_KEY = "ghostline-no-key"


@dataclass(frozen=True)
class ModelInfo:
    name: str
    context_window: int = DEFAULT_CONTEXT_WINDOW
    max_output_tokens: int = DEFAULT_MAX_OUTPUT
    input_price: float | None = None  # USD per million uncached input tokens
    output_price: float | None = None
    cache_read_price: float | None = None  # None: same as input_price
    cache_write_price: float | None = None  # None: same as input_price
    protocol: str = "native"  # "native" tool calling | "react" text protocol
    # OpenAI only: which request field caps the output. Current OpenAI models (o-series, gpt-5) need
    # max_completion_tokens; many OpenAI-compatible servers only know max_tokens. None: decided by the table.
    max_tokens_param: str | None = None
    prompt_caching: bool = True  # Anthropic: send cache_control breakpoints
    # Whether the model takes images (user attachments, images tools return); per image at most `max_image_bytes`
    # (raw bytes) and `max_image_side` pixels a side (0: no limit). 0 bytes: the provider's API limit.
    images: bool = False
    max_image_bytes: int = 0
    max_image_side: int = 0
    # The tool it edits files with: "edit" (exact old/new strings, Claude's) or "apply_patch" (Codex's patch
    # envelope, what the GPT-5 family was trained on).
    edit_tool: str = "edit"
    known: bool = False  # found in the table (not a default for an unknown/local model)


def _m(
    name: str, window: int, out: int, inp: float, outp: float, read: float, write: float, **kw: Any
) -> ModelInfo:
    return ModelInfo(name, window, out, inp, outp, read, write, known=True, **kw)


_OAI = {"max_tokens_param": "max_completion_tokens"}
_SEES = {"images": True}
_OAI_SEES = {**_OAI, **_SEES}
_GPT5 = {**_OAI_SEES, "edit_tool": "apply_patch"}
# What each API accepts per image: Anthropic refuses base64 over 5 MB (3.75 MB of bytes) and sides over 8000 px;
# OpenAI takes up to 20 MB an image (and 50 MB a request).
IMAGE_LIMITS = {"anthropic": (3_750_000, 8000), "openai": (20 * 1024 * 1024, 0)}

KNOWN_MODELS: dict[str, ModelInfo] = {
    m.name: m
    for m in [
        # Anthropic (cache read 0.1x input, 5-minute cache write 1.25x input)
        _m("claude-fable-5-1", 1_000_000, 128_000, 10.0, 50.0, 1.00, 12.50, **_SEES),
        _m("claude-opus-5-5", 1_000_000, 128_000, 4.0, 20.0, 0.40, 5.0, **_SEES),
        _m("claude-sonnet-5-5", 1_000_000, 128_000, 2.0, 10.0, 0.20, 2.50, **_SEES),
        _m("claude-haiku-5-5", 1_000_000, 128_000, 0.10, 0.50, 0.01, 0.125, **_SEES),
        _m("claude-opus-5", 1_000_000, 128_000, 5.0, 25.0, 0.50, 6.25, **_SEES),
        _m("claude-sonnet-5", 1_000_000, 128_000, 2.0, 10.0, 0.20, 2.50, **_SEES),
        _m("claude-opus-4-8", 1_000_000, 128_000, 5.0, 25.0, 0.50, 6.25, **_SEES),
        _m("claude-opus-4-7", 1_000_000, 128_000, 5.0, 25.0, 0.50, 6.25, **_SEES),
        _m("claude-opus-4-6", 1_000_000, 128_000, 5.0, 25.0, 0.50, 6.25, **_SEES),
        _m("claude-sonnet-4-6", 1_000_000, 128_000, 3.0, 15.0, 0.30, 3.75, **_SEES),
        _m("claude-opus-4-5", 200_000, 64_000, 5.0, 25.0, 0.50, 6.25, **_SEES),
        _m("claude-opus-4-1", 200_000, 32_000, 15.0, 75.0, 1.50, 18.75, **_SEES),
        _m("claude-opus-4", 200_000, 32_000, 15.0, 75.0, 1.50, 18.75, **_SEES),
        _m("claude-sonnet-4-5", 200_000, 64_000, 3.0, 15.0, 0.30, 3.75, **_SEES),
        _m("claude-sonnet-4", 200_000, 64_000, 3.0, 15.0, 0.30, 3.75, **_SEES),
        _m("claude-3-7-sonnet", 200_000, 64_000, 3.0, 15.0, 0.30, 3.75, **_SEES),
        _m("claude-haiku-4-5", 200_000, 64_000, 1.0, 5.0, 0.10, 1.25, **_SEES),
        _m("claude-3-5-haiku", 200_000, 8_192, 0.80, 4.0, 0.08, 1.0, **_SEES),
        _m("claude-3-haiku", 200_000, 4_096, 0.25, 1.25, 0.03, 0.30, **_SEES),
        # OpenAI (cached input is discounted; there is no cache-write premium)
        _m("gpt-5.1", 400_000, 128_000, 1.25, 10.0, 0.125, 1.25, **_GPT5),
        _m("gpt-5.1-codex", 400_000, 128_000, 1.25, 10.0, 0.125, 1.25, **_GPT5),
        _m("gpt-5.1-codex-mini", 400_000, 128_000, 0.25, 2.0, 0.025, 0.25, **_GPT5),
        _m("gpt-5", 400_000, 128_000, 1.25, 10.0, 0.125, 1.25, **_GPT5),
        _m("gpt-5-codex", 400_000, 128_000, 1.25, 10.0, 0.125, 1.25, **_GPT5),
        _m("gpt-5-mini", 400_000, 128_000, 0.25, 2.0, 0.025, 0.25, **_GPT5),
        _m("gpt-5-nano", 400_000, 128_000, 0.05, 0.40, 0.005, 0.05, **_GPT5),
        _m("gpt-4.1", 1_047_576, 32_768, 2.0, 8.0, 0.50, 2.0, **_OAI_SEES),
        _m("gpt-4.1-mini", 1_047_576, 32_768, 0.40, 1.60, 0.10, 0.40, **_OAI_SEES),
        _m("gpt-4.1-nano", 1_047_576, 32_768, 0.10, 0.40, 0.025, 0.10, **_OAI_SEES),
        _m("gpt-4o", 128_000, 16_384, 2.50, 10.0, 1.25, 2.50, **_OAI_SEES),
        _m("gpt-4o-mini", 128_000, 16_384, 0.15, 0.60, 0.075, 0.15, **_OAI_SEES),
        _m("o3", 200_000, 100_000, 2.0, 8.0, 0.50, 2.0, **_OAI_SEES),
        _m("o3-mini", 200_000, 100_000, 1.10, 4.40, 0.55, 1.10, **_OAI),
        _m("o4-mini", 200_000, 100_000, 1.10, 4.40, 0.275, 1.10, **_OAI_SEES),
        _m("o1", 200_000, 100_000, 15.0, 60.0, 7.50, 15.0, **_OAI_SEES),
    ]
}

# Aliases that name the same model as a table entry.
_ALIASES = {"claude-opus-4-0": "claude-opus-4", "claude-sonnet-4-0": "claude-sonnet-4"}
# Dated snapshots and "-latest" resolve to the base entry: claude-sonnet-4-5-20250929, gpt-4o-2024-08-06.
_SNAPSHOT = re.compile(r"-(?:\d{8}|\d{4}-\d{2}-\d{2}|latest)$")

_OVERRIDE_FIELDS = {f.name for f in dataclasses.fields(ModelInfo)} - {"name", "known"}


def parse_model_spec(spec: str | None) -> tuple[str, str]:
    """'anthropic:claude-sonnet-4-5' -> ('anthropic', 'claude-sonnet-4-5'). Raises ConfigError with a fix."""
    if spec is None or not spec.strip():
        raise ConfigError(
            "no model configured: pass --model PROVIDER:NAME (e.g. --model anthropic:claude-sonnet-5-5), "
            'set GHOSTLINE_MODEL, or set model = "..." in the config file'
        )
    spec = spec.strip()
    provider, sep, name = spec.partition(":")
    provider = provider.strip().lower()
    name = name.strip()
    if not sep:
        guess = _guess_provider(spec)
        hint = f"--model {guess}:{spec}" if guess else "--model anthropic:NAME or --model openai:NAME"
        raise ConfigError(f"model '{spec}' has no provider: use PROVIDER:NAME, e.g. {hint}")
    if provider not in PROVIDERS:
        raise ConfigError(
            f"unknown provider '{provider}' in model '{spec}': use anthropic:NAME or openai:NAME "
            "(any OpenAI-compatible server is openai:NAME with --base-url URL)"
        )
    if not name:
        raise ConfigError(f"model '{spec}' has no name: use {provider}:NAME, e.g. {_example(provider)}")
    return provider, name


def _guess_provider(name: str) -> str | None:
    n = name.lower()
    if n.startswith("claude"):
        return "anthropic"
    if n.startswith(("gpt-", "o1", "o3", "o4", "chatgpt")):
        return "openai"
    return None


def _example(provider: str) -> str:
    return "anthropic:claude-sonnet-5-5" if provider == "anthropic" else "openai:gpt-4.1"


# Models of a known family that are not in the table (newer releases): a conservative window and output cap,
# the family's request conventions, and an unknown price (cost None) until configured.
_FAMILIES: list[tuple[re.Pattern[str], dict[str, Any]]] = [
    (re.compile(r"^claude-"), {"context_window": 200_000, "max_output_tokens": 32_000, **_SEES}),
    (re.compile(r"^gpt-5"), {"context_window": 200_000, "max_output_tokens": 32_768, **_GPT5}),
    (re.compile(r"^o[1-9]"), {"context_window": 200_000, "max_output_tokens": 32_768, **_OAI}),
    (re.compile(r"^gpt-4\.1"), {"context_window": 1_000_000, "max_output_tokens": 32_768, **_OAI_SEES}),
    (re.compile(r"^gpt-4o"), {"context_window": 128_000, "max_output_tokens": 16_384, **_OAI_SEES}),
]


def _lookup(name: str) -> ModelInfo | None:
    n = name.lower()
    for candidate in (n, _SNAPSHOT.sub("", n)):
        candidate = _ALIASES.get(candidate, candidate)
        if candidate in KNOWN_MODELS:
            return KNOWN_MODELS[candidate]
    for pattern, fields in _FAMILIES:
        if pattern.match(n):
            return ModelInfo(name=name, **fields)
    return None


def model_info(spec: str, overrides: dict[str, dict[str, Any]] | None = None) -> ModelInfo:
    """The table entry for a spec (or defaults for an unknown/local model), with config overrides applied.

    `overrides` maps "provider:name" (or bare "name") to fields of ModelInfo; unknown fields are a ConfigError."""
    provider, name = parse_model_spec(spec)
    info = _lookup(name)
    info = dataclasses.replace(info, name=name) if info else ModelInfo(name=name)
    info = _with_overrides(info, provider, name, overrides or {})
    max_bytes, max_side = IMAGE_LIMITS[provider]
    return dataclasses.replace(info, max_image_bytes=info.max_image_bytes or max_bytes,
                               max_image_side=info.max_image_side or max_side)


def image_limits(info: ModelInfo) -> ImageLimits | None:
    """What the model takes per image (for tools and attachments); None when it takes no images."""
    if not info.images:
        return None
    return ImageLimits(info.max_image_bytes or min(b for b, _ in IMAGE_LIMITS.values()), info.max_image_side)


def _with_overrides(info: ModelInfo, provider: str, name: str, overrides: dict[str, dict[str, Any]]) -> ModelInfo:
    merged: dict[str, Any] = {}
    for key in (name, f"{provider}:{name}"):  # the full spec wins over the bare name
        merged.update(overrides.get(key) or {})
    if not merged:
        return info
    bad = sorted(set(merged) - _OVERRIDE_FIELDS)
    if bad:
        raise ConfigError(
            f"unknown setting {bad[0]!r} for model '{provider}:{name}' in config: "
            f"use one of {', '.join(sorted(_OVERRIDE_FIELDS))}"
        )
    if "images" in merged and not isinstance(merged["images"], bool):
        raise ConfigError(f"images for model '{provider}:{name}' must be true or false, got {merged['images']!r}")
    for k in ("max_image_bytes", "max_image_side"):
        if k in merged and (not isinstance(merged[k], int) or isinstance(merged[k], bool) or merged[k] < 0):
            raise ConfigError(f"{k} for model '{provider}:{name}' must be an integer >= 0, got {merged[k]!r}")
    for k in ("context_window", "max_output_tokens"):
        if k in merged and (not isinstance(merged[k], int) or isinstance(merged[k], bool) or merged[k] <= 0):
            raise ConfigError(
                f"{k} for model '{provider}:{name}' must be a positive integer, got {merged[k]!r}"
            )
    for k in ("input_price", "output_price", "cache_read_price", "cache_write_price"):
        v = merged.get(k)
        if (
            k in merged
            and v is not None
            and (isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0)
        ):
            raise ConfigError(
                f"{k} for model '{provider}:{name}' must be a number >= 0 (USD per million tokens)"
            )
        if v is not None and k in merged:
            merged[k] = float(v)
    if "edit_tool" in merged and merged["edit_tool"] not in EDIT_TOOLS:
        raise ConfigError(f"edit_tool for model '{provider}:{name}' must be \"edit\" or \"apply_patch\", "
                          f"got {merged['edit_tool']!r}")
    if "protocol" in merged and merged["protocol"] not in PROTOCOLS:
        raise ConfigError(
            f'protocol for model \'{provider}:{name}\' must be "native" or "react", got {merged["protocol"]!r}'
        )
    if "max_tokens_param" in merged and merged["max_tokens_param"] not in (
        None,
        "max_tokens",
        "max_completion_tokens",
    ):
        raise ConfigError(
            f'max_tokens_param for model \'{provider}:{name}\' must be "max_tokens" or "max_completion_tokens"'
        )
    return dataclasses.replace(info, **merged)


def cost_usd(usage: TurnUsage, info: ModelInfo) -> float | None:
    """Dollar cost of `usage` at `info`'s prices; None when the price is unknown (local/unknown models)."""
    if info.input_price is None or info.output_price is None:
        return None
    read = info.cache_read_price if info.cache_read_price is not None else info.input_price
    write = info.cache_write_price if info.cache_write_price is not None else info.input_price
    total = (
        usage.input_tokens * info.input_price
        + usage.output_tokens * info.output_price
        + usage.cache_read_input_tokens * read
        + usage.cache_creation_input_tokens * write
    )
    return total / 1_000_000


def validate_base_url(url: str, source: str = "--base-url") -> str:
    """Return the URL stripped; raise ConfigError if it is not an absolute http(s) URL."""
    u = url.strip()
    fix = f"{source} must be an http(s) URL such as http://localhost:8000/v1, got {url!r}"
    if not u or any(c.isspace() for c in u):
        raise ConfigError(f"bad base URL: {fix}")
    try:
        parts = urlsplit(u)
        _ = parts.port  # raises ValueError on a bad port
    except ValueError as exc:
        raise ConfigError(f"bad base URL ({exc}): {fix}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"bad base URL: {fix}")
    return u


def _is_custom(base_url: str | None, provider: str) -> bool:
    if not base_url:
        return False
    return (urlsplit(base_url).hostname or "").lower() != OFFICIAL_HOSTS[provider]


def make_provider(
    spec: str | None,
    *,
    base_url: str | None = None,
    api_key: str | None = None,
    overrides: dict[str, dict[str, Any]] | None = None,
    retry: Any = None,
    timeout: float | None = None,
) -> Provider:
    """Build the provider for "PROVIDER:NAME". Raises ConfigError (one line, says how to fix) for a missing model,
    an unknown provider, a missing API key or a malformed base URL.

    `base_url` falls back to the SDK's own env var (ANTHROPIC_BASE_URL / OPENAI_BASE_URL); `api_key` to
    ANTHROPIC_API_KEY (or ANTHROPIC_AUTH_TOKEN) / OPENAI_API_KEY. A custom base URL (a local server) needs no key.
    `retry` is an agent.providers.retry.RetryPolicy (None: defaults). The result has `.info` (ModelInfo)."""
    provider, name = parse_model_spec(spec)
    info = model_info(f"{provider}:{name}", overrides)

    env_url_name = BASE_URL_ENV[provider]
    if base_url is not None:
        url: str | None = validate_base_url(base_url, "--base-url")
    elif os.environ.get(env_url_name, "").strip():
        url = validate_base_url(os.environ[env_url_name], env_url_name)
    else:
        url = None

    auth_token: str | None = None
    key = api_key if api_key else None
    if key is None:
        key = os.environ.get(KEY_ENV[provider]) or None
    if key is None and provider == "anthropic":
        auth_token = os.environ.get("ANTHROPIC_AUTH_TOKEN") or None
    if key is None and auth_token is None:
        if _is_custom(url, provider):
            key = PLACEHOLDER_KEY
        else:
            env = KEY_ENV[provider]
            local = (
                " (or point --base-url at a local OpenAI-compatible server)" if provider == "openai" else ""
            )
            raise ConfigError(f"{env} is not set: export {env}=... to use {provider}:{name}{local}")

    from ghostline.agent.providers.retry import RetryPolicy

    policy = retry if retry is not None else RetryPolicy()
    native: Provider
    if provider == "anthropic":
        from ghostline.agent.providers.anthropic import AnthropicProvider

        native = AnthropicProvider(
            name, info=info, api_key=key, auth_token=auth_token, base_url=url, retry=policy, timeout=timeout
        )
    else:
        from ghostline.agent.providers.openai import OpenAIProvider

        native = OpenAIProvider(name, info=info, api_key=key, base_url=url, retry=policy, timeout=timeout)
    if info.protocol == "react":
        from ghostline.agent.providers.react import ReactProvider

        return ReactProvider(native)
    return native
