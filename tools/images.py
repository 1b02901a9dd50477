"""Images for the model: the formats the APIs take, checks against a model's limits, and keeping the bytes beside the
session so the transcript carries a path, not base64.

Every way an image reaches the model goes through here: `agent run --image`, `@image.png` in a message, `read` on
an image file (and the providers read the kept files back). One check, one clear message: the format must be PNG,
JPEG, GIF or WebP (what the Anthropic and OpenAI APIs accept), the size within the model's limits
(`ImageLimits`, from the model table).
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass
from pathlib import Path

from ghostline.compaction.transcript import ImageBlock

# Format name (as sniffed from the bytes) -> media type, and the file extensions that name them.
MEDIA_TYPES = {"PNG": "image/png", "JPEG": "image/jpeg", "GIF": "image/gif", "WebP": "image/webp"}
IMAGE_EXTS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".gif": "GIF", ".webp": "WebP"}
_EXT_OF = {"image/png": ".png", "image/jpeg": ".jpg", "image/gif": ".gif", "image/webp": ".webp"}
_HEADER_BYTES = 256 * 1024  # enough of a file to find a JPEG's frame header behind its metadata


class ImageError(ValueError):
    """An image the model cannot take: the message is one line saying why."""


@dataclass(frozen=True)
class ImageLimits:
    """What one model takes per image: bytes (raw, before base64) and pixels per side (0: no limit)."""

    max_bytes: int
    max_side: int = 0


@dataclass(frozen=True)
class Image:
    """Checked image bytes."""

    data: bytes
    media_type: str
    width: int | None = None
    height: int | None = None

    def describe(self) -> str:
        """`PNG 800x600, 45.1 KiB`"""
        fmt = next(f for f, t in MEDIA_TYPES.items() if t == self.media_type)
        dims = f" {self.width}x{self.height}" if self.width and self.height else ""
        return f"{fmt}{dims}, {size_text(len(self.data))}"


def sniff_format(data: bytes) -> str | None:
    """PNG, JPEG, GIF or WebP from the first bytes; None for anything else."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if data.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "GIF"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WebP"
    return None


def check_image(data: bytes, name: str, limits: ImageLimits) -> Image:
    """The image in `data`, or ImageError saying why the model cannot take it."""
    fmt = sniff_format(data)
    if fmt is None:
        raise ImageError(f"{name} is not a PNG, JPEG, GIF or WebP image (the formats models take)")
    if len(data) > limits.max_bytes:
        raise ImageError(f"{name} is {size_text(len(data))}; this model takes images up to "
                         f"{size_text(limits.max_bytes)} (make it smaller, e.g. a cropped or JPEG screenshot)")
    dims = image_size(data, fmt)
    if dims and limits.max_side and max(dims) > limits.max_side:
        raise ImageError(f"{name} is {dims[0]}x{dims[1]} pixels; this model takes at most {limits.max_side} "
                         f"pixels a side")
    return Image(data, MEDIA_TYPES[fmt], *(dims or (None, None)))


def load_image(path: Path, limits: ImageLimits, name: str | None = None) -> Image:
    """The image file at `path`, checked (ImageError when it cannot be read or taken)."""
    shown = name or str(path)
    try:
        size = path.stat().st_size
        if size > limits.max_bytes:  # said before reading a huge file
            raise ImageError(f"{shown} is {size_text(size)}; this model takes images up to "
                             f"{size_text(limits.max_bytes)} (make it smaller, e.g. a cropped or JPEG screenshot)")
        data = path.read_bytes()
    except OSError as exc:
        raise ImageError(f"cannot read {shown}: {exc.strerror or exc}") from None
    return check_image(data, shown, limits)


