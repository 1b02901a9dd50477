"""Which HTML-to-Markdown library the `fetch` tool uses: quality and speed on real documentation pages.

    .venv/bin/python bench/fetch_markdown.py [--quick]

The pages are real HTML documentation installed on a development machine (Node.js API docs with their Markdown
sources beside them, npm's command docs, the Rust book and rustdoc API pages, the Valgrind manual); each is served
by a local HTTP server and fetched with httpx, as the tool does. Pages not found here are skipped (the table says
how many ran). Each candidate turns every page into Markdown:

* trafilatura (main-content extraction, Markdown output),
* markdownify (the whole page converted),
* html2text (the whole page converted),
* the tool's choice (tools/webpage.py): markdownify on the page's main region (`<main>`, `<article>`, ...)
  without its furniture (navigation, headers, footers, sidebars, buttons, scripts).

Candidates whose library is not installed are skipped (trafilatura and html2text are not Ghostline dependencies:
`pip install trafilatura lxml_html_clean html2text` to compare).

Measured per page against the page's main content (the Node pages' own Markdown source; elsewhere the text of
the page's main region, by a CSS selector per site):

* recall: the share of the main content's words found in the output (bag of words),
* precision: the share of the output's words that belong to the main content (the rest is navigation, menus),
* code: the share of the main content's code blocks whose lines come out verbatim inside a fenced block,
* headings: the share of the main content's headings that come out as Markdown headings (`#`),
* ms: conversion time (median of the pages), and the output's size relative to the HTML.

Writes bench/out/fetch_markdown.json.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import json
import re
import statistics
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from bs4 import BeautifulSoup

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ghostline.tools.webpage import to_markdown  # noqa: E402

RUST = Path("/root/.rustup/toolchains/stable-x86_64-unknown-linux-gnu/share/doc/rust/html")
NODE = Path("/usr/share/doc/nodejs/api")
NPM = Path("/usr/lib/node_modules/npm/docs/output")
VALGRIND = Path("/usr/share/doc/valgrind/html")

# (file, selector of the main region); Node pages use their .md source instead.
PAGES: list[tuple[Path, str]] = [
    *((NODE / f"{n}.html", "md") for n in ("path", "events", "url", "timers", "readline", "os", "buffer",
                                           "child_process", "http", "stream")),
    *((NPM / "commands" / f"npm-{n}.html", "#_content") for n in ("install", "run", "ci", "publish", "audit")),
    *((RUST / "book" / f"{n}.html", "main") for n in ("ch04-01-what-is-ownership", "ch08-02-strings",
                                                     "ch09-02-recoverable-errors-with-result", "ch16-01-threads")),
    (RUST / "std" / "vec" / "struct.Vec.html", "#main-content"),
    (RUST / "std" / "fs" / "fn.read_to_string.html", "#main-content"),
    (RUST / "std" / "collections" / "struct.HashMap.html", "#main-content"),
    *((VALGRIND / f"{n}.html", "div.chapter") for n in ("manual-core", "mc-manual", "QuickStart")),
]
_WORD = re.compile(r"[A-Za-z0-9_]{2,}")


def _words(text: str) -> Counter[str]:
    return Counter(w.lower() for w in _WORD.findall(text))


def _md_source_truth(md: str) -> tuple[str, list[str], list[str]]:
    """(text, code blocks, headings) of a Markdown source: comments and link targets left out."""
    md = re.sub(r"<!--.*?-->", " ", md, flags=re.S)
    md = re.sub(r"^\[[^\]]+\]:\s*\S+.*$", " ", md, flags=re.M)
    md = re.sub(r"\]\([^)]*\)", "]", md)
    code = [m.group(1) for m in re.finditer(r"^```[^\n]*\n(.*?)^```", md, flags=re.S | re.M)]
    heads = [re.sub(r"[`*_]", "", h).strip() for h in re.findall(r"^#{1,6}\s+(.+)$", md, flags=re.M)]
    return md, code, heads


def _html_truth(html: str, selector: str) -> tuple[str, list[str], list[str]]:
    soup = BeautifulSoup(html, "lxml")
    main = soup.select_one(selector) or soup.body or soup
    for junk in main.select("script, style, noscript, button"):
        junk.decompose()
    code = [pre.get_text() for pre in main.find_all("pre")]
    heads = [h.get_text(" ", strip=True) for h in main.find_all(re.compile(r"^h[1-6]$"))]
    return main.get_text(" "), code, heads


def _lines(text: str) -> list[str]:
    return [ln.strip() for ln in text.splitlines() if ln.strip()]


def _fenced_blocks(md: str) -> list[str]:
    return ["\n".join(_lines(m.group(1)))
            for m in re.finditer(r"^\s*(?:```|~~~)[^\n]*\n(.*?)^\s*(?:```|~~~)", md, flags=re.S | re.M)]


def _code_score(code: list[str], md: str) -> float | None:
    code = [c for c in code if _lines(c)]
    if not code:
        return None
    fenced = "\n\x00\n".join(_fenced_blocks(md))
    return sum("\n".join(_lines(c)) in fenced for c in code) / len(code)


def _heading_score(heads: list[str], md: str) -> float | None:
    heads = [h for h in heads if _words(h)]
    if not heads:
        return None
    out = [_words(h) for h in re.findall(r"^#{1,6}\s+(.+)$", md, flags=re.M)]
    return sum(any(_words(h) <= o for o in out) for h in heads) / len(heads)


def score(truth: tuple[str, list[str], list[str]], md: str) -> dict[str, float | None]:
    text, code, heads = truth
    want, got = _words(text), _words(md)
    common = sum((want & got).values())
    return {"recall": common / max(1, sum(want.values())), "precision": common / max(1, sum(got.values())),
            "code": _code_score(code, md), "headings": _heading_score(heads, md)}


def _trafilatura(html: str, url: str) -> str:
    import trafilatura

    return trafilatura.extract(html, url=url, output_format="markdown", include_links=True,
                               include_formatting=True, include_tables=True, favor_recall=True) or ""


def _markdownify(html: str, url: str) -> str:
    from markdownify import markdownify

    return markdownify(html, heading_style="ATX", strip=["script", "style"])


def _html2text(html: str, url: str) -> str:
    import html2text

    h = html2text.HTML2Text(baseurl=url)
    h.body_width = 0
    return h.handle(html)


def _chosen(html: str, url: str) -> str:
    return to_markdown(html, url).text


CANDIDATES: dict[str, Callable[[str, str], str]] = {
    "trafilatura (markdown)": _trafilatura,
    "markdownify (whole page)": _markdownify,
    "html2text (whole page)": _html2text,
    "markdownify on the main region (chosen)": _chosen,
}


def _serve(root: Path) -> tuple[http.server.ThreadingHTTPServer, str]:
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


def _fetch_pages(pages: list[tuple[Path, str]]) -> list[tuple[str, str, tuple[str, list[str], list[str]]]]:
    """(url, html, truth) of each page found here, fetched from a local server."""
    out = []
    servers: dict[Path, tuple[Any, str]] = {}
    with httpx.Client() as client:
        for path, selector in pages:
            if not path.is_file():
                continue
            if path.parent not in servers:
                servers[path.parent] = _serve(path.parent)
            url = f"{servers[path.parent][1]}/{path.name}"
            html = client.get(url).text
            if selector == "md":
                source = path.with_suffix(".md")
                if not source.is_file():
                    continue
                truth = _md_source_truth(source.read_text(encoding="utf-8"))
            else:
                truth = _html_truth(html, selector)
            out.append((url, html, truth))
    for server, _ in servers.values():
        server.shutdown()
    return out


def _mean(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.mean(present) if present else None


def run(quick: bool) -> dict[str, Any]:
    pages = _fetch_pages(PAGES[::3] if quick else PAGES)
    if not pages:
        raise SystemExit("none of the documentation pages this bench uses is installed here")
    table: dict[str, Any] = {}
    for name, convert in CANDIDATES.items():
        try:
            convert(pages[0][1], pages[0][0])  # imports and caches out of the timing
        except ImportError as exc:
            print(f"skipped {name}: {exc}")
            continue
        rows, times, ratios = [], [], []
        for url, html, truth in pages:
            start = time.perf_counter()
            md = convert(html, url)
            times.append((time.perf_counter() - start) * 1000)
            ratios.append(len(md) / max(1, len(html)))
            rows.append(score(truth, md))
        table[name] = {key: _mean([r[key] for r in rows]) for key in ("recall", "precision", "code", "headings")}
        table[name].update(ms_median=statistics.median(times), ms_max=max(times),
                           size_ratio=statistics.median(ratios))
    return {"pages": len(pages), "candidates": table}


def _print(result: dict[str, Any]) -> None:
    print(f"{result['pages']} pages")
    print(f"{'candidate':<44} {'recall':>7} {'precis.':>7} {'code':>6} {'heads':>6} {'ms med':>7} {'ms max':>7} "
          f"{'size':>6}")
    for name, r in result["candidates"].items():
        def pct(v: float | None) -> str:
            return "-" if v is None else f"{v:.0%}"
        print(f"{name:<44} {pct(r['recall']):>7} {pct(r['precision']):>7} {pct(r['code']):>6} "
              f"{pct(r['headings']):>6} {r['ms_median']:>7.1f} {r['ms_max']:>7.1f} {r['size_ratio']:>6.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="every third page only")
    args = parser.parse_args()
    result = run(args.quick)
    _print(result)
    out = Path(__file__).resolve().parent / "out"
    out.mkdir(exist_ok=True)
    (out / "fetch_markdown.json").write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
