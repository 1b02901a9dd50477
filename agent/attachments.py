"""Images a person attaches to a message (`agent run --image FILE`, `@shot.png` in the TUI): checked against what the
model takes (the model table's image limits) and kept beside the session, so the message carries their paths.

Blocking file I/O: call it off the UI thread.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from ghostline.compaction.transcript import ImageBlock
from ghostline.tools.images import ImageError, ImageLimits, keep_image, load_image


def attach_images(paths: Sequence[Path], limits: ImageLimits | None, keep_in: Path | None, *, model: str,
                  cwd: Path) -> tuple[list[ImageBlock], list[str]]:
    """(the image blocks, one line per image that cannot be attached and why)."""
    if not paths:
        return [], []
    if limits is None:
        names = ", ".join(_shown(p, cwd) for p in paths)
        return [], [f"{names}: {model} does not take images (set `images = true` for it under "
                    f'[models."{model}"] in config if it does)']
    blocks: list[ImageBlock] = []
    problems: list[str] = []
    for path in paths:
        name = _shown(path, cwd)
        try:
            image = load_image(cwd / path, limits, name)
        except ImageError as exc:
            problems.append(str(exc))
            continue
        blocks.append(keep_image(image, keep_in, name))
    return blocks, problems


def _shown(path: Path, cwd: Path) -> str:
    full = os.path.abspath(cwd / path)
    rel = os.path.relpath(full, cwd)
    return full if rel.startswith("..") else rel
