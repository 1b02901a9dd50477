"""The HTTP API against a real server on a free port: llama.cpp /infill as llama.vim sends it, OpenAI
/v1/completions through the openai SDK, native /v1/ghost with cancellation, security, errors, metrics."""

from __future__ import annotations

import asyncio
import json
import os
import re
import stat
from types import SimpleNamespace

import httpx
import pytest

from ghostline.daemon.engine.classical import ClassicalCompleter
from ghostline.daemon.engine.service import Engine
from ghostline.daemon.server.app import bound_port, create_app, start_server
from ghostline.daemon.server.security import is_loopback_host, load_or_create_token

TOKEN = "test-token-123"
PREFIX = "def load(path):\n    with open(path) as f:\n"
SUFFIX = "\n    return data\n"


@pytest.fixture
async def srv(backend):
    cl = ClassicalCompleter()
    eng = Engine(backend, cl)
    app = create_app(eng, token=TOKEN, max_body=256 * 1024)
    runner = await start_server(app, "127.0.0.1", 0)
    port = bound_port(runner)
    url = f"http://127.0.0.1:{port}"
    async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30) as c:
        yield SimpleNamespace(url=url, port=port, engine=eng, client=c)
    await runner.cleanup()


def llama_vim_fim_body(prefix: str, middle: str, suffix: str, indent: int) -> bytes:
    """The body llama.vim's llama#fim() sends (keys and values as in autoload/llama.vim), json_encode'd."""
    extra = [{"text": "import os\nimport sys\n", "time": [1732400000, 123456], "filename": "util.py"}]
    req = {
        "input_prefix": prefix, "input_suffix": suffix, "input_extra": extra, "prompt": middle,
        "n_predict": 128, "stop": [], "n_indent": indent, "top_k": 40, "top_p": 0.90, "stream": False,
        "samplers": ["top_k", "top_p", "infill"], "cache_prompt": True, "t_max_prompt_ms": 500,
        "t_max_predict_ms": 250,
        "response_fields": ["content", "timings/prompt_n", "timings/prompt_ms", "timings/prompt_per_token_ms",
                            "timings/prompt_per_second", "timings/predicted_n", "timings/predicted_ms",
                            "timings/predicted_per_token_ms", "timings/predicted_per_second", "truncated",
                            "tokens_cached"],
    }
    return json.dumps(req, separators=(",", ":")).encode()


async def test_llama_vim_contract_byte_for_byte(srv):
    body = llama_vim_fim_body(PREFIX, "        data = f.re", SUFFIX, 8)
    r = await srv.client.post("/infill", content=body, headers={"Content-Type": "application/json"})
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("application/json")
    raw = r.text
    # llama.vim (and llama.vscode) look for the content with this exact, space-free shape
    assert re.match(r'^\{"content":"', raw) and '"content": "' not in raw
    assert "\n" not in raw  # one line: nvim joins stdout chunks with newlines before decoding
    obj = json.loads(raw)
    assert list(obj) == ["content", "timings/prompt_n", "timings/prompt_ms", "timings/prompt_per_token_ms",
                         "timings/prompt_per_second", "timings/predicted_n", "timings/predicted_ms",
                         "timings/predicted_per_token_ms", "timings/predicted_per_second", "truncated",
                         "tokens_cached"]
    assert raw == json.dumps(obj, separators=(",", ":"), ensure_ascii=False)
    assert isinstance(obj["content"], str) and obj["truncated"] is False
    assert obj["timings/prompt_n"] > 0 and obj["tokens_cached"] >= obj["timings/prompt_n"]
    # the next keystroke reuses the KV state: fewer prompt tokens computed
    body2 = llama_vim_fim_body(PREFIX, "        data = f.rea", SUFFIX, 8)
    obj2 = (await srv.client.post("/infill", content=body2)).json()
    assert obj2["timings/prompt_n"] < obj["timings/prompt_n"]


async def test_llama_vim_ring_update_warmup(srv):
    """s:ring_update(): n_predict 0 with response_fields [""] warms the cache and answers {}."""
    body = {"input_prefix": "", "input_suffix": "", "input_extra": [{"text": "x = 1\n", "time": [1, 2],
            "filename": "a.py"}], "prompt": "", "n_predict": 0, "temperature": 0.0, "stream": False,
            "samplers": [], "cache_prompt": True, "t_max_prompt_ms": 1, "t_max_predict_ms": 1,
            "response_fields": [""]}
    r = await srv.client.post("/infill", content=json.dumps(body, separators=(",", ":")))
    assert r.status_code == 200 and r.text == "{}"


