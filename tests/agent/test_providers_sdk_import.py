"""The lean SDK import (agent/providers/sdk_import.py): far fewer modules, the same classes as
`import anthropic` / `import openai`, the import running in the background while the provider is built. Each check that needs an
SDK not yet imported runs in a fresh interpreter."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from ghostline.agent.providers.sdk_import import reexport_table

REPO = Path(__file__).resolve().parents[2]


def run_fresh(code: str) -> str:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


@pytest.mark.parametrize("root,client,resource", [
    ("anthropic", "AsyncAnthropic", "types.Message"),
    ("openai", "AsyncOpenAI", "types.chat.ChatCompletionChunk"),
])
def test_lean_import_is_smaller_and_the_same_sdk(root, client, resource):
    out = run_fresh(f"""
        import sys
        from ghostline.agent.providers.sdk_import import client_and_errors
        client_class, errors = client_and_errors("{root}", "{client}")
        lean = sum(1 for m in sys.modules if m.split(".")[0] == "{root}")
        import {root} as sdk  # the plain import, later in the same process: the real __init__ runs now
        assert sdk.{client} is client_class
        for name in ("APIStatusError", "APIConnectionError", "APIError"):
            assert getattr(sdk, name) is getattr(errors, name)
        assert sdk.{resource}.__name__ == "{resource.rsplit('.', 1)[1]}"
        assert "{client}" in sdk.__all__ and "{client}" in dir(sdk)
        from {root}.types import *  # noqa - a lazy package still star-imports everything
        full = sum(1 for m in sys.modules if m.split(".")[0] == "{root}")
        print(lean, full)
    """)
    lean, full = map(int, out.split())
    assert lean < full / 2, (lean, full)


def test_the_background_import_lets_the_provider_be_built_first():
    run_fresh("""
        import sys, threading
        from ghostline.agent.providers import sdk_import
        from ghostline.agent.models import make_provider

        release = threading.Event()
        real = sdk_import.client_and_errors

        def held_back(root, client_class):
            assert release.wait(20), "make_provider waited for the SDK import"
            return real(root, client_class)

        sdk_import.client_and_errors = held_back
        p = make_provider("anthropic:claude-haiku-4-5", api_key="k", base_url="http://127.0.0.1:9")
        assert "anthropic._client" not in sys.modules  # built without the SDK
        release.set()
        assert "127.0.0.1:9" in str(p.client.base_url) and p.client.api_key == "k"
    """)


def test_a_plain_import_during_the_background_import_waits_for_it():
    run_fresh("""
        from ghostline.agent.providers.sdk_import import load_sdk
        loader = load_sdk("anthropic", "AsyncAnthropic", preload=("anthropic.resources.messages.messages",))
        import anthropic
        assert anthropic.Anthropic.__name__ == "Anthropic"  # the real __init__, once the lean import is over
        assert loader.get()[0] is anthropic.AsyncAnthropic
    """)


def test_a_failed_background_import_raises_in_the_caller():
    run_fresh("""
        from ghostline.agent.providers.sdk_import import load_sdk
        loader = load_sdk("openai", "NoSuchClient")
        try:
            loader.get()
        except AttributeError as e:
            assert "NoSuchClient" in str(e)
        else:
            raise AssertionError("no error")
    """)


def _package(tmp_path: Path, init: str, *submodules: str) -> str:
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    for name in submodules:
        (pkg / f"{name}.py").write_text("")
    (pkg / "__init__.py").write_text(textwrap.dedent(init))
    return str(pkg / "__init__.py")


REEXPORTS = """
from .message import Message as Message
from .usage import (
    Usage as Usage,
    CacheUsage,
)
from . import shared
"""


@pytest.mark.parametrize("init", [
    "from __future__ import annotations\n" + REEXPORTS,  # the generated layout: read without an AST
    '"""Docs."""\nfrom __future__ import annotations\n# a comment\n' + REEXPORTS + '__all__ = ["Message"]\n',
])
def test_reexport_table_of_a_reexport_only_package(tmp_path, init):
    path = _package(tmp_path, init, "message", "usage", "shared")
    assert reexport_table(path) == {"Message": ("message", "Message"), "Usage": ("usage", "Usage"),
                                    "CacheUsage": ("usage", "CacheUsage"), "shared": ("shared", None)}


@pytest.mark.parametrize("init", [
    "from .message import Message\nx = 1\n",  # code runs: not lazy
    "from .message import *\n",  # unknown names
    "from .message import Message\nfrom typing import Any\n",  # an absolute import
    "from .usage import usage\n",  # a name shadowing a submodule
    '"""Only a docstring."""\n',  # nothing to re-export
])
def test_reexport_table_refuses_anything_else(tmp_path, init):
    assert reexport_table(_package(tmp_path, init, "message", "usage")) is None


def test_the_plain_reader_agrees_with_the_ast_on_every_package_of_the_sdks():
    import anthropic
    import openai

    from ghostline.agent.providers.sdk_import import _plain_reexports, _reexports_of_tree

    read = 0
    for sdk in (anthropic, openai):
        for init in Path(sdk.__file__).parent.rglob("__init__.py"):
            source = init.read_text(encoding="utf-8")
            plain = _plain_reexports(source)
            if plain is not None:
                assert plain == _reexports_of_tree(source, str(init)), init
                read += 1
    assert read > 20  # the generated type packages take the fast path


def test_tracing_functions_load_their_modules_only_when_called():
    out = run_fresh("""
        import sys
        from ghostline.agent.providers.sdk_import import client_and_errors, import_lean
        client_and_errors("anthropic", "AsyncAnthropic")
        import_lean("anthropic.resources.messages.messages")
        heavy = ("anthropic.lib._tracing._api_call", "anthropic.types.beta.message_create_params")
        print(*[m in sys.modules for m in heavy])
        from anthropic.lib import _tracing
        fn = _tracing.messages_create_request_attributes
        print(fn.__name__, fn({"model": "m"}) == {} or type(fn({"model": "m"})).__name__)
        print(*[m in sys.modules for m in heavy])
        from anthropic.lib._tracing._api_call import messages_create_request_attributes as real
        print(real({"output_config": {"format": {"type": "json_schema"}}}) ==
              fn({"output_config": {"format": {"type": "json_schema"}}}))
    """).split("\n")
    assert out[0] == "False False"  # the client and the first request's modules, without them
    assert out[1].startswith("messages_create_request_attributes ")
    assert out[2] == "True True" and out[3] == "True"  # the first call imported them, and forwards to the real one


def test_the_client_makes_no_spans_unless_the_environment_sets_opentelemetry_up(monkeypatch):
    from ghostline.agent.providers.anthropic import AnthropicProvider

    class Client:
        def __init__(self, api_key=None, open_telemetry=None):
            pass

    class OldClient:
        def __init__(self, api_key=None):
            pass

    provider = AnthropicProvider("claude-sonnet-4-5", api_key="k")
    for name in [k for k in os.environ if k.startswith(("OTEL_", "ANTHROPIC_OPEN_TELEMETRY"))]:
        monkeypatch.delenv(name)
    assert provider._client_options(Client) == {"open_telemetry": {"traces": {"enabled": False}}}
    assert provider._client_options(OldClient) == {}  # an SDK without the option: as it is
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "otlp")
    assert provider._client_options(Client) == {}