def keep_image(image: Image, directory: Path | None, name: str) -> ImageBlock:
    """The block that shows `image` to the model: its bytes kept in `directory` (beside the session, named by their
    hash, so the session log holds only the path), or inline when there is nowhere to keep them."""
    block = ImageBlock(image.media_type, name=name, width=image.width, height=image.height)
    if directory is not None:
        path = directory / f"image-{hashlib.sha256(image.data).hexdigest()[:16]}{_EXT_OF[image.media_type]}"
        try:
            directory.mkdir(parents=True, exist_ok=True)
            if not path.exists():
                path.write_bytes(image.data)
            block.path = str(path)
            return block
        except OSError:
            pass
    import base64

    block.data = base64.b64encode(image.data).decode("ascii")
    return block


def image_entry(block: ImageBlock) -> dict[str, object]:
    """A tool result's `meta["images"]` entry for `block` (the shape MCP results use)."""
    entry: dict[str, object] = {"kind": "image", "mime_type": block.media_type, "name": block.name}
    if block.path:
        entry["path"] = block.path
    else:
        entry["data"] = block.data
    if block.width and block.height:
        entry["width"], entry["height"] = block.width, block.height
    return entry


def blocks_from_meta(meta: dict[str, object]) -> list[ImageBlock]:
    """The image blocks a tool result's `meta["images"]` entries describe (audio and unknown kinds left out)."""
    entries = meta.get("images")
    out: list[ImageBlock] = []
    for e in entries if isinstance(entries, list) else []:
        if not isinstance(e, dict) or e.get("kind", "image") != "image" or e.get("mime_type") not in _EXT_OF:
            continue
        if not (e.get("path") or e.get("data")):
            continue
        out.append(ImageBlock(str(e["mime_type"]), path=str(e.get("path") or ""), data=str(e.get("data") or ""),
                              name=str(e.get("name") or ""), width=_int(e.get("width")), height=_int(e.get("height"))))
    return out


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def image_size(data: bytes, fmt: str) -> tuple[int, int] | None:
    """Width and height from an image header (PNG, GIF, JPEG, WebP), None when they cannot be read."""
    try:
        if fmt == "PNG" and data[12:16] == b"IHDR":
            w, h = struct.unpack(">II", data[16:24])
            return w, h
        if fmt == "GIF":
            w, h = struct.unpack("<HH", data[6:10])
            return w, h
        if fmt == "JPEG":
            return _jpeg_size(data)
        if fmt == "WebP":
            return _webp_size(data)
    except (struct.error, IndexError):
        return None
    return None


def _webp_size(data: bytes) -> tuple[int, int] | None:
    chunk = data[12:16]
    if chunk == b"VP8 ":
        w, h = struct.unpack("<HH", data[26:30])
        return w & 0x3FFF, h & 0x3FFF
    if chunk == b"VP8L":
        b = data[21:25]
        w = 1 + (((b[1] & 0x3F) << 8) | b[0])
        h = 1 + (((b[3] & 0x0F) << 10) | (b[2] << 2) | ((b[1] & 0xC0) >> 6))
        return w, h
    if chunk == b"VP8X":
        return 1 + int.from_bytes(data[24:27], "little"), 1 + int.from_bytes(data[27:30], "little")
    return None


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    i, n = 2, len(data)
    while i + 9 < n:
        if data[i] != 0xFF:
            i += 1
            continue
        marker = data[i + 1]
        if marker == 0xFF:
            i += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            i += 2
            continue
        seg_len = struct.unpack(">H", data[i + 2 : i + 4])[0]
        if marker in (0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF):
            h, w = struct.unpack(">HH", data[i + 5 : i + 9])
            return w, h
        i += 2 + seg_len
    return None


def header(path: Path) -> bytes:
    """The first bytes of a file: enough to tell its format and size."""
    with open(path, "rb") as fh:
        return fh.read(_HEADER_BYTES)


def size_text(n: int) -> str:
    if n < 1024:
        return f"{n} bytes"
    if n < 1048576:
        return f"{n / 1024:.1f} KiB"
    return f"{n / 1048576:.1f} MiB"
