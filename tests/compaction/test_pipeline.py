from pathlib import Path

import pytest

from ghostline.compaction import (
    CompactionConfig,
    CompactionFailed,
    Compactor,
    ContextOverflow,
    validate_pairs,
)
from ghostline.compaction.transcript import Message, SummaryBlock, TextBlock, ToolResultBlock

from .helpers import KIND_OF, SYSTEM, TOOLS, T, dump, find_result, find_use, lines


@pytest.fixture
def comp(tmp_path, counter):
    """Builds a Compactor with the pinned counter and the test tools' kinds."""

    def make(window: int = 20_000, reserved: int = 2_000, store: Path | None = None, **kw) -> Compactor:
        cfg = kw.pop("config", None) or CompactionConfig()
        kw.setdefault("kind_of", KIND_OF)
        return Compactor(cfg, window=window, reserved_output=reserved, store_dir=store or tmp_path / "s",
                         counter=counter, **kw)

    return make


def fill(c: Compactor, msgs: list[Message]) -> float:
    return c.estimate(SYSTEM, TOOLS, msgs) / c.effective_window


# -- config ---------------------------------------------------------------------------------------------

def test_config_from_dict_and_validation():
    cfg = CompactionConfig.from_dict({"snip_at": 0.4, "keep_tool_turns": 5})
    assert cfg.snip_at == 0.4 and cfg.keep_tool_turns == 5 and cfg.micro_at == 0.6
    with pytest.raises(ValueError, match="unknown compaction setting"):
        CompactionConfig.from_dict({"snip_att": 0.4})
    with pytest.raises(ValueError, match="thresholds"):
        CompactionConfig(hard_at=1.5)
    with pytest.raises(ValueError):
        CompactionConfig(micro_target=0)


def test_budgets_scale_with_the_window():
    cfg = CompactionConfig()
    assert cfg.result_cap(180_000) == 12_000
    assert cfg.result_cap(12_000) == 1_200
    assert cfg.recent_budget(180_000) >= 15_000
    assert cfg.recent_budget(12_000) == 3_600  # proportionate on small windows


# -- stage 1: budget ------------------------------------------------------------------------------------

async def test_budget_cuts_an_oversized_result_and_keeps_it_on_disk(tmp_path, comp):
    t = T()
    big = lines(3000, "out") + "\nE   ValueError: the end"
    uid = t.bash("make build", big, code=2)
    c = comp(window=200_000)
    out, evs = await c.prepare(SYSTEM, TOOLS, t.messages)
    assert [e.stage for e in evs] == ["budget"]
    assert evs[0].tokens_after < evs[0].tokens_before
    r = find_result(out, uid)
    assert r.content.startswith("[output truncated by compaction:")
    assert "exit code 2" in r.content and "out 00000" in r.content and "E   ValueError: the end" in r.content
    path = r.meta["full_output_path"]
    assert path in r.content and Path(path).read_text() == big
    assert c.counter.count(r.content) < 0.6 * c.config.result_cap(c.effective_window)
    assert find_result(t.messages, uid).content == big  # the caller's transcript is not mutated
    again, evs2 = await c.prepare(SYSTEM, TOOLS, out)
    assert again is out and evs2 == []


async def test_budget_per_turn_cap(tmp_path, comp):
    t = T()
    t.say("reading")
    t.messages.pop()
    from ghostline.compaction.transcript import ToolUseBlock
    uses = [ToolUseBlock(f"r{i}", "read", {"path": f"f{i}.py"}) for i in range(6)]
    t.messages.append(Message("assistant", uses))
    t.messages.append(Message("user", [ToolResultBlock(f"r{i}", lines(700, f"f{i}")) for i in range(6)]))
    c = comp(window=100_000, reserved=4_000)
    per = c.counter.count(lines(700, "f0"))
    assert per < c.config.result_cap(c.effective_window)  # each is under the per-result cap...
    assert 6 * per > c.config.turn_cap(c.effective_window)  # ...but not the turn
    out, evs = await c.prepare(SYSTEM, TOOLS, t.messages)
    assert [e.stage for e in evs] == ["budget"]
    turn_total = sum(c.counter.count(b.content) for b in out[-1].tool_results)
    assert turn_total <= c.config.turn_cap(c.effective_window)
    assert not validate_pairs(out)


# -- stage 2: snip --------------------------------------------------------------------------------------

