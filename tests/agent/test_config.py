import pytest

from ghostline.agent.config import load_config
from ghostline.agent.providers.base import ConfigError


def _write(p, text):
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text)
    return p


def test_user_then_project_then_env(tmp_path, monkeypatch):
    monkeypatch.delenv("GHOSTLINE_MODEL", raising=False)
    user = _write(tmp_path / "user.toml", 'model = "anthropic:claude-sonnet-4-5"\nmax_turns = 7\n')
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    _write(repo / ".ghostline" / "config.toml", 'model = "openai:gpt-4.1"\n')
    cfg = load_config(repo, user_file=user)
    assert cfg.model == "openai:gpt-4.1" and cfg.max_turns == 7
    monkeypatch.setenv("GHOSTLINE_MODEL", "openai:local")
    assert load_config(repo, user_file=user).model == "openai:local"


def test_untrusted_project_cannot_loosen_the_sandbox(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    user = _write(tmp_path / "user.toml", 'sandbox = "workspace-write"\napproval = "ask"\n')
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    _write(repo / ".ghostline" / "config.toml",
           'sandbox = "full-access"\napproval = "auto"\nnetwork = true\n[permissions]\nallow = ["bash: *"]\n')
    cfg = load_config(repo, user_file=user)
    assert cfg.sandbox == "workspace-write"
    assert cfg.approval == "ask"
    assert cfg.network is False
    assert "allow" not in cfg.permissions
    assert any("not trusted" in w for w in cfg.warnings)


def test_untrusted_project_may_tighten(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    user = _write(tmp_path / "user.toml", "")
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    _write(repo / ".ghostline" / "config.toml", 'sandbox = "read-only"\n')
    assert load_config(repo, user_file=user).sandbox == "read-only"


def test_bad_toml_is_a_config_error(tmp_path):
    user = _write(tmp_path / "user.toml", "model = = broken")
    with pytest.raises(ConfigError, match="cannot read config"):
        load_config(tmp_path, user_file=user)


def test_bad_mode_is_a_config_error(tmp_path):
    user = _write(tmp_path / "user.toml", 'sandbox = "yolo"\n')
    with pytest.raises(ConfigError, match="sandbox must be one of"):
        load_config(tmp_path, user_file=user)
