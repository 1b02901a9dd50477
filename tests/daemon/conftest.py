"""Shared fixtures: one tiny random-weight Llama checkpoint with a real BPE tokenizer per test session, saved
with save_pretrained and loaded through the daemon's real loading code."""

from __future__ import annotations

import warnings

import pytest


@pytest.fixture(scope="session")
def tiny_ckpt(tmp_path_factory: pytest.TempPathFactory):
    from tests.support.randomckpt import build_checkpoint

    return build_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny-coder", "tiny", vocab_size=1024,
                            max_positions=1024)


@pytest.fixture(scope="session")
def tiny_lm(tiny_ckpt):
    import torch

    from ghostline.daemon.engine.local import LocalModel

    torch.set_num_threads(1)
    return LocalModel.load(tiny_ckpt, device="cpu", fim_format="starcoder")


@pytest.fixture
def backend(tiny_lm):
    from ghostline.daemon.engine.kvcache import PrefixCache
    from ghostline.daemon.engine.local import LocalBackend

    be = LocalBackend(tiny_lm, cache=PrefixCache(max_bytes=64 * 2**20), fast_path=False, prefill_chunk=64)
    be.runner.prefill_ms_per_token = 0.1
    be.start(warmup=False)
    yield be
    be.stop()


@pytest.fixture(autouse=True)
def _isolated_dirs(tmp_path, monkeypatch):
    monkeypatch.setenv("GHOSTLINE_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("GHOSTLINE_STATE_DIR", str(tmp_path / "state"))


@pytest.fixture
def daemon_cli():
    """A typer app with just the `agent daemon ...` commands (agent/commands/daemon.py)."""
    import typer

    from ghostline.agent.commands.daemon import register

    a = typer.Typer()

    @a.callback()
    def _root() -> None:
        pass

    register(a)
    return a


@pytest.fixture(autouse=True)
def _no_future_warnings():
    """transformers (and torch) announce what they will remove with a FutureWarning: a daemon test fails on one,
    so the next deprecation is caught here and not by users. Recorded from every thread (the model worker's
    too), whatever pytest's own warning settings are."""
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always", FutureWarning)
        yield
    future = [f"{w.filename}:{w.lineno}: {w.message}" for w in seen if issubclass(w.category, FutureWarning)]
    assert not future, "FutureWarning (a deprecated API is in use):\n" + "\n".join(future)