def snip_session() -> tuple[T, dict]:
    t = T()
    ids = {}
    ids["old_read"] = t.read("src/a.py", 400)
    ids["empty"] = t.bash("true", "", code=0, text="checking")
    ids["denied"] = t.call("bash", {"command": "rm -rf /"}, "the user declined this action (dangerous)",
                           is_error=True, text="cleaning")
    ids["new_read"] = t.read("src/a.py", 400)
    return t, ids


async def test_snip_runs_only_above_its_threshold(tmp_path, comp):
    t, _ = snip_session()
    c = comp(window=200_000)
    out, evs = await c.prepare(SYSTEM, TOOLS, t.messages)
    assert out is t.messages and evs == []


async def test_snip_drops_empty_and_denied_and_stubs_superseded_reads(tmp_path, comp):
    t, ids = snip_session()
    # a window where the transcript sits between snip_at and micro_at
    c = comp(window=20_000, reserved=0)
    f = fill(c, t.messages)
    c = comp(window=int(c.effective_window * f / 0.55), reserved=0,
             config=CompactionConfig(snip_target=0.2, result_cap_fraction=1.0, turn_cap_fraction=1.0))
    assert 0.5 < fill(c, t.messages) < 0.6
    out, evs = await c.prepare(SYSTEM, TOOLS, t.messages)
    assert [e.stage for e in evs] == ["snip"]
    assert "superseded" in evs[0].detail
    assert find_result(out, ids["old_read"]).content.startswith("[superseded:")
    assert find_result(out, ids["new_read"]).content.startswith("src/a.py 00000")
    # pairs of the empty and the denied call are gone together (the assistant text stays)
    for k in ("empty", "denied"):
        assert find_result(out, ids[k]) is None and find_use(out, ids[k]) is None
    texts = [b.text for m in out for b in m.content if isinstance(b, TextBlock)]
    assert "checking" in texts and "cleaning" in texts
    assert all(a.role != b.role for a, b in zip(out, out[1:], strict=False))  # roles still alternate
    assert not validate_pairs(out)


async def test_snip_stops_once_under_target(tmp_path, comp):
    t = T()
    for _ in range(6):
        t.read("src/a.py", 300)
    c0 = comp(window=20_000, reserved=0)
    f = fill(c0, t.messages)
    c = comp(window=int(20_000 * f / 0.55), reserved=0,  # fill 0.55, snip target 0.45
             config=CompactionConfig(result_cap_fraction=1.0, turn_cap_fraction=1.0))
    out, evs = await c.prepare(SYSTEM, TOOLS, t.messages)
    stubs = [b for m in out for b in m.tool_results if b.content.startswith("[superseded")]
    assert evs and 1 <= len(stubs) < 5  # not all five superseded reads were needed
    assert fill(c, out) <= 0.45
    assert out[2].tool_results[0].content.startswith("[superseded")  # oldest first


# -- stage 3: microcompact ----------------------------------------------------------------------------

def micro_session() -> tuple[T, dict]:
    t = T("Refactor. Constraint: keep the API stable.")
    ids = {}
    todos = [{"id": "T-1", "content": "x"}]
    ids["todo"] = t.call("todo", {"todos": todos}, "todo list: T-1 pending", meta={"todos": todos})
    ids["read_edited"] = t.read("src/edited.py", 200)
    ids["old_test"] = t.bash("pytest -q", lines(400, "test") + "\nE   KeyError: 'k1'\n1 failed, 9 passed in 1s",
                             code=1, user="Also do not rename public functions.")
    ids["edit"] = t.edit("src/edited.py")
    for i in range(5):
        ids[f"build{i}"] = t.bash(f"make step{i}", lines(300, f"b{i}"))
    return t, ids


async def test_microcompact_clears_old_observations_and_keeps_what_matters(tmp_path, comp):
    t, ids = micro_session()
    c0 = comp(window=20_000, reserved=0)
    f = fill(c0, t.messages)
    cfg = CompactionConfig(snip_at=0.9, micro_at=0.9, collapse_at=0.95, hard_at=0.99, micro_target=0.6,
                           result_cap_fraction=1.0, turn_cap_fraction=1.0)
    c = comp(window=int(20_000 * f / 0.92), reserved=0, config=cfg)
    out, evs = await c.prepare(SYSTEM, TOOLS, t.messages)
    assert [e.stage for e in evs] == ["microcompact"]
    stub = find_result(out, ids["old_test"]).content
    assert stub.startswith('[cleared: bash "pytest -q" → exit 1, 402 lines; error: E   KeyError: \'k1\'; full output at ')
    path = find_result(out, ids["old_test"]).meta["full_output_path"]
    assert Path(path).read_text() == find_result(t.messages, ids["old_test"]).content
    assert "\n" not in stub
    # kept: the todo, the latest read of an edited file, user messages, the last N tool turns
    assert find_result(out, ids["todo"]).content == "todo list: T-1 pending"
    assert find_result(out, ids["read_edited"]).content.startswith("src/edited.py 00000")
    assert any("Also do not rename public functions." == b.text for m in out for b in m.content
               if isinstance(b, TextBlock))
    for i in (2, 3, 4):
        assert find_result(out, ids[f"build{i}"]).content.startswith(f"b{i} 00000")
    assert find_result(out, ids["build0"]).content.startswith("[cleared:")
    assert not validate_pairs(out)
    again, evs2 = await c.prepare(SYSTEM, TOOLS, out)
    assert again is out and evs2 == []