async def test_infill_full_reply_fields(srv):
    r = await srv.client.post("/infill", json={"input_prefix": PREFIX, "input_suffix": SUFFIX, "prompt": "  ",
                                               "n_predict": 5, "id_slot": 0})
    obj = r.json()
    for key in ("content", "tokens_cached", "truncated", "timings", "generation_settings", "stop", "stop_type",
                "model", "tokens_predicted", "tokens_evaluated", "stopping_word"):
        assert key in obj, key
    assert set(obj["timings"]) == {"prompt_n", "prompt_ms", "prompt_per_token_ms", "prompt_per_second",
                                   "predicted_n", "predicted_ms", "predicted_per_token_ms", "predicted_per_second"}
    assert obj["generation_settings"]["n_ctx"] == srv.engine.n_ctx
    assert obj["stop"] is True and obj["stop_type"] == "limit" and obj["timings"]["predicted_n"] == 5
    assert obj["model"] == srv.engine.model_name


async def test_infill_n_cmpl_array_and_response_fields(srv):
    r = await srv.client.post("/infill", json={"input_prefix": PREFIX, "input_suffix": SUFFIX, "n_predict": 4,
                                               "n_cmpl": 3, "response_fields": ["content", "timings/predicted_n"]})
    arr = r.json()
    assert isinstance(arr, list) and len(arr) == 3
    assert all(set(o) == {"content", "timings/predicted_n"} for o in arr)
    assert len({o["content"] for o in arr}) == 3


async def test_infill_stop_strings(srv):
    first = (await srv.client.post("/infill", json={"input_prefix": PREFIX, "n_predict": 10})).json()["content"]
    word = first[2:4]
    obj = (await srv.client.post("/infill", json={"input_prefix": PREFIX, "n_predict": 10, "stop": [word]})).json()
    assert obj["content"] == first[: first.index(word)] and obj["stop_type"] == "word"
    assert obj["stopping_word"] == word


async def test_infill_stream(srv):
    async with srv.client.stream("POST", "/infill", json={"input_prefix": PREFIX, "input_suffix": SUFFIX,
                                                           "n_predict": 6, "stream": True}) as r:
        assert r.headers["Content-Type"].startswith("text/event-stream")
        raw = (await r.aread()).decode()
    events = [json.loads(line[6:]) for line in raw.split("\n") if line.startswith("data: ")]
    assert events[-1]["stop"] is True and "timings" in events[-1]
    assert all(e["stop"] is False for e in events[:-1]) and len(events) >= 2
    assert all(line.startswith('data: {"index":0,"content":"') for line in raw.split("\n\n")[:-2])
    full = (await srv.client.post("/infill", json={"input_prefix": PREFIX, "input_suffix": SUFFIX,
                                                   "n_predict": 6})).json()["content"]
    assert "".join(e["content"] for e in events) == full


async def test_completion_raw_prompt(srv):
    obj = (await srv.client.post("/completion", json={"prompt": "import os\n", "n_predict": 3})).json()
    assert obj["timings"]["predicted_n"] == 3 and obj["tokens_evaluated"] > 0


async def test_health_props_models(srv):
    async with httpx.AsyncClient(base_url=srv.url) as anon:
        r = await anon.get("/health")
        assert r.status_code == 200 and r.text == '{"status":"ok"}'
    props = (await srv.client.get("/props")).json()
    assert props["default_generation_settings"]["n_ctx"] == srv.engine.n_ctx
    assert props["fim_format"] == "starcoder" and props["total_slots"] == 1
    models = (await srv.client.get("/v1/models")).json()
    assert models["object"] == "list" and models["data"][0]["id"] == srv.engine.model_name


