"""Model specs, the models table and overrides, cost, make_provider's config errors, retry-after parsing."""

from __future__ import annotations

import random
import subprocess
import sys

import pytest

from ghostline.agent.models import (
    DEFAULT_CONTEXT_WINDOW,
    PLACEHOLDER_KEY,
    cost_usd,
    make_provider,
    model_info,
    parse_model_spec,
)
from ghostline.agent.providers.base import ConfigError, TurnUsage
from ghostline.agent.providers.common import context_length_error
from ghostline.agent.providers.retry import RetryPolicy, parse_retry_after


@pytest.fixture
def no_env(monkeypatch):
    for k in (
        "ANTHROPIC_API_KEY",
        "ANTHROPIC_AUTH_TOKEN",
        "OPENAI_API_KEY",
        "ANTHROPIC_BASE_URL",
        "OPENAI_BASE_URL",
    ):
        monkeypatch.delenv(k, raising=False)
    return monkeypatch


def test_parse_spec():
    assert parse_model_spec("anthropic:claude-sonnet-4-5") == ("anthropic", "claude-sonnet-4-5")
    assert parse_model_spec(" OpenAI:llama3.1:8b ") == (
        "openai",
        "llama3.1:8b",
    )  # Ollama tags keep their colon


@pytest.mark.parametrize(
    "spec,needle",
    [
        (None, "--model PROVIDER:NAME"),
        ("", "GHOSTLINE_MODEL"),
        ("gpt-4.1", "--model openai:gpt-4.1"),
        ("claude-haiku-4-5", "--model anthropic:claude-haiku-4-5"),
        ("gemini:pro", "unknown provider 'gemini'"),
        ("openai:", "has no name"),
    ],
)
def test_spec_errors_say_how_to_fix(spec, needle):
    with pytest.raises(ConfigError) as e:
        parse_model_spec(spec)
    assert needle in str(e.value) and "\n" not in str(e.value)


def test_known_models_and_snapshots():
    s = model_info("anthropic:claude-sonnet-4-5-20250929")
    assert s.known and s.context_window == 200_000 and s.input_price == 3.0 and s.cache_read_price == 0.30
    assert model_info("openai:gpt-4o-2024-08-06").context_window == 128_000
    assert model_info("openai:gpt-4.1-mini").input_price == 0.40
    assert model_info("anthropic:claude-opus-4-0").output_price == 75.0
    assert model_info("openai:o4-mini").max_tokens_param == "max_completion_tokens"


def test_unknown_model_defaults():
    local = model_info("openai:qwen2.5-coder:7b")
    assert not local.known and local.context_window == DEFAULT_CONTEXT_WINDOW == 32_768
    assert local.max_tokens_param is None and cost_usd(TurnUsage(1000, 1000), local) is None
    newer = model_info(
        "anthropic:claude-sonnet-9"
    )  # a family we know, a release we do not: no invented price
    assert newer.context_window == 200_000 and newer.input_price is None


def test_overrides():
    ov = {
        "openai:my-local": {
            "context_window": 65536,
            "input_price": 0.5,
            "output_price": 1,
            "protocol": "react",
        },
        "gpt-4.1": {"output_price": 9.0},
    }
    info = model_info("openai:my-local", ov)
    assert (info.context_window, info.input_price, info.output_price, info.protocol) == (
        65536,
        0.5,
        1.0,
        "react",
    )
    assert model_info("openai:gpt-4.1", ov).output_price == 9.0
    assert model_info("openai:gpt-4.1", ov).input_price == 2.0
    with pytest.raises(ConfigError, match="unknown setting 'windw'"):
        model_info("openai:x", {"openai:x": {"windw": 1}})
    with pytest.raises(ConfigError, match="protocol"):
        model_info("openai:x", {"openai:x": {"protocol": "xml"}})
    with pytest.raises(ConfigError, match="positive integer"):
        model_info("openai:x", {"openai:x": {"context_window": "big"}})


def test_cost():
    info = model_info("anthropic:claude-sonnet-4-5")
    usage = TurnUsage(
        input_tokens=1_000_000,
        output_tokens=100_000,
        cache_read_input_tokens=2_000_000,
        cache_creation_input_tokens=400_000,
    )
    assert cost_usd(usage, info) == pytest.approx(3.0 + 1.5 + 0.6 + 1.5)
    assert cost_usd(TurnUsage(), info) == 0.0
    gpt = model_info("openai:gpt-4.1")
    assert cost_usd(
        TurnUsage(input_tokens=500_000, output_tokens=0, cache_read_input_tokens=500_000), gpt
    ) == pytest.approx(1.0 + 0.25)


def test_missing_keys(no_env):
    with pytest.raises(ConfigError, match=r"ANTHROPIC_API_KEY is not set: export ANTHROPIC_API_KEY="):
        make_provider("anthropic:claude-haiku-4-5")
    with pytest.raises(ConfigError, match=r"OPENAI_API_KEY is not set.*--base-url"):
        make_provider("openai:gpt-4.1")
    with pytest.raises(ConfigError, match="OPENAI_API_KEY"):  # the official host still needs a key
        make_provider("openai:gpt-4.1", base_url="https://api.openai.com/v1")


