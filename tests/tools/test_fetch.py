"""The `fetch` tool against local web servers: Markdown out of HTML, text as it is, paging from the session's cache,
errors, the download cap, and redirects: the same host followed, another host only when the gate allows it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ghostline.sandbox.policy import Action, Policy, suggest_rule
from ghostline.tools import fetch as fetch_module
from ghostline.tools.base import ToolContext, ToolError
from ghostline.tools.fetch import FetchTool, host_of
from ghostline.tools.images import ImageLimits
from ghostline.tools.registry import ApprovalAnswer, Call, ToolRegistry
from ghostline.tools.scope import ToolScope
from ghostline.tools.webpage import to_markdown
from tests.support.images import make_png
from tests.support.web import LocalWebServer, Route, page, redirect
from tests.tools.conftest import call

DOC = """<!doctype html><html><head><title>asyncio.gather — Python docs</title></head><body>
<nav><a href="/">Home</a> <a href="/modules">Modules</a> SIDEBAR-NAVIGATION</nav>
<header>SITE-HEADER</header>
<main><h1>asyncio.gather<a class="headerlink" href="#gather">¶</a></h1>
<p>Run <a href="/awaitables" title="tooltip">awaitable objects</a> in the <em>aws</em> sequence
<code>concurrently</code>.</p>
<pre><code class="language-python">results = await asyncio.gather(a(), b())
print(results)</code></pre>
<ul><li>return_exceptions: bool</li></ul>
<table><tr><th>arg</th><th>meaning</th></tr><tr><td>aws</td><td>awaitables</td></tr></table>
<p>""" + "Long text. " * 30 + """</p>
</main><footer>SITE-FOOTER</footer><script>var tracking = 1;</script></body></html>"""


def test_a_page_becomes_its_main_content_in_markdown():
    md = to_markdown(DOC, "https://docs.example.org/library/asyncio.html")
    assert md.title == "asyncio.gather — Python docs"
    text = md.text
    assert text.startswith("# asyncio.gather\n")  # no heading anchor
    assert "```python\nresults = await asyncio.gather(a(), b())\nprint(results)\n```" in text
    assert "[awaitable objects](https://docs.example.org/awaitables)" in text  # absolute, no tooltip
    assert "`concurrently`" in text and "*aws*" in text and "- return_exceptions: bool" in text
    assert "| aws | awaitables |" in text
    for furniture in ("SIDEBAR-NAVIGATION", "SITE-HEADER", "SITE-FOOTER", "tracking"):
        assert furniture not in text


def test_bytes_are_decoded_by_the_declared_charset():
    html = "<html><head><meta charset='iso-8859-1'><title>Caf\xe9</title></head><body><p>d\xe9j\xe0 vu</p></body></html>"
    assert to_markdown(html.encode("latin-1")).text.strip() == "déjà vu"
    assert to_markdown(html.encode("latin-1"), encoding="latin-1").title == "Café"


def test_the_action_names_the_host_for_the_policy():
    tool = FetchTool()
    assert tool.action({"url": "https://docs.python.org/3/library/"}) == Action("fetch", "network",
                                                                              hosts=("docs.python.org",))
    assert tool.action({"url": "http://127.0.0.1:8080/x"}).hosts == ("127.0.0.1:8080",)
    assert host_of("http://[::1]:9/") == "[::1]:9"
    # A URL that reaches nothing is nothing to ask about; running it says what is wrong.
    assert tool.action({"url": "file:///etc/passwd"}).kind == "read"
    assert tool.title({"url": "https://example.com"}) == "fetch https://example.com"


def test_the_policy_judges_hosts():
    fetch = Action("fetch", "network", hosts=("docs.python.org",))
    local = Action("fetch", "network", hosts=("127.0.0.1:8080",))

    def decide(policy: Policy, action: Action, mode: str = "workspace-write", approval: str = "auto") -> str:
        return policy.evaluate(action, mode=mode, approval=approval, workspace=Path("/w"), level="none").action

    none = Policy(remembered=False)
    assert decide(none, fetch) == "ask"  # auto approval alone does not reach the network
    assert decide(none, fetch, approval="plan") == "ask"  # looking something up while planning is fine to ask
    assert decide(none, fetch, mode="full-access") == "allow"
    assert decide(Policy(["fetch: docs.python.org"], remembered=False), fetch) == "allow"
    assert decide(Policy(["fetch(domain:*.python.org)"], remembered=False), fetch) == "allow"
    assert decide(Policy(["WebFetch(domain:docs.python.org)"], remembered=False), fetch) == "allow"  # Claude Code's
    assert decide(Policy(["fetch: example.com"], remembered=False), fetch) == "ask"
    assert decide(Policy(["fetch: 127.0.0.1"], remembered=False), local) == "allow"  # every port
    assert decide(Policy(["fetch: 127.0.0.1:9999"], remembered=False), local) == "ask"  # that port only
    assert decide(Policy(["fetch"], deny=["fetch: *.python.org"], remembered=False), fetch, mode="full-access") \
        == "deny"
    assert suggest_rule(fetch) == "fetch: docs.python.org"
    reason = none.evaluate(fetch, mode="workspace-write", approval="ask", workspace=Path("/w"), level="none").reason
    assert "`fetch: docs.python.org`" in reason
    assert ToolScope(["fetch(domain:docs.python.org)"]).permits(fetch, Path("/w"))
    assert ToolScope(["WebFetch"]).permits(fetch, Path("/w"))
    assert not ToolScope(["fetch: example.com"]).permits(fetch, Path("/w"))


async def test_html_text_and_json(ctx):
    routes = {"/doc": page(DOC), "/notes.txt": page("plain *text*\n", "text/plain"),
              "/data.json": page('{"a": 1}', "application/json")}
    with LocalWebServer(routes) as web:
        doc = await call(FetchTool(), ctx, url=web.url("/doc"))
        txt = await call(FetchTool(), ctx, url=web.url("/notes.txt"))
        data = await call(FetchTool(), ctx, url=web.url("/data.json"))
    assert not doc.is_error, doc.content
    assert doc.content.startswith(f"# asyncio.gather — Python docs\nURL: {web.url('/doc')}\n\n# asyncio.gather")
    assert "```python" in doc.content and "SIDEBAR" not in doc.content
    assert doc.meta["status"] == 200 and doc.meta["content_type"] == "text/html" and not doc.meta["cached"]
    assert txt.content.endswith("plain *text*") and json.loads(data.content.split("\n\n", 1)[1]) == {"a": 1}


async def test_long_pages_come_in_parts_from_the_cache(ctx, monkeypatch):
    monkeypatch.setattr(fetch_module, "CHUNK_CHARS", 100)
    body = "".join(f"line {i:03d}\n" for i in range(60))  # 540 characters
    tool = FetchTool()
    with LocalWebServer({"/long.txt": page(body, "text/plain")}) as web:
        first = await call(tool, ctx, url=web.url("/long.txt"))
        second = await call(tool, ctx, url=web.url("/long.txt"), start=99)
        past = await call(tool, ctx, url=web.url("/long.txt"), start=5000)
        hits = web.hits["/long.txt"]
    assert "line 000" in first.content and "line 011" not in first.content
    # Parts end at a line's end when one is near.
    assert "[showing characters 0-99 of 540; call fetch again with start=99 to read on]" in first.content
    assert second.content.split("\n\n")[1].startswith("line 011") and second.meta["cached"]
    assert "from this session's cache" in second.content
    assert past.is_error and "past the end" in past.content
    assert hits == 1


async def test_errors_are_one_clear_result(ctx, monkeypatch):
    routes = {"/missing": Route(404, b"<html><body><p>No such page</p></body></html>",
                                {"Content-Type": "text/html"}),
              "/file.pdf": Route(200, b"%PDF-1.7 ...", {"Content-Type": "application/pdf"}),
              "/big.txt": page("x" * 5000, "text/plain")}
    monkeypatch.setattr(fetch_module, "MAX_DOWNLOAD_BYTES", 1000)
    with LocalWebServer(routes) as web:
        missing = await call(FetchTool(), ctx, url=web.url("/missing"))
        pdf = await call(FetchTool(), ctx, url=web.url("/file.pdf"))
        big = await call(FetchTool(), ctx, url=web.url("/big.txt"))
        bad = await call(FetchTool(), ctx, url="ftp://example.com/x")
    assert missing.is_error and "answered 404 Not Found: No such page" in missing.content
    assert pdf.is_error and "application/pdf" in pdf.content
    assert not big.is_error and "the download stopped at" in big.content and big.content.count("x") >= 1000
    assert bad.is_error and "http:// or https://" in bad.content
    port_closed = await call(FetchTool(), ctx, url="http://127.0.0.1:9/")
    assert port_closed.is_error and "cannot fetch http://127.0.0.1:9/" in port_closed.content


async def test_an_image_url_is_shown_to_a_model_that_takes_images(ctx, tmp_path):
    png = make_png(10, 10)
    seeing = ToolContext(ctx.workspace, ctx.cwd, images=ImageLimits(100_000), output_dir=tmp_path / "outputs")
    with LocalWebServer({"/shot.png": Route(200, png, {"Content-Type": "image/png"})}) as web:
        shown = await call(FetchTool(), seeing, url=web.url("/shot.png"))
        described = await call(FetchTool(), ctx, url=web.url("/shot.png"))
    assert "[PNG 10x10" in shown.content and Path(shown.meta["images"][0]["path"]).read_bytes() == png
    assert "this model does not take images" in described.content and "images" not in described.meta


async def test_a_redirect_on_the_same_host_is_followed(ctx):
    with LocalWebServer({"/old": redirect("/new"), "/new": page("<p>moved here</p>")}) as web:
        result = await call(FetchTool(), ctx, url=web.url("/old"))
    assert not result.is_error and "moved here" in result.content
    assert f"URL: {web.url('/new')} (redirected from {web.url('/old')})" in result.content


async def test_a_redirect_to_another_host_goes_back_to_the_gate(ctx):
    """127.0.0.1 and localhost are two hosts to the policy: the redirect is judged like a fetch of its target."""
    asked: list[str] = []

    async def approver(request):
        asked.append(request.args["url"])
        return ApprovalAnswer(allow=False)

    with LocalWebServer({"/": page("<p>landed</p>")}) as target, \
            LocalWebServer({"/go": redirect(target.url("/", host="localhost"))}) as origin:
        url = origin.url("/go")

        async def fetch_with(policy: Policy, approve=None) -> str:
            registry = ToolRegistry([FetchTool()], policy=policy, approver=approve)
            return (await registry.run([Call("c1", "fetch", {"url": url})], ctx))[0].content

        headless = await fetch_with(Policy(["fetch: 127.0.0.1"], remembered=False))
        asking = await fetch_with(Policy(["fetch: 127.0.0.1"], remembered=False), approver)
        allowed = await fetch_with(Policy(["fetch: 127.0.0.1", "fetch: localhost"], remembered=False))
        nobody = (await call(FetchTool(), ToolContext(ctx.workspace, ctx.cwd), url=url)).content
    assert "redirects to http://localhost" in headless and "none can be given in a headless run" in headless
    assert asked == [target.url("/", host="localhost")] and "the user declined" in asking
    assert "landed" in allowed
    assert "landed" in nobody and target.hits["/"] == 2  # a registry without a policy allows it too


async def test_without_a_gate_a_redirect_to_another_host_is_refused(ctx):
    with LocalWebServer({"/": page("<p>landed</p>")}) as target, \
            LocalWebServer({"/go": redirect(target.url("/", host="localhost"))}) as origin:
        with pytest.raises(ToolError, match="redirects to another host: http://localhost.*Fetch that URL"):
            await FetchTool().run({"url": origin.url("/go")}, ctx)  # no registry: nobody to recheck with
    assert target.hits["/"] == 0


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch):
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