async def test_openai_sdk_completions(srv):
    from openai import AsyncOpenAI

    client = AsyncOpenAI(base_url=srv.url + "/v1", api_key=TOKEN, max_retries=0)
    res = await client.completions.create(model="ghostline", prompt=PREFIX, suffix=SUFFIX, max_tokens=5)
    assert res.choices[0].finish_reason == "length" and res.usage.completion_tokens == 5
    text = res.choices[0].text
    stream = await client.completions.create(model="ghostline", prompt=PREFIX, suffix=SUFFIX, max_tokens=5,
                                             stream=True)
    parts = [c.choices[0].text async for c in stream if c.choices]
    assert "".join(parts) == text
    with pytest.raises(Exception) as ei:
        await AsyncOpenAI(base_url=srv.url + "/v1", api_key="wrong", max_retries=0).completions.create(
            model="x", prompt="a", max_tokens=1)
    assert "401" in str(ei.value) or getattr(ei.value, "status_code", 0) == 401
    await client.close()


async def test_openai_stream_ends_with_done(srv):
    r = await srv.client.post("/v1/completions", json={"prompt": "x", "suffix": "y", "max_tokens": 2, "stream": True})
    assert r.text.endswith("data: [DONE]\n\n")


async def test_ghost_sse_and_cancel_by_id(srv):
    lines: list[str] = []
    cancelled = None
    async with srv.client.stream("POST", "/v1/ghost", json={"id": "g1", "prefix": PREFIX, "suffix": SUFFIX,
                                                            "n_predict": 100000, "stop_at_unit": False}) as r:
        async for line in r.aiter_lines():
            lines.append(line)
            if cancelled is None and line == "event: token":  # decoding has begun: cancel it by its id
                cancelled = (await srv.client.post("/v1/ghost/cancel", json={"id": "g1"})).json()
    assert cancelled == {"id": "g1", "cancelled": True}
    blocks = [b for b in "\n".join(lines).split("\n\n") if b]
    assert blocks[0] == 'event: start\ndata: {"id":"g1"}'
    assert blocks[-1].startswith("event: cancelled\n")
    last = json.loads(blocks[-1].split("data: ", 1)[1])
    assert last["cancelled"] is True
    r2 = await srv.client.delete("/v1/ghost/none")
    assert r2.json() == {"id": "none", "cancelled": False}


async def test_ghost_done(srv):
    r = await srv.client.post("/v1/ghost", json={"prefix": PREFIX, "suffix": SUFFIX, "n_predict": 4})
    blocks = [b for b in r.text.split("\n\n") if b]
    assert blocks[-1].startswith("event: done\n")
    done = json.loads(blocks[-1].split("data: ", 1)[1])
    toks = "".join(json.loads(b.split("data: ", 1)[1])["text"] for b in blocks if b.startswith("event: token"))
    assert done["content"].startswith(toks) or toks.startswith(done["content"])
    assert done["source"] == "model" and "ttft_ms" in done


async def test_client_disconnect_cancels(srv, monkeypatch):
    """llama.vim stops its curl job on the next keystroke: the request must be cancelled, the slot freed."""
    backend = srv.engine.backend
    before = backend.counters["cancelled"]
    jobs = []
    submit = srv.engine.submit

    def submit_and_keep(req):  # type: ignore[no-untyped-def]
        jobs.append(submit(req))
        return jobs[-1]

    monkeypatch.setattr(srv.engine, "submit", submit_and_keep)
    with pytest.raises(httpx.ReadTimeout):
        await srv.client.post("/infill", json={"input_prefix": PREFIX, "n_predict": 100000}, timeout=0.3)
    (job,) = jobs
    assert await asyncio.to_thread(job.wait_dropped, 30)  # the worker let go of it
    assert job.cancelled and backend.counters["cancelled"] == before + 1


# -- security and errors --


async def test_auth_required_except_health(srv):
    async with httpx.AsyncClient(base_url=srv.url) as anon:
        for method, path in (("GET", "/props"), ("GET", "/v1/models"), ("GET", "/metrics"), ("POST", "/infill"),
                             ("POST", "/v1/completions"), ("POST", "/v1/ghost")):
            r = await anon.request(method, path, json={})
            assert r.status_code == 401, path
            assert r.json()["error"]["type"] == "authentication_error"
        r = await anon.get("/props", headers={"Authorization": "Bearer nope"})
        assert r.status_code == 401


async def test_host_header_must_be_loopback(srv):
    r = await srv.client.get("/health", headers={"Host": "attacker.example:8012"})
    assert r.status_code == 403 and "DNS rebinding" in r.json()["error"]["message"]
    for ok in (f"127.0.0.1:{srv.port}", "localhost", "[::1]:8012"):
        assert (await srv.client.get("/health", headers={"Host": ok})).status_code == 200


