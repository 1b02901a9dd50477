"""`fetch` end to end: the real `agent run`, the real SDKs, the fake model server, and local web servers (never the
internet). Headless, a host no rule allows is refused with the way to allow it; a rule allows it; a redirect to
another host is judged again before it is followed."""

from __future__ import annotations

import json

import pytest

from tests.agent.test_e2e import MODELS, agent_env, make_repo, run_agent
from tests.agent.test_e2e_extensions import add_user_config
from tests.fakeserver import FakeModelServer, reply
from tests.support.web import LocalWebServer, page, redirect

DOCS = """<!doctype html><html><head><title>retry() — mylib docs</title></head><body>
<nav>Home · API · Changelog</nav><main><h1>retry()</h1><p>Retries a call with <code>backoff=2.0</code>.</p>
<pre><code class="language-python">retry(fetch, attempts=3)</code></pre></main></body></html>"""


def _run(tmp_path, provider, url, rules=()):
    repo = make_repo(tmp_path)
    script = [reply("Reading the docs.", [("fetch", {"url": url})]), reply("retry() backs off by 2.0.")]
    with FakeModelServer(script) as srv:
        env = agent_env(tmp_path, srv, provider)
        env = {k: v for k, v in env.items() if "proxy" not in k.lower()}
        if rules:
            add_user_config(tmp_path, "[permissions]\nallow = [" + ", ".join(f'"{r}"' for r in rules) + "]\n")
        r = run_agent(["run", "how does mylib's retry back off?", "-m", MODELS[provider], "-o", "stream-json"],
                      cwd=repo, env=env)
        bodies = [q.body for q in srv.requests]
    assert r.returncode == 0, r.stderr
    events = [json.loads(line) for line in r.stdout.splitlines()]
    result = next(e for e in events if e["type"] == "tool_result")
    return result, bodies


@pytest.mark.parametrize("provider", ["anthropic", "openai"])
def test_a_page_allowed_by_rule_reaches_the_model_as_markdown(tmp_path, provider):
    with LocalWebServer({"/retry.html": page(DOCS)}) as web:
        result, bodies = _run(tmp_path, provider, web.url("/retry.html"), ["fetch: 127.0.0.1"])
    assert not result["is_error"], result["content"]
    seen = json.dumps(bodies[1]["messages"])
    assert "# retry() \\u2014 mylib docs" in seen or "# retry() — mylib docs" in seen
    assert "```python\\nretry(fetch, attempts=3)\\n```" in seen and "Home \\u00b7 API" not in seen
    assert result["meta"]["status"] == 200 and web.hits["/retry.html"] == 1


def test_a_host_no_rule_allows_is_refused_headless(tmp_path):
    with LocalWebServer({"/retry.html": page(DOCS)}) as web:
        result, bodies = _run(tmp_path, "anthropic", web.url("/retry.html"))
    assert result["is_error"] and web.hits["/retry.html"] == 0
    seen = json.dumps(bodies[1]["messages"])
    assert "none can be given in a headless run" in seen and "`fetch: 127.0.0.1:" in seen


@pytest.mark.parametrize("allow_target", [False, True])
def test_a_redirect_to_another_host_is_judged_again(tmp_path, allow_target):
    rules = ["fetch: 127.0.0.1"] + (["fetch: localhost"] if allow_target else [])
    with LocalWebServer({"/retry.html": page(DOCS)}) as target, \
            LocalWebServer({"/docs": redirect(target.url("/retry.html", host="localhost"))}) as origin:
        result, bodies = _run(tmp_path, "openai", origin.url("/docs"), rules)
    assert origin.hits["/docs"] == 1
    if allow_target:
        assert not result["is_error"] and target.hits["/retry.html"] == 1
        assert "retry(fetch, attempts=3)" in json.dumps(bodies[1]["messages"])
    else:
        assert result["is_error"] and target.hits["/retry.html"] == 0
        assert "redirects to http://localhost" in result["content"]
        assert "none can be given in a headless run" in result["content"]
