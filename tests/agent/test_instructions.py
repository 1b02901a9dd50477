from ghostline.agent.instructions import MAX_INSTRUCTIONS_BYTES, load_instructions, system_prompt


def test_root_first_then_down_to_cwd_and_user_first(tmp_path):
    root = tmp_path / "repo"
    sub = root / "pkg" / "mod"
    sub.mkdir(parents=True)
    user = tmp_path / "user"
    user.mkdir()
    (user / "AGENT.md").write_text("USER RULE")
    (root / "AGENT.md").write_text("ROOT RULE")
    (root / "pkg" / "AGENTS.md").write_text("PKG RULE")
    (sub / "AGENT.md").write_text("MOD RULE")
    (tmp_path / "AGENT.md").write_text("OUTSIDE THE REPO")
    text = load_instructions(root, sub, user)
    order = [text.index(s) for s in ("USER RULE", "ROOT RULE", "PKG RULE", "MOD RULE")]
    assert order == sorted(order)
    assert "OUTSIDE THE REPO" not in text


def test_instructions_are_capped(tmp_path):
    (tmp_path / "AGENT.md").write_text("x" * (MAX_INSTRUCTIONS_BYTES * 2))
    text = load_instructions(tmp_path, tmp_path, None)
    assert len(text.encode()) <= MAX_INSTRUCTIONS_BYTES + 100
    assert "truncated" in text


def test_system_prompt_is_byte_stable(tmp_path):
    (tmp_path / "AGENT.md").write_text("Use tabs.")
    kw = dict(root=tmp_path, cwd=tmp_path, instructions=load_instructions(tmp_path, tmp_path, None),
              sandbox="workspace-write", is_git=True)
    assert system_prompt(**kw) == system_prompt(**kw)
    assert "Use tabs." in system_prompt(**kw)
