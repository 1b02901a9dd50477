"""Repository context in completion prompts (daemon/context.py): snippets the index ranks for the cursor's place,
computed off the hot path and held while the place stays the same, so typing keeps the KV cache warm."""

from __future__ import annotations

import textwrap
import threading
from pathlib import Path

import pytest

from ghostline.daemon.context import RepoContext, merge_extra, overlap, place_words
from ghostline.daemon.engine.fim import ExtraChunk
from ghostline.daemon.engine.service import Engine
from ghostline.daemon.engine.types import CompletionRequest

BUFFER = textwrap.dedent("""\
    from store.cache import LeaseCache


    def handler(request):
        cache = LeaseCache(ttl=30)
        token = cache.acquire_lease(request.user)
        """)
OTHER_PLACE = textwrap.dedent("""\
    import json


    def render(payload):
        return json.dumps(payload, indent=2, sort_keys=True)
        """)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    (root / "store").mkdir(parents=True)
    (root / "store" / "__init__.py").write_text("")
    (root / "store" / "cache.py").write_text(textwrap.dedent('''\
        class LeaseCache:
            """Leases with a time to live."""

            def __init__(self, ttl):
                self.ttl = ttl

            def acquire_lease(self, owner):
                return f"lease:{owner}:{self.ttl}"
        '''))
    (root / "app.py").write_text(BUFFER)
    return root


class WatchedStats(dict):
    """RepoContext.stats that wakes a waiting test whenever a figure changes. The worker counts a computation
    after storing its snippets, under the context's lock: once the count is seen, chunks_for serves them."""

    def __init__(self, *a, **kw):  # type: ignore[no-untyped-def]
        super().__init__(*a, **kw)
        self.changed = threading.Condition()

    def __setitem__(self, key: str, value: int) -> None:
        super().__setitem__(key, value)
        with self.changed:
            self.changed.notify_all()


def watched(c: RepoContext) -> RepoContext:
    c.stats = WatchedStats(c.stats)
    return c


@pytest.fixture
def ctx(repo: Path):
    c = watched(RepoContext.open(repo, k=3))
    c.start(watch=False)
    c.index.refresh(embed=False)
    yield c
    c.stop()


def wait_computed(c: RepoContext, n: int, timeout: float = 10.0) -> None:
    stats = c.stats
    assert isinstance(stats, WatchedStats)
    with stats.changed:
        assert stats.changed.wait_for(lambda: stats["computed"] >= n, timeout), dict(stats)


def test_snippets_are_computed_off_the_hot_path_and_held_while_typing(ctx: RepoContext) -> None:
    line = BUFFER.count("\n")
    assert ctx.chunks_for("app.py", BUFFER, line) == []  # nothing ready yet: never waits
    wait_computed(ctx, 1)
    first = ctx.chunks_for("app.py", BUFFER, line)
    assert first and first[-1].filename == "store/cache.py" and "def acquire_lease" in first[-1].text
    assert all(c.filename != "app.py" for c in first)  # the buffer's own file is the editor's business
    # typing on (a new line, even) keeps the place: the very same chunks, nothing recomputed
    typed = BUFFER + "    if token:\n        return tok"
    for i in range(1, len(typed) - len(BUFFER) + 1):
        text = typed[: len(BUFFER) + i]
        assert ctx.chunks_for("app.py", text, text.count("\n") + 1) == first
    assert ctx.stats["computed"] == 1
    # another place: new snippets are asked for; meanwhile the old ones are still served (stable, non-blocking)
    other = OTHER_PLACE * 3
    assert ctx.chunks_for("app.py", other, other.count("\n")) == first
    wait_computed(ctx, 2)
    assert ctx.chunks_for("app.py", other, other.count("\n")) != first
    assert ctx.stats["stale_served"] >= 1


def test_documents_keep_their_own_place(ctx: RepoContext) -> None:
    line = BUFFER.count("\n")
    ctx.chunks_for("a.py", BUFFER, line)
    wait_computed(ctx, 1)
    ctx.chunks_for("b.py", OTHER_PLACE, 4)
    wait_computed(ctx, 2)
    assert ctx.chunks_for("a.py", BUFFER, line)[-1].filename == "store/cache.py"  # a.py's place was kept
    assert ctx.stats["computed"] == 2


def test_place_words_and_overlap() -> None:
    a = place_words(BUFFER, BUFFER.count("\n"))
    assert {"LeaseCache", "acquire_lease", "handler"} <= a and "if" not in a
    assert overlap(a, a) == 1.0 and overlap(a, place_words(OTHER_PLACE, 4)) < 0.2


def test_merge_extra_puts_repository_chunks_first_and_skips_what_the_editor_sends() -> None:
    repo = [ExtraChunk("def f():\n    pass\n", "lib/f.py"), ExtraChunk("X = 1\n", "lib/x.py")]
    editor = [ExtraChunk("# open buffer\nX = 1\nY = 2\n", "lib/x.py")]
    assert merge_extra(repo, editor) == [repo[0], editor[0]]
    assert merge_extra([], editor) == editor


async def test_engine_puts_snippets_in_the_prompt_and_typing_reuses_the_kv_cache(backend, repo: Path) -> None:
    ctx = watched(RepoContext.open(repo, k=3))
    ctx.start(watch=False)
    ctx.index.refresh(embed=False)
    engine = Engine(backend, context=ctx)
    try:
        def request(text: str) -> CompletionRequest:
            return CompletionRequest(prefix=text, suffix="\n", filename="app.py", client_id="app.py", n_predict=2)

        await engine.submit(request(BUFFER)).result()  # asks for this place's snippets
        wait_computed(ctx, 1)
        first = request(BUFFER + "    ")
        r1 = await engine.submit(first).result()
        assert first.extra and "def acquire_lease" in first.extra[-1].text
        typed = request(BUFFER + "    if to")
        r2 = await engine.submit(typed).result()
        assert typed.extra == first.extra  # the same leading context ...
        assert r2.tokens_reused >= 0.9 * r1.prompt_tokens  # ... so the prompt is reused up to the typed text
    finally:
        await engine.aclose()


def test_load_engine_rejects_a_missing_repo(tiny_ckpt, tmp_path: Path) -> None:
    from ghostline.daemon.engine import load_engine

    with pytest.raises(ValueError, match="not a directory"):
        load_engine(str(tiny_ckpt), repo=str(tmp_path / "nope"), device="cpu")
