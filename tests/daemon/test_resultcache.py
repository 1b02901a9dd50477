"""The per-document result cache: typed-through and retyped suggestions answered without the engine, its bounds,
the outcomes it infers for clients that report none (llama.vim), and the prefetch after an accept."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import httpx
import pytest

from ghostline.daemon.engine.resultcache import ResultCache
from ghostline.daemon.engine.service import Engine
from ghostline.daemon.engine.types import CompletionRequest
from ghostline.daemon.server.app import bound_port, create_app, start_server
from ghostline.daemon.telemetry import Telemetry
from tests.support.scripted import ScriptedBackend

PREFIX = "def total(items):\n    "
SUGGESTION = "return sum(item.price for item in items)"


def _req(prefix: str, suffix: str = "\n", doc: str = "a.py", **kw) -> CompletionRequest:
    return CompletionRequest(prefix=prefix, suffix=suffix, client_id=doc, **kw)


def test_typed_through_backspace_and_retype_hit():
    c = ResultCache()
    c.store(_req(PREFIX), SUGGESTION, now=0.0)
    hit = c.lookup(_req(PREFIX + "ret"), now=1.0)
    assert hit is not None and hit.typed == 3 and hit.rest == SUGGESTION[3:]
    hit = c.lookup(_req(PREFIX), now=2.0)  # backspaced to where it was made
    assert hit is not None and hit.rest == SUGGESTION
    # a window that shifted (the editor sends fewer lines above) still ends with the same context
    assert c.lookup(_req("    " + PREFIX[-30:] + "return s"), now=3.0).rest == SUGGESTION[8:]


@pytest.mark.parametrize("req", [
    _req(PREFIX + "rex"),  # typed something else
    _req(PREFIX + "ret", suffix="\n    pass\n"),  # the text after the cursor changed
    _req(PREFIX + "ret", doc="b.py"),  # another document
    _req(PREFIX + "ret", n_predict=16),  # asked for something else
    _req(PREFIX + "ret", temperature=0.7),  # sampled: a fresh answer is wanted
    _req(PREFIX + SUGGESTION),  # typed all of it: nothing left to show
])
def test_misses(req):
    c = ResultCache()
    c.store(_req(PREFIX), SUGGESTION, now=0.0)
    assert c.lookup(req, now=1.0) is None


def test_bounded_and_expiring():
    c = ResultCache(ttl_s=30, per_doc=4, max_docs=2)
    for i in range(6):
        c.store(_req(f"x{i} = "), f"value_{i}", now=float(i))
    assert len(c) == 4 and c.lookup(_req("x0 = "), now=6.0) is None and c.lookup(_req("x5 = "), now=6.0)
    for d in ("b.py", "c.py"):
        c.store(_req("y = ", doc=d), "1", now=7.0)
    assert len(c._docs) == 2 and c.lookup(_req("x5 = "), now=8.0) is None
    assert c.lookup(_req("y = ", doc="c.py"), now=36.9) and c.lookup(_req("y = ", doc="c.py"), now=40.0) is None


@pytest.mark.parametrize("steps,outcome", [
    ([PREFIX + SUGGESTION], ("accepted", len(SUGGESTION))),  # all of it at once: Tab
    ([PREFIX + "re", PREFIX + "retu", PREFIX + SUGGESTION], ("typed_through", len(SUGGESTION))),
    ([PREFIX + "re", "elsewhere = 1"], ("typed_through", 2)),
    (["elsewhere = 1"], ("dismissed", 0)),
])
def test_outcomes_inferred_for_clients_that_report_none(steps, outcome):
    c = ResultCache()
    e = c.store(_req(PREFIX, request_id="r1"), SUGGESTION, now=0.0)
    assert c.shown(_req(PREFIX), e) == []
    seen = [o for s in steps for o in c.settle(_req(s))]
    assert seen == [("r1", *outcome)]


def test_a_client_that_reports_outcomes_gets_none_inferred():
    c = ResultCache()
    e = c.store(_req(PREFIX, request_id="r1", reports_outcomes=True), SUGGESTION, now=0.0)
    c.shown(_req(PREFIX), e)
    assert c.settle(_req("elsewhere")) == []


# ------------------------------------------------------------------------------------------- through the engine

async def test_engine_serves_typed_through_without_the_backend():
    be = ScriptedBackend([SUGGESTION[:10], SUGGESTION[10:]])
    eng = Engine(be)
    first = await eng.submit(_req(PREFIX)).result()
    assert first.content == SUGGESTION and first.source == "model" and len(be.submitted) == 1
    for typed in ("r", "re", "ret"):
        res = await eng.submit(_req(PREFIX + typed)).result()
        assert res.source == "cache" and res.content == SUGGESTION[len(typed) :]
    res = await eng.submit(_req(PREFIX + "re")).result()  # backspace
    assert res.source == "cache" and res.content == SUGGESTION[2:]
    assert len(be.submitted) == 1 and eng.counters["cache_hits"] == 4 and eng.counters["cache_typed_through"] == 4


@pytest.fixture
async def daemon(tmp_path):
    be = ScriptedBackend(lambda req: [SUGGESTION] if req.prefix.endswith("    ") else ["  # the total"])
    eng = Engine(be)
    tel = Telemetry(tmp_path / "t.sqlite3", flush_s=0.01)
    runner = await start_server(create_app(eng, token="t", telemetry=tel), "127.0.0.1", 0)
    url = f"http://127.0.0.1:{bound_port(runner)}"
    async with httpx.AsyncClient(base_url=url, headers={"Authorization": "Bearer t"}, timeout=30) as c:
        yield SimpleNamespace(client=c, engine=eng, backend=be, telemetry=tel)
    await runner.cleanup()


def _infill(prefix: str) -> dict:
    # llama.vim's shape: no client id, no outcome reports
    return {"input_prefix": prefix, "input_suffix": "\n", "prompt": "", "n_predict": 64}


async def test_llama_vim_typed_through_from_cache_and_its_outcome_recorded(daemon):
    r = (await daemon.client.post("/infill", json=_infill(PREFIX))).json()
    assert r["content"] == SUGGESTION
    for k in range(1, 6):
        r2 = (await daemon.client.post("/infill", json=_infill(PREFIX + SUGGESTION[:k]))).json()
        assert r2["content"] == SUGGESTION[k:]
    await daemon.client.post("/infill", json=_infill(PREFIX + SUGGESTION))  # typed to the end
    assert len(daemon.backend.submitted) == 2  # the first request and the one after the end
    assert daemon.telemetry.counters["typed_through"] == 1
    await asyncio.to_thread(daemon.telemetry.flush)
    import sqlite3

    row = sqlite3.connect(daemon.telemetry.path).execute(
        "SELECT outcome, outcome_chars FROM requests WHERE request_id = ?", (r["id"],)).fetchone()
    assert row == ("typed_through", len(SUGGESTION))


async def test_prefetch_after_accept_serves_the_next_request(daemon):
    r = (await daemon.client.post("/infill", json={**_infill(PREFIX), "client_id": "a.py"})).json()
    fb = (await daemon.client.post("/v1/feedback", json={"id": r["id"], "event": "accepted"})).json()
    assert fb["prefetching"] is True
    pre = daemon.backend.submitted[-1]
    assert pre.priority < 0 and pre.prefix == PREFIX + SUGGESTION
    nxt = (await daemon.client.post("/infill", json={**_infill(PREFIX + SUGGESTION), "client_id": "a.py"})).json()
    assert nxt["content"] == "  # the total" and len(daemon.backend.submitted) == 2  # no third computation
    assert daemon.engine.counters["prefetch_started"] == 1


async def test_a_request_elsewhere_cancels_the_prefetch(daemon):
    r = (await daemon.client.post("/infill", json={**_infill(PREFIX), "client_id": "a.py"})).json()
    daemon.backend.gate = asyncio.Event()  # the prefetch stays in flight
    await daemon.client.post("/v1/feedback", json={"id": r["id"], "event": "accepted"})
    pre_job = daemon.engine.prefetch._running[0]
    assert not pre_job.done
    task = asyncio.create_task(daemon.client.post("/infill", json={**_infill("other = "), "client_id": "a.py"}))
    assert (await asyncio.wait_for(pre_job.result(), 10)).cancelled
    assert pre_job.cancelled and daemon.engine.counters["prefetch_cancelled"] == 1
    daemon.backend.gate.set()
    assert (await task).status_code == 200
