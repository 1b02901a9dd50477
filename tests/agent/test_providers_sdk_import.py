"""The lean SDK import (agent/providers/sdk_import.py): far fewer modules, the same classes as
`import anthropic` / `import openai`, the import running in the background while the provider is built. Each check that needs an
SDK not yet imported runs in a fresh interpreter."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import textwrap
import threading
import types
from pathlib import Path

import pytest

from ghostline.agent.providers.kept_facts import KeptFacts
from ghostline.agent.providers.sdk_defer import DEFERRED_IMPORTS, _defined_as_function, deferrable
from ghostline.agent.providers.sdk_import import reexport_table
from tests.fakeserver import reply, status_error

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _own_data_dir(tmp_path, monkeypatch):
    """The checks the lean import keeps go to the test's data dir, not the user's."""
    monkeypatch.setenv("GHOSTLINE_DATA_DIR", str(tmp_path / "data"))


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


def test_a_reexport_table_is_kept_for_the_next_run_until_the_package_changes(tmp_path, monkeypatch):
    from ghostline.agent.providers import sdk_import

    monkeypatch.setenv("GHOSTLINE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setattr(sdk_import, "_REEXPORTS", KeptFacts("sdk-reexports", sdk_import.REEXPORT_FORMAT))
    path = _package(tmp_path, "from .message import Message as Message\n", "message")
    assert reexport_table(path) == {"Message": ("message", "Message")}
    assert (tmp_path / "data" / "cache" / "sdk-reexports.json").exists()
    read = sdk_import._read_reexport_table

    def unread(init_path: str):
        raise AssertionError("read again")

    monkeypatch.setattr(sdk_import, "_REEXPORTS", KeptFacts("sdk-reexports", sdk_import.REEXPORT_FORMAT))
    monkeypatch.setattr(sdk_import, "_read_reexport_table", unread)  # the next run: from the data dir
    submodule, attr = reexport_table(path)["Message"]
    assert (submodule, attr) == ("message", "Message")
    Path(path).write_text("from .message import Message as Message\nx = 1\n")  # an upgrade: code runs now
    monkeypatch.setattr(sdk_import, "_read_reexport_table", read)
    assert reexport_table(path) is None


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


HEAVY = ("anthropic.lib.streaming._messages", "anthropic.types.beta.beta_message",
         "anthropic.types.messages.batch_create_params", "anthropic.lib._tracing._api_call")


def test_names_used_only_later_are_stand_ins_until_used_against_a_real_server(fake_server):
    """The client and the messages resource load without the streaming helpers, the error classes, the batches
    resource and the tracing calls; each stand-in works as the real thing on the wire: an error status, the
    SDK's .stream() helper, the batches resource, a span's attributes."""
    fake_server.enqueue(status_error(400, message="bad", error_type="invalid_request_error"), reply("Streamed words."))
    out = run_fresh(f"""
        import asyncio, sys
        from ghostline.agent.providers.sdk_import import client_and_errors, import_lean
        client_class, errors = client_and_errors("anthropic", "AsyncAnthropic")
        import_lean("anthropic.resources.messages.messages")
        print(*[m in sys.modules for m in {HEAVY!r}])
        from anthropic import _base_client as base
        from anthropic.resources.messages import messages as resource
        print(type(base.make_status_error).__name__, type(resource.AsyncMessageStreamManager).__name__)
        attributes = resource.messages_create_request_attributes
        print(attributes.__name__, "anthropic.lib._tracing._api_call" in sys.modules)

        async def main():
            client = client_class(api_key="k", base_url={fake_server.anthropic_base_url!r}, max_retries=0)
            request = dict(model="claude-sonnet-4-5", max_tokens=50, messages=[{{"role": "user", "content": "hi"}}])
            try:
                await client.messages.create(**request, stream=True)
            except errors.BadRequestError as e:
                print("error", e.status_code, type(e).__name__)
            async with client.messages.stream(**request) as stream:
                print("stream", await stream.get_final_text())
            print("batches", type(client.messages.batches).__name__)

        asyncio.run(main())
        print(type(base.make_status_error).__name__, type(resource.AsyncMessageStreamManager).__name__)
        from anthropic.lib._tracing._api_call import messages_create_request_attributes as real
        print(attributes({{"model": "m"}}) == real({{"model": "m"}}))
        import anthropic  # the plain import afterwards: the real modules everywhere
        print(anthropic.lib.streaming.AsyncMessageStreamManager is resource.AsyncMessageStreamManager)
    """).splitlines()
    assert out[0] == "False False False False"  # none of them imported with the client
    assert out[1] == "Standin Standin"
    assert out[2] == "messages_create_request_attributes False"  # passed on as a function, not imported yet
    assert out[3:6] == ["error 400 BadRequestError", "stream Streamed words.", "batches AsyncBatches"]
    assert out[6] == "function type"  # after the first use the importer holds the real objects
    assert out[7:] == ["True", "True"]  # the function forwards to the real one; `import anthropic` agrees


SAFE_SOURCE = """
from __future__ import annotations
from typing import cast
from .streaming import Manager, parse, Fmt, helper, passed
from .other import (kept)

