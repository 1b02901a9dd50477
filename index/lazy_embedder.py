"""The embedding model as one index uses it: loaded when first needed, or never, and why not."""

from __future__ import annotations

import logging
import threading
from typing import Literal

from ghostline.index.embed import Embedder, EmbeddingsUnavailable, load_embedder, loaded_embedder
from ghostline.index.store import IndexStore

log = logging.getLogger("ghostline.index")

EmbeddingsMode = Literal["auto", "on", "off"]
_notice_lock = threading.Lock()
_noticed: set[str] = set()


def _notice_once(key: str, message: str) -> bool:
    with _notice_lock:
        if key in _noticed:
            return False
        _noticed.add(key)
    log.info("%s", message)
    return True


class LazyEmbedder:
    """mode "auto" loads the model when first needed and falls back to lexical-only search if it cannot;
    "on" requires it (EmbeddingsUnavailable otherwise); "off" never loads it. Loading it sets up the store's
    vectors."""

    def __init__(self, mode: EmbeddingsMode, store: IndexStore, label: str) -> None:
        self.mode: EmbeddingsMode = mode
        self.model: Embedder | None = None
        self.error: str | None = None  # why there is no model
        #: one line to show the user once when dense search is unavailable (None otherwise)
        self.notice: str | None = None
        self._store = store
        self._label = label  # the repository: each says its notice once per process
        if not store.vec_ok and mode != "off":
            self.disable("sqlite-vec could not be loaded (this Python's sqlite3 cannot load extensions)")

    @property
    def enabled(self) -> bool:
        return self.mode != "off" and self.error is None and self._store.vec_ok

    def disable(self, reason: str) -> None:
        self.error = reason
        self.notice = f"semantic search unavailable ({reason}); using lexical search only"
        _notice_once(self._label + reason, self.notice)

    def get(self, required: bool = False) -> Embedder | None:
        """The model, loaded if the mode allows; None when there is none (raises instead when required)."""
        if self.model is not None:
            return self.model
        if self.mode == "off":
            return None
        if self.error is not None:
            if required:
                raise EmbeddingsUnavailable(self.error)
            return None
        try:
            emb = load_embedder()
        except EmbeddingsUnavailable as exc:
            self.disable(str(exc))
            if required:
                raise
            return None
        return self._adopt(emb)

    def loaded(self) -> Embedder | None:
        """The model if this process has loaded it already; never loads it (for the completion path)."""
        if self.model is not None or not self.enabled:
            return self.model
        emb = loaded_embedder()
        if emb is None:
            return None
        try:
            return self._adopt(emb)
        except Exception:  # noqa: BLE001 - the vector table could not be set up now: lexical this time
            return None

    def _adopt(self, emb: Embedder) -> Embedder:
        with self._store.lock:
            self._store.setup_vectors(f"{emb.name}:{emb.dim}", emb.dim)
            self.model = emb
        return emb

    def describe(self) -> str:
        """"on (model)", "off", "unavailable: reason" or "auto (model not loaded yet)"."""
        if self.mode == "off":
            return "off"
        if self.error is not None:
            return f"unavailable: {self.error}"
        if self.model is not None:
            return f"on ({self.model.name})"
        return f"{self.mode} (model not loaded yet)"
