"""The token encoding's tables, kept between runs: loading cl100k from its .tiktoken file finds tiktoken's
plugins and parses 100k base64 lines in Python (~90 ms of CPU at every start); a marshal copy of the parsed
tables loads in ~15 ms. The copy lives in the data dir (`cache/tiktoken-<name>.marshal`) and holds the stamp of
what it was made from — tiktoken's version and every file of its `tiktoken_ext` plugins, by size and mtime — so
an upgrade of either makes a new one. Anything unexpected (a missing or torn file, another tiktoken) means no
copy: the encoding loads as tiktoken loads it.
"""

from __future__ import annotations

import marshal
import os
from pathlib import Path
from typing import Any

from ghostline.dirs import data_dir
from ghostline.files import replace_file

FORMAT = 1


def _path(name: str) -> Path:
    return data_dir() / "cache" / f"tiktoken-{name}.marshal"


def _stamp(tiktoken: Any) -> list[Any]:
    """What the tables come from: tiktoken's version, and the plugin files that name and build encodings."""
    files = []
    # beside tiktoken, where pip puts the plugins (finding the namespace package's every part costs ~30 ms)
    top = os.path.join(os.path.dirname(os.path.dirname(tiktoken.__file__)), "tiktoken_ext")
    for root, dirs, names in os.walk(top):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for n in sorted(names):
            st = os.stat(os.path.join(root, n))
            files.append([os.path.join(root, n), st.st_size, st.st_mtime_ns])
    return [FORMAT, getattr(tiktoken, "__version__", ""), files]


def load(name: str) -> Any | None:
    """Encoding `name` from its kept tables, when they are there and still match; else None."""
    import tiktoken

    try:
        with open(_path(name), "rb") as f:
            kept = marshal.loads(f.read())  # (marshal.load reads a file in small pieces: five times slower)
        if kept["stamp"] != _stamp(tiktoken):
            return None
        return tiktoken.Encoding(**kept["tables"])
    except (OSError, EOFError, ValueError, TypeError, KeyError):
        return None


def store(name: str, encoding: Any) -> None:
    """Keep `encoding`'s tables for the next run (quietly nothing when they cannot be read or written)."""
    import tiktoken

    try:
        tables = {"name": encoding.name, "pat_str": encoding._pat_str,  # noqa: SLF001 - tiktoken keeps them so
                  "mergeable_ranks": encoding._mergeable_ranks, "special_tokens": encoding._special_tokens}  # noqa: SLF001
        data = marshal.dumps({"stamp": _stamp(tiktoken), "tables": tables})
        target = _path(name)
        target.parent.mkdir(parents=True, exist_ok=True)
        replace_file(target, [data], 0o600)
    except (AttributeError, OSError, ValueError):
        pass
