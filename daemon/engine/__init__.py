"""The completion engine: FIM prompts, the in-process model with KV prefix reuse, the remote backend, and the
classical fallback. Nothing here imports torch/transformers at module import time."""

from pathlib import Path

from ghostline.daemon.engine.classical import ClassicalCompleter
from ghostline.daemon.engine.fim import FORMATS, ExtraChunk, FimFormat, detect_format, get_format
from ghostline.daemon.engine.kvcache import PrefixCache
from ghostline.daemon.engine.service import Engine
from ghostline.daemon.engine.types import Completion, CompletionRequest, CompletionResult, Job, TokenEvent

__all__ = [
    "FORMATS", "ClassicalCompleter", "Completion", "CompletionRequest", "CompletionResult", "Engine", "ExtraChunk",
    "FimFormat", "Job", "PrefixCache", "TokenEvent", "detect_format", "get_format", "load_engine",
]


def load_engine(
    model: str | None = None,
    *,
    backend_url: str | None = None,
    fim_format: str | None = None,
    api_key: str = "",
    remote_model: str = "",
    device: str | None = None,
    kv_reuse: bool = True,
    cache_mb: int = 1024,
    fast_path: bool | None = None,
    deadline_ms: float = 0.0,
    repo: str | None = None,
    repo_context: bool = True,
) -> Engine:
    """Build an engine: a local model from `model` (a checkpoint directory), or a remote OpenAI-compatible server
    at `backend_url`, or neither (classical completions only). With `repo`, the classical completer mines it and
    (with a model, unless repo_context=False) its index supplies snippets for the prompts. Raises ModelLoadError /
    ValueError with one-line messages for user errors."""
    classical = ClassicalCompleter()
    backend = None
    if backend_url:
        from ghostline.daemon.engine.remote import RemoteBackend

        backend = RemoteBackend(backend_url, model=remote_model or (model or ""), fim_format=fim_format or "qwen",
                                api_key=api_key)
    elif model:
        from ghostline.daemon.engine.local import LocalBackend, LocalModel

        lm = LocalModel.load(model, device=device, fim_format=fim_format)
        backend = LocalBackend(lm, cache=PrefixCache(max_bytes=cache_mb * 2**20), kv_reuse=kv_reuse,
                               fast_path=fast_path)  # warmed up by engine.start() -> backend.start()
    context = None
    if repo and backend is not None and repo_context:
        from ghostline.daemon.context import RepoContext
        from ghostline.index import IndexOpenError

        # repository snippets in the prompt (a model needs them; classical completions mine the repo instead)
        if not Path(repo).expanduser().is_dir():
            raise ValueError(f"--repo {repo}: not a directory")
        try:
            context = RepoContext.open(Path(repo).expanduser())
        except IndexOpenError as e:
            raise ValueError(f"--repo {repo}: {e}") from e
    engine = Engine(backend, classical, default_deadline_ms=deadline_ms, context=context)
    if repo:
        import threading

        threading.Thread(target=classical.index_repository, args=(repo,), daemon=True,
                         name="ghostline-classical-index").start()
    return engine