def test_keys_and_base_urls_from_env(no_env):
    no_env.setenv("OPENAI_BASE_URL", "http://localhost:11434/v1")
    p = make_provider("openai:llama3")  # a local server: no key needed
    assert (
        str(p.client.base_url).startswith("http://localhost:11434/v1") and p.client.api_key == PLACEHOLDER_KEY
    )
    no_env.setenv("ANTHROPIC_AUTH_TOKEN", "tok")
    a = make_provider("anthropic:claude-haiku-4-5")
    assert a.client.auth_token == "tok"
    no_env.setenv("ANTHROPIC_API_KEY", "sk-ant-x")
    a = make_provider("anthropic:claude-haiku-4-5", base_url="http://127.0.0.1:9/")
    assert a.client.api_key == "sk-ant-x" and "127.0.0.1:9" in str(a.client.base_url)


@pytest.mark.parametrize(
    "url", ["localhost:8000", "ftp://x/v1", "http://", "http://host:99999/v1", "http://a b/"]
)
def test_bad_base_url(no_env, url):
    with pytest.raises(ConfigError, match="bad base URL") as e:
        make_provider("openai:m", base_url=url)
    assert "--base-url" in str(e.value)


def test_bad_base_url_from_env_names_the_variable(no_env):
    no_env.setenv("ANTHROPIC_BASE_URL", "not a url")
    with pytest.raises(ConfigError, match="ANTHROPIC_BASE_URL must be"):
        make_provider("anthropic:claude-haiku-4-5", api_key="k")


def test_no_sdk_import_at_module_import():
    code = (
        "import sys, agent.models, agent.providers, agent.providers.retry;"
        "bad=[m for m in ('anthropic','openai','httpx2','httpx') if m in sys.modules];"
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_parse_retry_after():
    assert parse_retry_after({"retry-after": "3"}) == 3.0
    assert parse_retry_after({"retry-after-ms": "1200", "retry-after": "30"}) == 1.2
    assert parse_retry_after({"retry-after": "Wed, 21 Oct 2015 07:28:10 GMT"}, now=1445412480.0) == 10.0
    assert parse_retry_after({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}, now=1445412490.0) == 0.0
    assert parse_retry_after({"retry-after": "soon"}) is None
    assert parse_retry_after({}) is None and parse_retry_after(None) is None


def test_backoff_delays():
    p = RetryPolicy(base_delay=1.0, max_delay=8.0, jitter=0.25, rng=random.Random(1))
    for attempt, base in [(1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (9, 8.0)]:
        d = p.delay(attempt)
        assert base * 0.75 <= d <= min(8.0, base * 1.25)
    assert p.delay(3, retry_after=2.5) == 2.5
    assert RetryPolicy(max_retry_after=60).delay(1, retry_after=3600) == 60


@pytest.mark.parametrize(
    "msg,code,body,limit",
    [
        ("prompt is too long: 215000 tokens > 200000 maximum", None, None, 200_000),
        (
            "input length and `max_tokens` exceed context limit: 188240 + 21333 > 200000, decrease input length",
            None,
            None,
            200_000,
        ),
        (
            "This model's maximum context length is 32768 tokens. However, you requested 40000 tokens",
            None,
            None,
            32_768,
        ),
        ("Input is too long", "context_length_exceeded", None, None),
        (
            "the request exceeds the available context size, try increasing it",
            None,
            {"type": "exceed_context_size_error", "n_ctx": 4096},
            4096,
        ),
    ],
)
def test_context_length_messages(msg, code, body, limit):
    err = context_length_error(msg, code, body)
    assert err is not None and err.limit == limit


def test_not_a_context_error():
    assert context_length_error("messages.1.content: Field required") is None


def test_the_table_says_which_edit_tool_and_images_a_model_gets():
    from ghostline.agent.models import image_limits

    assert model_info("openai:gpt-5").edit_tool == "apply_patch"
    assert model_info("openai:gpt-5.1-codex-mini").edit_tool == "apply_patch"
    assert model_info("openai:gpt-5.3-future").edit_tool == "apply_patch"  # the family
    assert model_info("openai:gpt-4.1").edit_tool == "edit"
    assert model_info("anthropic:claude-sonnet-5-5").edit_tool == "edit"
    assert model_info("openai:my-local", {"openai:my-local": {"edit_tool": "apply_patch"}}).edit_tool == "apply_patch"
    with pytest.raises(ConfigError, match='edit_tool .* must be "edit" or "apply_patch"'):
        model_info("openai:gpt-5", {"gpt-5": {"edit_tool": "sed"}})
    claude = image_limits(model_info("anthropic:claude-haiku-4-5"))
    assert claude is not None and (claude.max_bytes, claude.max_side) == (3_750_000, 8000)
    assert image_limits(model_info("openai:o3-mini")) is None and image_limits(model_info("openai:llava")) is None
    vision = model_info("openai:llava", {"openai:llava": {"images": True, "max_image_bytes": 1000}})
    assert image_limits(vision) is not None and image_limits(vision).max_bytes == 1000
    with pytest.raises(ConfigError, match="images for model 'openai:llava' must be true or false"):
        model_info("openai:llava", {"llava": {"images": "yes"}})
