"""The credential scanner: its precision and recall on the labelled set (tests/support/secretset.py), what it lets
pass, cutting a suggestion before a secret, streaming that never shows part of one, and every endpoint."""

from __future__ import annotations

from types import SimpleNamespace

import httpx
import pytest

from ghostline.daemon.engine.guard import SuggestionGuard
from ghostline.daemon.engine.secrets import SecretScanner, secret_like_name
from ghostline.daemon.engine.service import Engine
from ghostline.daemon.engine.types import Completion, CompletionRequest, CompletionResult
from ghostline.daemon.server.app import bound_port, create_app, start_server
from tests.support.scripted import ScriptedBackend
from tests.support.secretset import ORDINARY, evaluate, format_table, negatives, positives

TOKEN = "t0k"
ANTHROPIC = "sk-ant-api03-" + "Zq8" * 31 + "AA"  # fabricated
GITHUB = "ghp_" + "aB3dE6gH9jK2mN5pQ8sT1vW4yZ7bC0eF3hJ6"


@pytest.fixture(scope="module")
def scanner() -> SecretScanner:
    return SecretScanner()


def test_labelled_set_recall_and_false_positives(scanner, capsys):
    pos, neg = positives(), negatives()
    assert len(pos) >= 300 and len(neg) >= 3000 and len({s.kind for s in pos}) == 16
    scores = evaluate(scanner, pos + neg)
    with capsys.disabled():
        print("\n" + format_table(scores))
    missed = {k: v for k, v in scores["kinds"].items() if v["found"] < v["n"]}
    assert not missed, missed  # recall 100% on every known format
    assert scores["fp_rate"] <= 0.02, scores["fp_examples"]


@pytest.mark.parametrize("text", ORDINARY)
def test_ordinary_code_passes(scanner, text):
    assert scanner.find(text) is None


@pytest.mark.parametrize("name,secret", [
    ("api_key", True), ("DB_PASSWORD", True), ("clientSecret", True), ("authToken", True), ("SIGNING_KEY", True),
    ("token_type", False), ("password_hash", False), ("tokenizer", False), ("max_tokens", False),
    ("api_key_header", False), ("sort_key", False), ("key", False),
])
def test_secret_like_names(name, secret):
    assert secret_like_name(name) is secret


def test_finding_has_kind_and_span(scanner):
    text = f'client = Anthropic(api_key="{ANTHROPIC}")'
    f = scanner.find(text)
    assert f is not None and f.kind == "anthropic_key" and text[f.start : f.end] == ANTHROPIC


def _guard(scanner, prefix="", suffix="\n", stream=True, raw=None):
    req = CompletionRequest(prefix=prefix, suffix=suffix, raw_prompt=raw)
    return SuggestionGuard(req, scanner, stream=stream)


def test_cut_before_the_line_of_the_secret_or_dropped(scanner):
    g = _guard(scanner, prefix="def connect():\n    ")
    res, _ = g.finish(CompletionResult([Completion(f'url = BASE\n    token = "{GITHUB}"\n    return url', [], "eos")]))
    assert res.content == "url = BASE" and g.report.blocked == ["github_token"]
    g = _guard(scanner, prefix='TOKEN = "')  # the user typed the start; the suggestion is the secret itself
    res, _ = g.finish(CompletionResult([Completion(f'{GITHUB}"', [], "eos")]))
    assert res.content == "" and g.report.blocked == ["github_token"]


def test_a_secret_the_user_started_typing_is_not_completed(scanner):
    g = _guard(scanner, prefix='key = "ghp_aB3dE6gH9j')
    res, _ = g.finish(CompletionResult([Completion('K2mN5pQ8sT1vW4yZ7bC0eF3hJ6"', [], "eos")]))
    assert res.content == "" and g.report.blocked == ["github_token"]


def test_streaming_never_shows_part_of_a_secret(scanner):
    text = f'headers = {{"x-api-key": "{ANTHROPIC}", "accept": "json"}}\nsend(headers)\n'
    for step in (1, 2, 3, 7):
        g = _guard(scanner, prefix="")
        shown = "".join(g.feed(0, text[i : i + step]) for i in range(0, len(text), step))
        assert "sk-ant" not in shown and ANTHROPIC[:6] not in shown
        res, tails = g.finish(CompletionResult([Completion(text, [], "eos")]))
        # what was streamed stays, and nothing more: the answer stops before the key
        assert res.content == shown + tails.get(0, "") == 'headers = {"x-api-key": "'
        assert g.report.blocked == ["anthropic_key"]