async def test_microcompact_clears_protected_reads_only_as_a_last_resort(tmp_path, comp):
    t, ids = micro_session()
    c0 = comp(window=20_000, reserved=0)
    f = fill(c0, t.messages)
    cfg = CompactionConfig(snip_at=0.9, micro_at=0.9, collapse_at=0.95, hard_at=0.99, micro_target=0.05,
                           result_cap_fraction=1.0, turn_cap_fraction=1.0)
    c = comp(window=int(20_000 * f / 0.92), reserved=0, config=cfg)
    out, evs = await c.prepare(SYSTEM, TOOLS, t.messages)
    assert find_result(out, ids["read_edited"]).content.startswith("[cleared: read src/edited.py")
    assert find_result(out, ids["todo"]).content == "todo list: T-1 pending"
    assert find_result(out, ids["build4"]).content.startswith("b4 00000")


async def test_microcompact_reaches_into_recent_turns_only_as_a_last_resort(tmp_path, comp):
    t = T("Task.")
    ids = [t.bash(f"make s{i}", lines(300, f"s{i}")) for i in range(4)]
    c0 = comp(window=20_000, reserved=0)
    f = fill(c0, t.messages)
    cfg = CompactionConfig(snip_at=0.9, micro_at=0.9, collapse_at=0.99, hard_at=0.99, micro_target=0.3,
                           result_cap_fraction=1.0, turn_cap_fraction=1.0, keep_tool_turns=3)
    c = comp(window=int(20_000 * f / 0.92), reserved=0, config=cfg)
    out, evs = await c.prepare(SYSTEM, TOOLS, t.messages)
    assert [e.stage for e in evs] == ["microcompact"] and "kept the last 1 tool turn(s)" in evs[0].detail
    assert [find_result(out, i).content.startswith("[cleared:") for i in ids] == [True, True, True, False]
    cfg2 = CompactionConfig(**{**cfg.__dict__, "micro_min_keep": 3})
    out2, evs2 = await comp(window=int(20_000 * f / 0.92), reserved=0, config=cfg2).prepare(
        SYSTEM, TOOLS, t.messages)
    assert [find_result(out2, i).content.startswith("[cleared:") for i in ids] == [True, False, False, False]


async def test_microcompact_not_below_its_threshold(tmp_path, comp):
    t, _ = micro_session()
    c0 = comp(window=20_000, reserved=0)
    f = fill(c0, t.messages)
    cfg = CompactionConfig(snip_at=0.9, micro_at=0.9, collapse_at=0.95, hard_at=0.99, result_cap_fraction=1.0,
                           turn_cap_fraction=1.0)
    c = comp(window=int(20_000 * f / 0.85), reserved=0, config=cfg)
    out, evs = await c.prepare(SYSTEM, TOOLS, t.messages)
    assert evs == [] and out is t.messages


async def test_calibration_moves_the_thresholds(tmp_path, comp):
    t, _ = micro_session()
    c0 = comp(window=20_000, reserved=0)
    f = fill(c0, t.messages)
    cfg = CompactionConfig(snip_at=0.9, micro_at=0.9, collapse_at=0.95, hard_at=0.99, result_cap_fraction=1.0,
                           turn_cap_fraction=1.0)
    c = comp(window=int(20_000 * f / 0.8), reserved=0, config=cfg)
    assert (await c.prepare(SYSTEM, TOOLS, t.messages))[1] == []
    c.record_usage(int(c.accountant.last_raw_estimate * 1.15))  # the provider counts 15% more
    out, evs = await c.prepare(SYSTEM, TOOLS, t.messages)
    assert [e.stage for e in evs] == ["microcompact"]


