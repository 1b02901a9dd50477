"""A web page as Markdown for the model (the `fetch` tool): the page's main content, its title, its links kept.

markdownify does the conversion (headings, lists, tables, fenced code, links); what is converted is the page's
main region when it marks one (`<main>`, `<article>`, `role="main"`), without the page furniture around it
(navigation, headers, footers, sidebars, forms, buttons, scripts). bench/fetch_markdown.py compares this with
trafilatura and html2text on real documentation pages.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urljoin

from bs4 import BeautifulSoup, Tag
from markdownify import MarkdownConverter

# What is never content: page furniture and things a browser runs or draws.
_FURNITURE = ("script", "style", "noscript", "template", "svg", "canvas", "iframe", "form", "button", "nav",
              "header", "footer", "aside", "[role=navigation]", "[role=banner]", "[role=contentinfo]",
              "[role=search]", "[aria-hidden=true]", "[hidden]")
_MAIN = ("main", "[role=main]", "article", "#main-content", "#content", "#main", ".content")
_BLANK_RUNS = re.compile(r"\n{3,}")


@dataclass(frozen=True)
class Page:
    title: str
    text: str  # Markdown


class _Converter(MarkdownConverter):
    """markdownify with code blocks fenced and their language kept (`class="language-python"`)."""

    def __init__(self, **options: object) -> None:
        super().__init__(heading_style="ATX", bullets="-", code_language_callback=_code_language,
                         escape_underscores=False, escape_asterisks=False, **options)


def _code_language(pre: Tag) -> str | None:
    for tag in (pre, pre.find("code")):
        if isinstance(tag, Tag):
            for cls in tag.get("class") or []:
                if cls.startswith(("language-", "lang-")):
                    return cls.split("-", 1)[1]
    return None


def _main_region(soup: BeautifulSoup) -> Tag:
    for selector in _MAIN:
        found = soup.select_one(selector)
        if found is not None and len(found.get_text(strip=True)) > 200:
            return found
    return soup.body or soup


def _tidy_links(main: Tag, url: str) -> None:
    """Links as a reader needs them: no tooltips (`title`), no heading anchors (`¶`, `#`, `§`), and hrefs absolute
    when the page's URL is known (so the model can fetch them)."""
    for a in main.find_all("a"):
        href = a.get("href") or ""
        if href.startswith("#") and len(a.get_text(strip=True)) <= 1:
            a.decompose()
            continue
        a.attrs.pop("title", None)
        if url and href and not href.startswith("#"):
            a["href"] = urljoin(url, href)


def to_markdown(html: str | bytes, url: str = "", encoding: str | None = None) -> Page:
    """The page's main content as Markdown, and its title. Bytes are decoded by `encoding` (the HTTP header's
    charset), else by what the page declares."""
    soup = BeautifulSoup(html, "lxml", from_encoding=encoding) if isinstance(html, bytes) else \
        BeautifulSoup(html, "lxml")
    title = soup.title.get_text(" ", strip=True) if soup.title else ""
    main = _main_region(soup)
    for junk in main.select(", ".join(_FURNITURE)):
        junk.decompose()
    _tidy_links(main, url)
    text = _Converter().convert_soup(main)
    return Page(title, _BLANK_RUNS.sub("\n\n", text).strip() + "\n")
