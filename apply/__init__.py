"""Edit formats (parse) and the applier ladder (apply), with a tree-sitter syntax guard.

Public surface:

* :func:`apply_edit` — one ``old_string -> new_string`` edit (the ``edit`` tool).
* :func:`edit_text` — the same edit on a text rather than a file (an editor's buffer), returning the new text.
* :func:`write_file` — whole-file write (the ``write`` tool), atomic, keeps mode/encoding/BOM/line endings.
* :func:`apply_text` — edits written by a model as text (SEARCH/REPLACE blocks, unified diffs, Codex patches,
  whole files, edit JSON) applied under a root directory; :func:`parse` gives the parsed operations and
  :func:`apply_ops` applies them (a caller that checks the paths in between: the ``apply_patch`` tool).  The
  caller may pass a listing of the project's files to resolve near-miss file names (``apply`` walks nothing).
* :func:`check_rewrite`, :class:`RewriteRule`, :data:`REWRITE_REQUEST` — the whole-file-rewrite fallback
  after repeated failures on one file.
* :func:`prefetch_syntax` — parse a file's text ahead of an edit (e.g. when it is read) so the syntax guard
  of the edit is incremental.

Multi-block semantics are documented in :mod:`apply.core`.  This module only re-exports; the modules import
each other in one direction (see apply/README.md) and never this package.
"""

from ghostline.apply.core import (
    ApplyResult,
    Block,
    apply_blocks,
    apply_edit,
    delete_file,
    edit_text,
    write_file,
)
from ghostline.apply.diff import make_diff
from ghostline.apply.formats import FORMATS, FileOp, ParseError, detect, parse
from ghostline.apply.rewrite import REWRITE_REQUEST, RewriteRule, check_rewrite
from ghostline.apply.syntax import prefetch as prefetch_syntax
from ghostline.apply.text import apply_ops, apply_text

__all__ = [
    "FORMATS",
    "REWRITE_REQUEST",
    "ApplyResult",
    "Block",
    "RewriteRule",
    "FileOp",
    "ParseError",
    "apply_blocks",
    "apply_edit",
    "apply_ops",
    "apply_text",
    "check_rewrite",
    "delete_file",
    "detect",
    "edit_text",
    "make_diff",
    "parse",
    "prefetch_syntax",
    "write_file",
]