# -- stages in order ---------------------------------------------------------------------------------

async def test_stages_run_cheapest_first(tmp_path, comp):
    t = T("Build the thing. Constraint: never use sudo.")
    for i in range(30):
        t.read(f"src/m{i % 3}.py", 150)
        t.bash(f"pytest -q tests/t{i}.py", lines(200, f"t{i}") + f"\nE   AssertionError: case {i}", code=1)
    t.bash("make big", lines(6000, "huge"), code=0)
    c = comp(window=40_000, reserved=4_000, config=CompactionConfig(keep_tool_turns=30,
                                                                                  micro_min_keep=30))
    out, evs = await c.prepare(SYSTEM, TOOLS, t.messages)
    order = ["budget", "snip", "microcompact", "collapse", "auto_compact"]
    stages = [e.stage for e in evs]
    assert stages == sorted(stages, key=order.index)
    assert "budget" in stages and "collapse" in stages
    assert fill(c, out) <= c.config.hard_at
    for e in evs:
        assert e.tokens_after < e.tokens_before
    assert not validate_pairs(out)


# -- stage 4: collapse -------------------------------------------------------------------------------

class FakeModel:
    """An injected summariser: records prompts; may overflow a number of times first; may forget everything."""

    def __init__(self, reply: str = "## Goal\nPort the router.\n## Decisions (and why)\nUse WAL because speed.",
                 overflow_times: int = 0, exc: type[Exception] | None = None):
        self.reply = reply
        self.overflow_times = overflow_times
        self.exc = exc
        self.prompts: list[list[Message]] = []

    async def __call__(self, prompt: list[Message]) -> str:
        self.prompts.append(prompt)
        if self.exc is not None:
            raise self.exc("boom")
        if len(self.prompts) <= self.overflow_times:
            raise ContextLengthError("prompt is too long")
        return self.reply


class ContextLengthError(ContextOverflow):
    pass


def long_session(n: int = 40) -> T:
    t = T("Port the router to the new API. Constraint: never touch migrations/.")
    for i in range(n):
        t.read(f"src/m{i % 5}.py", 120, text=f"Looking at module {i % 5}")
        if i == 3:
            t.edit("src/legacy.py", ok=False)
        if i == 5:
            t.bash("make migrate", "fatal: migration lock held by pid 4242", code=2,
                   user="Also keep the public API stable.")
        t.edit(f"src/m{i % 5}.py")
        t.bash("pytest -q", lines(150, f"run{i}") + "\n2 failed, 8 passed in 1.0s", code=1)
    return t


def collapse_cfg(**kw) -> CompactionConfig:
    # long_session() is ~90k tokens: in a 200k window only collapse (at 30%) triggers
    base = dict(snip_at=0.9, micro_at=0.9, collapse_at=0.3, hard_at=0.95, recent_min_tokens=2000,
                recent_max_fraction=0.05)
    base.update(kw)
    return CompactionConfig(**base)


async def test_collapse_merges_model_summary_with_the_ledger(tmp_path, comp):
    t = long_session()
    model = FakeModel()
    c = comp(window=200_000, reserved=8_000, config=collapse_cfg(), summarize=model)
    out, evs = await c.prepare(SYSTEM, TOOLS, t.messages)
    assert [e.stage for e in evs] == ["collapse"]
    assert len(model.prompts) == 1
    prompt = model.prompts[0][0].text
    for section in ("Goal", "User messages", "Constraints", "Decisions", "Files touched", "Errors and fixes",
                    "Test status", "Todo", "Current step", "Next step"):
        assert f"## {section}" in prompt
    first = out[0]
    assert first.role == "user" and isinstance(first.content[-1], SummaryBlock)
    summary = first.content[-1].text
    assert "Use WAL because speed." in summary  # the model's part
    assert "Constraint: never touch migrations/." in summary and "keep the public API stable" in summary
    assert "fatal: migration lock held by pid 4242" in summary and "edit src/legacy.py" in summary
    assert "src/m4.py" in summary  # files modified, from the ledger
    assert out[1].role == "assistant"
    assert out[1:] == t.messages[len(t.messages) - len(out) + 1:]  # the recent window is verbatim
    recent = c.counter.messages_tokens(out[1:])
    assert recent <= c.config.recent_budget(c.effective_window)
    assert not validate_pairs(out)
    assert (tmp_path / "s" / "ledger.json").exists()


