"""Shared fixtures. `fake_server`: a started FakeModelServer (tests/fakeserver.py) with an empty script;
`fake_model_env`: the same server wired into the SDKs' env vars (base URLs and test keys)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fakeserver import FakeModelServer


@pytest.fixture(autouse=True)
def _no_warm_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """`agent run` in tests imports for itself: no background warm process (tests/agent/test_warm.py turns it on)."""
    monkeypatch.setenv("GHOSTLINE_WARM", "0")


@pytest.fixture
def fake_server() -> Iterator[FakeModelServer]:
    with FakeModelServer() as srv:
        yield srv


@pytest.fixture
def fake_model_env(fake_server: FakeModelServer, monkeypatch: pytest.MonkeyPatch) -> FakeModelServer:
    monkeypatch.setenv("ANTHROPIC_BASE_URL", fake_server.anthropic_base_url)
    monkeypatch.setenv("OPENAI_BASE_URL", fake_server.openai_base_url)
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test-key")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-key")
    monkeypatch.delenv("ANTHROPIC_AUTH_TOKEN", raising=False)
    return fake_server
