"""Ghostline: every package is imported as `ghostline.<package>` (`ghostline.agent`, `ghostline.tools`, ...).

Installed, the packages live inside this one, so none of their short names (`agent`, `daemon`, `index`, ...) can
clash with another distribution's top-level module. In a checkout they stay in the repository's top-level folders,
the layout `DESIGN.md` fixes; this package's search path reaches them there.
"""

from pathlib import Path

_checkout = Path(__file__).resolve().parent.parent
if (_checkout / "pyproject.toml").is_file() and (_checkout / "agent" / "__init__.py").is_file():
    __path__.append(str(_checkout))  # noqa: F821 - a package's own search path