async def test_a_forgetful_summariser_cannot_lose_facts(tmp_path, comp):
    t = long_session()
    c = comp(window=200_000, reserved=8_000, config=collapse_cfg(), summarize=FakeModel(reply="Nothing."))
    out, _ = await c.prepare(SYSTEM, TOOLS, t.messages)
    summary = out[0].content[-1].text
    assert "never touch migrations/" in summary and "pid 4242" in summary and "src/legacy.py" in summary


async def test_collapse_without_summariser_is_deterministic(tmp_path, comp):
    t = long_session()
    outs = []
    for i in range(2):
        c = comp(window=200_000, reserved=8_000, config=collapse_cfg(), store=tmp_path / f"s{i}")
        out, evs = await c.prepare(SYSTEM, TOOLS, t.messages)
        assert [e.stage for e in evs] == ["collapse"] and "deterministic" in evs[0].detail
        outs.append(dump(out))
    norm = [str(o).replace(str(tmp_path / "s0"), "S").replace(str(tmp_path / "s1"), "S") for o in outs]
    assert norm[0] == norm[1]
    assert "## Goal" in outs[0][0]["content"][-1]["text"]


async def test_summary_overflow_drops_oldest_and_retries(tmp_path, comp):
    t = long_session()
    model = FakeModel(overflow_times=2)
    c = comp(window=200_000, reserved=8_000, config=collapse_cfg(), summarize=model)
    out, evs = await c.prepare(SYSTEM, TOOLS, t.messages)
    assert len(model.prompts) == 3
    sizes = [c.counter.messages_tokens(p) for p in model.prompts]
    assert sizes[0] > sizes[1] > sizes[2]
    assert "Use WAL because speed." in out[0].content[-1].text


async def test_summary_overflow_gives_up_after_three(tmp_path, comp):
    t = long_session()
    model = FakeModel(overflow_times=99)
    c = comp(window=200_000, reserved=8_000, config=collapse_cfg(), summarize=model)
    with pytest.raises(CompactionFailed, match="overflowed the context window 3 times"):
        await c.prepare(SYSTEM, TOOLS, t.messages)
    assert len(model.prompts) == 3


async def test_caller_flagged_overflow(tmp_path, comp):
    model = FakeModel(exc=RuntimeError)
    c = comp(window=200_000, reserved=8_000, config=collapse_cfg(), summarize=model,
             is_overflow=lambda e: isinstance(e, RuntimeError))
    with pytest.raises(CompactionFailed):
        await c.prepare(SYSTEM, TOOLS, long_session().messages)


async def test_an_overflow_is_known_by_its_class_not_its_name(tmp_path, comp):
    lookalike = type("ContextLengthError", (Exception,), {})  # not a ContextOverflow
    model = FakeModel(exc=lookalike)
    c = comp(window=200_000, reserved=8_000, config=collapse_cfg(), summarize=model)
    out, evs = await c.prepare(SYSTEM, TOOLS, long_session().messages)
    assert len(model.prompts) == 1 and "summariser failed: ContextLengthError" in evs[-1].detail


async def test_other_summariser_errors_fall_back_to_the_ledger(tmp_path, comp):
    model = FakeModel(exc=OSError)
    c = comp(window=200_000, reserved=8_000, config=collapse_cfg(), summarize=model)
    out, evs = await c.prepare(SYSTEM, TOOLS, long_session().messages)
    assert "summariser failed: OSError" in evs[-1].detail
    assert "never touch migrations/" in out[0].content[-1].text


async def test_instructions_reinjected_unless_in_system(tmp_path, comp):
    agent_md = "# AGENT.md\nAlways run make lint. MARKER-991"
    t = long_session()
    t.messages[0] = Message("user", [TextBlock(agent_md), TextBlock(t.messages[0].text)])
    c = comp(window=200_000, reserved=8_000, config=collapse_cfg(), instructions=agent_md)
    out, _ = await c.prepare(SYSTEM, TOOLS, t.messages)
    assert out[0].content[0] == TextBlock(agent_md)
    assert "MARKER-991" not in out[0].content[-1].text.split("User messages")[1]  # not a "user message"
    c2 = comp(window=200_000, reserved=8_000, config=collapse_cfg(), instructions=agent_md)
    out2, _ = await c2.prepare(SYSTEM + "\n" + agent_md, TOOLS, long_session().messages)
    assert not any("MARKER-991" in b.text for b in out2[0].content)