async def test_cors_rejected(srv):
    r = await srv.client.options("/infill", headers={"Origin": "http://evil.example",
                                                     "Access-Control-Request-Method": "POST"})
    assert r.status_code == 403 and "access-control-allow-origin" not in r.headers
    r = await srv.client.post("/infill", json={"n_predict": 1}, headers={"Origin": "https://evil.example"})
    assert r.status_code == 403


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", "malformed JSON"),
        (b"[1,2]", "must be a JSON object"),
        (b"", "empty request body"),
        (b'{"n_predict":"many"}', "'n_predict' must be a number"),
        (b'{"input_extra":"x"}', "'input_extra' must be a list"),
        (b'{"stop":[1]}', "'stop' must be"),
        (b'{"response_fields":"content"}', "'response_fields' must be"),
        (b'{"prompt":{"a":1}}', "'prompt' must be a string"),
    ],
)
async def test_malformed_requests_400(srv, body, message):
    r = await srv.client.post("/infill", content=body, headers={"Content-Type": "application/json"})
    assert r.status_code == 400
    err = r.json()["error"]
    assert message in err["message"] and err["type"] == "invalid_request_error"


async def test_body_size_limit(srv):
    r = await srv.client.post("/infill", content=b'{"input_prefix":"' + b"a" * 300_000 + b'"}')
    assert r.status_code == 413 and "larger than" in r.json()["error"]["message"]


async def test_unknown_route_json_404(srv):
    r = await srv.client.get("/nope")
    assert r.status_code == 404 and r.json()["error"]["code"] == 404


async def test_metrics_prometheus(srv):
    await srv.client.post("/infill", json={"input_prefix": PREFIX, "n_predict": 2})
    text = (await srv.client.get("/metrics")).text
    assert "# TYPE ghostline_requests_total counter" in text
    assert re.search(r"^ghostline_requests_total 1$", text, re.M)
    assert re.search(r'^ghostline_request_latency_ms\{quantile="0.5"\} [0-9.]+$', text, re.M)
    assert re.search(r"^ghostline_kv_cache_lookups [0-9]", text, re.M)
    assert re.search(r"^ghostline_cancel_drop_latency_ms_count [0-9]+$", text, re.M)
    for line in text.strip().split("\n"):
        assert line.startswith("#") or re.match(r'^[a-z_]+(\{quantile="[0-9.]+"\})? -?[0-9.e+]+$', line), line


async def test_classical_only_server():
    cl = ClassicalCompleter()
    cl.add_text("serialize_payload serialize_payload")
    app = create_app(Engine(None, cl), token=TOKEN)
    runner = await start_server(app, "127.0.0.1", 0)
    try:
        url = f"http://127.0.0.1:{bound_port(runner)}"
        async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {TOKEN}"}) as c:
            obj = (await c.post("/infill", json={"input_prefix": "x = ", "prompt": "serialize_p"})).json()
            assert obj["content"] == "ayload"
    finally:
        await runner.cleanup()


def test_token_file_0600(tmp_path):
    p = tmp_path / "cfg" / "daemon-token"
    tok = load_or_create_token(p)
    assert len(tok) >= 32 and stat.S_IMODE(os.stat(p).st_mode) == 0o600
    assert load_or_create_token(p) == tok
    os.chmod(p, 0o644)
    assert load_or_create_token(p) == tok and stat.S_IMODE(os.stat(p).st_mode) == 0o600


def test_loopback_hosts():
    for h in ("127.0.0.1", "127.0.0.1:8012", "localhost:1", "[::1]:80", "::1", "LOCALHOST"):
        assert is_loopback_host(h), h
    for h in ("", None, "10.0.0.1", "evil.com", "127.0.0.1.evil.com", "localhost.evil.com:80"):
        assert not is_loopback_host(h), h


def test_allowed_hosts_for_bind_address():
    from ghostline.daemon.server.app import allowed_hosts_for
    from ghostline.daemon.server.security import host_allowed

    assert allowed_hosts_for("127.0.0.1") == set()
    lan = allowed_hosts_for("192.168.1.5")
    assert host_allowed("192.168.1.5:8012", lan) and not host_allowed("evil.com", lan)
    import socket

    assert socket.gethostname().lower() in allowed_hosts_for("0.0.0.0")
