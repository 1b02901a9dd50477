"""Compaction decides by a tool's kind (the caller's lookup) and its result's meta, never by its name."""

import pytest

from ghostline.compaction import CompactionConfig, Compactor

from .helpers import KIND_OF, SYSTEM, TOOLS, T, find_result, lines

# only snip runs, and it may take everything it finds
SNIP_ONLY = CompactionConfig(snip_target=0.05, micro_at=0.99, collapse_at=0.99, hard_at=0.99,
                             result_cap_fraction=1.0, turn_cap_fraction=1.0)


async def snip_at_55_percent(t: T, tmp_path, counter, kind_of) -> list:
    """The transcript after a run whose window puts it at 55% (between snip_at and micro_at)."""
    probe = Compactor(window=100_000, reserved_output=0, counter=counter)
    window = int(probe.estimate(SYSTEM, TOOLS, t.messages) / 0.55)
    c = Compactor(SNIP_ONLY, window=window, reserved_output=0, store_dir=tmp_path, counter=counter,
                  kind_of=kind_of)
    out, _ = await c.prepare(SYSTEM, TOOLS, t.messages)
    return out


def superseded(messages, uid) -> bool:
    return find_result(messages, uid).content.startswith("[superseded:")


@pytest.mark.parametrize("kind_of, expected", [
    ({"view": "read"}.get, True),
    ({"read": "read"}.get, False),  # the name "view" means nothing by itself
    (None, False),  # no lookup: every tool is "other"
])
async def test_a_read_is_known_by_its_kind(tmp_path, counter, kind_of, expected):
    t = T()
    old = t.call("view", {"path": "src/a.py"}, lines(300, "a"), meta={"path": "src/a.py"})
    t.call("view", {"path": "src/a.py"}, lines(300, "a"), meta={"path": "src/a.py"})
    assert superseded(await snip_at_55_percent(t, tmp_path, counter, kind_of), old) is expected


async def test_only_a_whole_file_write_supersedes_a_read(tmp_path, counter):
    t = T()
    read_a = t.read("src/a.py", 300)
    t.write("src/a.py", lines(300, "new"))
    read_b = t.read("src/b.py", 300)
    t.edit("src/b.py")  # a partial edit: the read still shows the rest of the file
    out = await snip_at_55_percent(t, tmp_path, counter, KIND_OF)
    assert superseded(out, read_a) and not superseded(out, read_b)


async def test_a_search_that_names_a_directory_is_not_a_file_read(tmp_path, counter):
    t = T()
    first = t.call("grep", {"path": "src", "pattern": "x"}, lines(300, "g"), meta={"matches": 300})
    t.call("grep", {"path": "src", "pattern": "y"}, lines(300, "g"), meta={"matches": 300})
    out = await snip_at_55_percent(t, tmp_path, counter, {"grep": "read"}.get)
    assert not superseded(out, first)


async def test_the_latest_todo_list_is_kept_whatever_the_tool_is_called(tmp_path, counter):
    t = T()
    todos = [{"content": f"step {i}", "status": "pending"} for i in range(60)]
    plan = t.call("plan", {"steps": 60}, "\n".join(f"- [ ] step {i}" for i in range(60)), meta={"todos": todos})
    builds = [t.bash(f"make s{i}", lines(300, f"s{i}")) for i in range(4)]
    cfg = CompactionConfig(snip_at=0.9, micro_at=0.9, collapse_at=0.99, hard_at=0.99, micro_target=0.01,
                           keep_tool_turns=0, micro_min_keep=0, result_cap_fraction=1.0, turn_cap_fraction=1.0)
    probe = Compactor(window=100_000, reserved_output=0, counter=counter)
    window = int(probe.estimate(SYSTEM, TOOLS, t.messages) / 0.92)
    c = Compactor(cfg, window=window, reserved_output=0, store_dir=tmp_path, counter=counter, kind_of=KIND_OF)
    out, evs = await c.prepare(SYSTEM, TOOLS, t.messages)
    assert [e.stage for e in evs] == ["microcompact"]
    assert all(find_result(out, b).content.startswith("[cleared:") for b in builds)
    assert find_result(out, plan).content.startswith("- [ ] step 0")