def test_streaming_holds_a_pem_header_until_it_is_decided(scanner):
    key = "-----BEGIN PRIVATE KEY-----\n" + "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC" * 2 + "\n"
    g = _guard(scanner, prefix="")
    shown = "".join(g.feed(0, ch) for ch in "x = 1\n" + key)
    assert shown == "x = 1\n" and "BEGIN" not in shown
    cert = "-----BEGIN CERTIFICATE-----\nMIIDdzCCAl+gAwIBAgIEAgAAuTANBgkqhkiG9w0BAQUFADBa\n"
    g = _guard(scanner, prefix="")
    shown = "".join(g.feed(0, ch) for ch in cert)
    assert shown.startswith("-----BEGIN CERTIFICATE-----\n")  # no private key: released once decided


def test_ordinary_streaming_is_released_at_each_separator(scanner):
    g = _guard(scanner, prefix="def f(x):\n    ")
    assert g.feed(0, "return") == ""  # the token may still grow
    assert g.feed(0, " x") == "return "
    assert g.feed(0, " + 1\n") == "x + 1\n"


# ------------------------------------------------------------------------------------------------ endpoints

@pytest.fixture
async def leaky():
    """A daemon whose 'model' always suggests a line with a fabricated key after a harmless one."""
    be = ScriptedBackend(["data = f.read()", "\n", "        key = '", ANTHROPIC[:10], ANTHROPIC[10:], "'\n"])
    eng = Engine(be)
    runner = await start_server(create_app(eng, token=TOKEN), "127.0.0.1", 0)
    url = f"http://127.0.0.1:{bound_port(runner)}"
    async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30) as c:
        yield SimpleNamespace(client=c, engine=eng)
    await runner.cleanup()


PREFIX = "def load(path):\n    with open(path) as f:\n        "


@pytest.mark.parametrize("path,body", [
    ("/infill", {"input_prefix": PREFIX, "input_suffix": "\n", "prompt": ""}),
    ("/infill", {"input_prefix": PREFIX, "input_suffix": "\n", "prompt": "", "stream": True}),
    ("/completion", {"prompt": PREFIX}),
    ("/completion", {"prompt": PREFIX, "stream": True}),
    ("/v1/completions", {"prompt": PREFIX, "suffix": "\n"}),
    ("/v1/completions", {"prompt": PREFIX, "suffix": "\n", "stream": True}),
    ("/v1/completions", {"prompt": PREFIX}),
    ("/v1/ghost", {"prefix": PREFIX, "suffix": "\n", "stop_at_unit": False}),
])
async def test_no_endpoint_lets_a_secret_through(leaky, path, body):
    r = await leaky.client.post(path, json=body)
    assert r.status_code == 200
    raw = r.text
    assert "sk-ant" not in raw and ANTHROPIC[10:20] not in raw and "data = f.read()" in raw
    assert leaky.engine.counters["secrets_blocked"] == 1
    assert leaky.engine.counters["secrets_blocked_anthropic_key"] == 1
    m = (await leaky.client.get("/metrics")).text
    assert "ghostline_secrets_blocked 1" in m and "sk-ant" not in m


async def test_blocks_are_counted_in_telemetry_by_kind_never_the_text(tmp_path):
    from ghostline.daemon.telemetry import Telemetry, format_stats, load_stats

    be = ScriptedBackend(["x = 1\n", f"key = '{ANTHROPIC}'\n"])
    tel = Telemetry(tmp_path / "t.sqlite3", flush_s=0.01)
    runner = await start_server(create_app(Engine(be), token=TOKEN, telemetry=tel), "127.0.0.1", 0)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{bound_port(runner)}",
                                     headers={"Authorization": f"Bearer {TOKEN}"}) as c:
            r = await c.post("/infill", json={"input_prefix": "", "input_suffix": "\n", "prompt": ""})
            assert r.json()["content"] == "x = 1"
    finally:
        await runner.cleanup()
    stats = load_stats(tmp_path / "t.sqlite3")
    assert stats["secrets_blocked"] == {"anthropic_key": 1}
    assert "suggestions cut for a secret: anthropic_key 1" in format_stats(stats)
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("t.sqlite3*"))
    assert b"sk-ant" not in raw and ANTHROPIC[20:40].encode() not in raw
