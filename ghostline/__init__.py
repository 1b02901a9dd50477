"""Ghostline: every package is imported as `ghostline.<package>` (`ghostline.agent`, `ghostline.tools`, ...).

Installed, the packages live inside this one, so none of their short names (`agent`, `daemon`, `index`, ...) can
clash with another distribution's top-level module. In a checkout they stay in the repository's top-level folders,
the layout `DESIGN.md` fixes; this package's search path reaches them there.
"""

import os.path  # not pathlib: this runs for `agent --version` too (pathlib and what it imports: ~4 ms)

_checkout = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))
if os.path.isfile(os.path.join(_checkout, "pyproject.toml")) and os.path.isfile(
        os.path.join(_checkout, "agent", "__init__.py")):
    __path__.append(_checkout)  # noqa: F821 - a package's own search path