def create(x: Manager) -> Manager:
    m: Manager = Manager(x)
    Manager.attr
    Manager[int]
    cast(Fmt, x)
    call_with(passed, key=passed)
    return parse(m)

class Resource:
    def method(self):
        return lambda: helper()
"""


def test_deferrable_takes_names_used_only_inside_functions():
    wanted = {"pkg.streaming": ("Manager", "parse", "Fmt", "helper", "passed"), "pkg.other": ("kept",)}
    functions = {("pkg.streaming", "passed")}
    found = deferrable(textwrap.dedent(SAFE_SOURCE), "pkg", wanted, lambda m, n: (m, n) in functions)
    assert found == {"pkg.streaming": {"Manager": False, "parse": False, "Fmt": False, "helper": False,
                                       "passed": True}, "pkg.other": {"kept": False}}  # imported, never used
    assert "passed" not in deferrable(textwrap.dedent(SAFE_SOURCE), "pkg", wanted, lambda m, n: False)[
        "pkg.streaming"]  # passed on as a value, and not known to be a plain function


@pytest.mark.parametrize("use", [
    "x = Manager",  # module level
    "class C(Manager): pass",  # a base class
    "class C:\n    field: Manager",  # a class annotation (pydantic reads it)
    "@Manager\ndef f(): pass",  # a decorator
    "def f(x=Manager()): pass",  # a default value
    "def f():\n    global Manager\n    Manager = 1",  # rebound
    "def f():\n    return Manager",  # handed out as a value
    "def f():\n    return isinstance(1, Manager) or Manager is None",
    "__all__ = ['Manager']",  # re-exported
    "y = [Manager() for _ in ()]",  # a comprehension runs at import
])
def test_deferrable_refuses_a_name_used_at_import_or_as_a_value(use):
    source = f"from __future__ import annotations\nfrom .streaming import Manager\n{use}\n"
    assert deferrable(source, "pkg", {"pkg.streaming": ("Manager",)}, lambda m, n: False) == {}


def test_deferrable_needs_annotations_left_unevaluated():
    source = "from .streaming import Manager\ndef f() -> Manager:\n    return Manager()\n"
    assert deferrable(source, "pkg", {"pkg.streaming": ("Manager",)}, lambda m, n: True) == {}


def test_the_deferred_imports_hold_for_the_installed_sdk():
    """Every name in DEFERRED_IMPORTS is still used only later by its importer: a new SDK release that uses one
    at import time loses the deferral (and this test says which), it does not break."""
    for importer, wanted in DEFERRED_IMPORTS.items():
        spec = importlib.util.find_spec(importer)
        found = deferrable(Path(spec.origin).read_text(encoding="utf-8"), importer.rpartition(".")[0], wanted,
                           _defined_as_function)
        assert {m: set(n) for m, n in found.items()} == {m: set(n) for m, n in wanted.items()}, importer


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


def test_a_check_is_kept_for_the_next_run_until_the_importer_changes(tmp_path, monkeypatch):
    from ghostline.agent.providers import sdk_defer

    package = tmp_path / "deferpkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "heavy.py").write_text("def helper():\n    return 42\n")
    user = package / "user.py"
    user.write_text("from __future__ import annotations\nfrom .heavy import helper\n\ndef run():\n    return helper()\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("GHOSTLINE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setitem(sdk_defer.DEFERRED_IMPORTS, "deferpkg.user", {"deferpkg.heavy": ("helper",)})
    monkeypatch.setattr(sdk_defer, "_CHECKS", KeptFacts("sdk-deferrals", sdk_defer.CHECK_FORMAT))
    importlib.import_module("deferpkg.user")
    try:
        assert sdk_defer.check_importer("deferpkg.user") == {"deferpkg.heavy": {"helper": False}}
        assert (tmp_path / "data" / "cache" / "sdk-deferrals.json").exists()

        def parsed(*args):
            raise AssertionError("parsed again")

        # the next run: read from the data dir, not parsed
        monkeypatch.setattr(sdk_defer, "_CHECKS", KeptFacts("sdk-deferrals", sdk_defer.CHECK_FORMAT))
        monkeypatch.setattr(sdk_defer, "deferrable", parsed)
        assert sdk_defer.check_importer("deferpkg.user") == {"deferpkg.heavy": {"helper": False}}

        user.write_text(user.read_text() + "\nvalue = helper\n")  # an upgrade: helper now used at import
        monkeypatch.setattr(sdk_defer, "deferrable", deferrable)
        assert sdk_defer.check_importer("deferpkg.user") == {}
    finally:
        for name in ("deferpkg.user", "deferpkg.heavy", "deferpkg"):
            sys.modules.pop(name, None)


def _fake_sdk(monkeypatch, create_ssl_context) -> type:
    """A client class whose SDK's default HTTP client comes from a fake HTTP library."""
    from ghostline.agent.providers import sdk_provider

    library = types.ModuleType("fakehttp")
    library.create_ssl_context = create_ssl_context
    http_base = type("AsyncClient", (), {"__module__": "fakehttp._client"})
    http_class = type("DefaultAsyncHttpxClient", (http_base,), {"__init__": lambda self, verify: setattr(
        self, "verify", verify)})
    base_client = types.ModuleType("fakesdk._base_client")
    base_client.DefaultAsyncHttpxClient = http_class
    monkeypatch.setitem(sys.modules, "fakehttp", library)
    monkeypatch.setitem(sys.modules, "fakesdk._base_client", base_client)
    monkeypatch.setattr(sdk_provider, "_tls_contexts", {})
    return type("AsyncClient", (), {"__module__": "fakesdk._client"})


def test_the_tls_context_is_built_once_in_a_thread_of_its_own(monkeypatch):
    from ghostline.agent.providers.sdk_provider import _http_client, start_tls_context

    built_in: list[str] = []

    def create_ssl_context():
        built_in.append(threading.current_thread().name)
        return "the context"

    client_class = _fake_sdk(monkeypatch, create_ssl_context)
    start_tls_context(client_class)  # as the SDK's loader does once the client class is imported
    first, second = _http_client(client_class), _http_client(client_class)
    assert first.verify == second.verify == "the context"
    assert built_in == ["tls-context"]


def test_a_tls_context_that_fails_leaves_the_sdk_its_own_client(monkeypatch):
    from ghostline.agent.providers.sdk_provider import _http_client, start_tls_context

    def create_ssl_context():
        raise OSError("no CA store")

    client_class = _fake_sdk(monkeypatch, create_ssl_context)
    start_tls_context(client_class)
    assert _http_client(client_class) is None