async def test_recollapse_carries_the_previous_summary(tmp_path, comp):
    t = long_session()
    model = FakeModel()
    c = comp(window=200_000, reserved=8_000, config=collapse_cfg(), summarize=model)
    out, _ = await c.prepare(SYSTEM, TOOLS, t.messages)
    more = T()
    more.messages = list(out)
    more.n = 500
    for i in range(25):
        more.bash(f"pytest -q -k c{i}", lines(150, f"again{i}"), code=0)
    out2, evs = await c.prepare(SYSTEM, TOOLS, more.messages)
    assert [e.stage for e in evs] == ["collapse"]
    assert "[previous summary]" in model.prompts[-1][0].text
    assert "never touch migrations/" in out2[0].content[-1].text
    assert sum(isinstance(b, SummaryBlock) for m in out2 for b in m.content) == 1


async def test_compact_now_with_focus(tmp_path, comp):
    t = long_session(8)
    model = FakeModel()
    c = comp(window=200_000, reserved=4_000, config=collapse_cfg(recent_min_tokens=500,
                                                                           recent_max_fraction=0.01),
             summarize=model)
    out, evs = await c.compact_now(SYSTEM, TOOLS, t.messages, focus="the router API")
    assert [e.stage for e in evs] == ["collapse"] and "focus: the router API" in evs[0].detail
    assert "focus the summary on: the router API" in model.prompts[0][0].text
    assert len(out) < len(t.messages)


# -- stage 5: auto-compact -----------------------------------------------------------------------------

async def test_on_context_error_adopts_the_window_and_shrinks(tmp_path, comp):
    t = long_session()
    c = comp(window=200_000, reserved=8_000, summarize=FakeModel())
    out, evs = await c.prepare(SYSTEM, TOOLS, t.messages)
    before = c.estimate(SYSTEM, TOOLS, out)
    out2, evs2 = await c.on_context_error(SYSTEM, TOOLS, out, limit=30_000)
    assert c.window == 30_000
    assert evs2 and evs2[-1].stage == "auto_compact" and "adopted window 30000" in evs2[0].detail
    after = c.estimate(SYSTEM, TOOLS, out2)
    assert after < before and after <= c.config.hard_at * c.effective_window
    assert not validate_pairs(out2)


async def test_on_context_error_is_bounded(tmp_path, comp):
    t = long_session()
    c = comp(window=60_000, reserved=4_000, summarize=FakeModel())
    msgs = t.messages
    sizes = []
    for _ in range(3):
        msgs, evs = await c.on_context_error(SYSTEM, TOOLS, msgs, None)
        assert evs
        sizes.append(c.estimate(SYSTEM, TOOLS, msgs))
    assert sizes[0] >= sizes[1] >= sizes[2]
    with pytest.raises(CompactionFailed, match="start a new session"):
        await c.on_context_error(SYSTEM, TOOLS, msgs, None)
    c.record_usage(1000)  # a request went through: the count starts again
    await c.on_context_error(SYSTEM, TOOLS, msgs, None)


async def test_unknown_limit_infers_a_smaller_window(tmp_path, comp):
    t = long_session(10)
    c = comp(window=200_000, reserved=4_000)
    est = c.estimate(SYSTEM, TOOLS, t.messages)
    await c.on_context_error(SYSTEM, TOOLS, t.messages, None)
    assert c.window < est + 4_000


async def test_proactive_auto_compact_above_hard_threshold(tmp_path, comp):
    # the last tool turn alone is above the hard threshold (per-result and per-turn caps switched off), so
    # collapse cannot help: stage 5 must clear even the newest observations (saved to disk, path in the stub)
    from ghostline.compaction.transcript import ToolUseBlock
    t = T("Task.")
    t.bash("ls", "a\nb")
    t.messages.append(Message("assistant", [ToolUseBlock(f"big{i}", "bash", {"command": f"cat p{i}"})
                                            for i in range(3)]))
    t.messages.append(Message("user", [ToolResultBlock(f"big{i}", lines(350, f"p{i}"), False, {"exit_code": 0})
                                       for i in range(3)]))
    cfg = CompactionConfig(result_cap_fraction=1.0, turn_cap_fraction=1.0)
    c0 = comp(window=20_000, reserved=0)
    f = fill(c0, t.messages)
    c = comp(window=int(20_000 * f / 0.95), reserved=0, config=cfg)
    out, evs = await c.prepare(SYSTEM, TOOLS, t.messages)
    assert "auto_compact" in [e.stage for e in evs]
    assert fill(c, out) <= c.config.hard_at
    stub = find_result(out, "big0")
    assert stub.content.startswith("[cleared:") and Path(stub.meta["full_output_path"]).exists()
    assert not validate_pairs(out)
