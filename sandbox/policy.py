"""Permission policy: allow / ask / deny for each tool call.

Rules come from config (`[permissions] allow = [...]; ask = [...]; deny = [...]`) and from remembered
approvals. A rule is `tool` or `tool: pattern` (also `tool(pattern)`); for `bash` the pattern is a glob over
one command (`npm run test *`, where a trailing ` *` also matches no arguments), for file tools a glob over
the path (relative to the workspace, or absolute), for network tools a glob over the host (`fetch: docs.python.org`,
`fetch(domain:*.python.org)`). A network call is asked about unless a rule allows its host (or under
full-access + auto): headless, where nobody can answer, it is refused. Shell commands are split with tree-sitter-bash into every
simple command they run (`&&`, `||`, `;`, `|`, newlines, `$(...)`, backticks, `bash -c`, `env`, `xargs`,
`find -exec`, ...) and each part is evaluated deny -> ask -> allow. What cannot be parsed needs approval.
"""

from __future__ import annotations

import os
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ghostline.sandbox import store
from ghostline.sandbox.rules import Rule

READ_ONLY_COMMANDS = {
    "ls", "cat", "head", "tail", "wc", "grep", "egrep", "fgrep", "rg", "ag", "pwd", "echo", "printf", "which",
    "type", "file", "stat", "du", "df", "tree", "diff", "cmp", "uniq", "cut", "tr", "nl", "basename", "dirname",
    "realpath", "readlink", "true", "false", "test", "[", "date", "whoami", "id", "uname", "hostname",
    "printenv", "ps", "jq", "md5sum", "sha1sum", "sha256sum", "column", "fold", "rev", "tac", "seq", "less",
    "more", "sort", "od", "hexdump", "strings", "cal", "nproc", "free", "uptime", "lsb_release",
}
GIT_READ_ONLY = {"status", "log", "diff", "show", "rev-parse", "ls-files", "blame", "grep", "describe",
                 "shortlog", "ls-tree", "cat-file", "reflog", "whatchanged", "merge-base", "name-rev"}
WRAPPERS = {"env", "nice", "nohup", "time", "timeout", "stdbuf", "command", "exec", "sudo", "doas", "xargs",
            "ionice", "chrt", "setsid", "unbuffer", "builtin", "strace", "ltrace", "watch"}
SHELLS = {"sh", "bash", "zsh", "dash", "ksh", "fish", "busybox"}
INTERPRETERS = SHELLS | {"python", "python3", "perl", "ruby", "node", "php", "lua"}
DOWNLOADERS = {"curl", "wget", "fetch", "aria2c", "nc", "ncat"}
RC_FILES = (".bashrc", ".bash_profile", ".bash_login", ".profile", ".zshrc", ".zprofile", ".zshenv", ".zlogin",
            ".kshrc", ".cshrc", ".tcshrc", ".config/fish", ".inputrc", "/etc/profile", "/etc/bash.bashrc",
            "/etc/environment", ".pam_environment", ".xprofile", ".xinitrc")


@dataclass(frozen=True)
class Action:
    """What a tool call would do, as the policy judges it. Tools describe their own calls (`Tool.action`), so
    the policy never needs to know a tool by its name; the name is only matched against rules.

    kind: read (no side effects), edit (changes the files in `paths`), shell (runs `command`), network (reaches
    the `hosts` over the network, e.g. `docs.python.org` or `127.0.0.1:8080`), other.
    configured_by: who put the tool in the session: "ghostline" (built in), "user" (the user's own config, an
    editor's session) or "project" (a repository's `.mcp.json` or project config: code its author chose, so
    its calls are asked about even under `--approval auto` unless a rule allows them).

    self_contained: the call changes nothing outside the agent itself, and whatever it makes happen passes this
    policy on its own (a todo list the conversation keeps; a subagent, whose every tool call is judged here like
    the parent's). Nothing in it is for a person to approve, so it is allowed in every mode, plan mode included,
    unless a deny or ask rule names the tool. Only Ghostline's own tools set it."""

    tool: str
    kind: str = "other"
    paths: tuple[str, ...] = ()
    command: str | None = None
    configured_by: str = "ghostline"
    self_contained: bool = False
    hosts: tuple[str, ...] = ()


@dataclass
class Decision:
    action: str  # allow | ask | deny
    reason: str


@dataclass
class Part:
    """One simple command a shell line runs."""

    words: list[str | None]  # static words; None where a word is only known at run time ($VAR, $(...))
    text: str
    dynamic_name: bool = False
    assigns: bool = False  # VAR=value prefixes (GIT_EXTERNAL_DIFF=..., LD_PRELOAD=... change what runs)

    @property
    def name(self) -> str | None:
        return self.words[0] if self.words else None


@dataclass
class Parsed:
    parts: list[Part] = field(default_factory=list)
    redirects: list[str | None] = field(default_factory=list)  # file write targets (> >> &>), None = dynamic
    defines_functions: bool = False
    error: str | None = None


PLAN_MODE_REFUSAL = ("plan mode: only tools that read run until the user accepts a plan; do not try to make this "
                     "change now: put it in your plan, and end your turn with the plan")

# --- parsing ------------------------------------------------------------------------------------------------
_parser = None


def _get_parser():
    global _parser
    if _parser is None:
        import tree_sitter
        import tree_sitter_bash

        _parser = tree_sitter.Parser(tree_sitter.Language(tree_sitter_bash.language()))
    return _parser


_DYNAMIC = {"simple_expansion", "expansion", "command_substitution", "process_substitution",
            "arithmetic_expansion", "brace_expression"}


def _has_dynamic(node) -> bool:
    if node.type in _DYNAMIC:
        return True
    return any(_has_dynamic(c) for c in node.children)


def _static_word(node) -> str | None:
    text = node.text.decode("utf-8", errors="replace")
    if _has_dynamic(node):
        return None
    if node.type == "word" and any(ch in text for ch in "*?["):
        return text  # a glob: keep as written
    try:
        vals = shlex.split(text, posix=True)
    except ValueError:
        return None
    if len(vals) != 1:
        return "".join(vals) if vals else ""
    return vals[0]


def parse_command(command: str, _depth: int = 0) -> Parsed:
    """Every simple command `command` runs, with its static words; `error` set when it cannot be parsed."""
    out = Parsed()
    if _depth > 5:
        out.error = "nested too deeply"
        return out
    try:
        tree = _get_parser().parse(command.encode("utf-8", errors="surrogatepass"))
    except Exception as e:  # pragma: no cover - parser failure
        out.error = f"cannot parse: {e}"
        return out
    root = tree.root_node
    if root.has_error:
        out.error = "the shell command cannot be parsed"
        return out

    def visit(node) -> None:
        if node.type == "function_definition":
            out.defines_functions = True
        elif node.type == "file_redirect":
            writes, target = _write_target(node)
            if writes:
                out.redirects.append(target)
        elif node.type == "command":
            part = _command_part(node)
            out.parts.append(part)
            for inner in _unwrap(part):
                _merge(out, parse_command(inner, _depth + 1))
        for c in node.children:
            visit(c)

    visit(root)
    return out


def _write_target(redirect) -> tuple[bool, str | None]:
    """Whether a file_redirect node writes a file (> >> &> >|, not >&2), and its target (None: dynamic)."""
    op = "".join(c.text.decode() for c in redirect.children if not c.is_named)
    dest = redirect.child_by_field_name("destination")
    if dest is None:
        return False, None
    if (">" in op and "&" not in op.replace("&>", "")) or op in ("&>", "&>>", ">|"):
        return True, _static_word(dest)
    return False, None


def _command_part(command) -> Part:
    words: list[str | None] = []
    dyn_name = False
    assigns = False
    for c in command.children:
        if c.type == "variable_assignment":
            assigns = True
            continue
        if c.type in ("file_redirect", "herestring_redirect"):
            continue
        if c.type == "command_name":
            w = _static_word(c)
            dyn_name = w is None
            words.append(w)
        elif c.is_named:
            words.append(_static_word(c))
    return Part(words=words, text=command.text.decode("utf-8", errors="replace"), dynamic_name=dyn_name,
                assigns=assigns)


def _merge(out: Parsed, sub: Parsed) -> None:
    """Add what a command hidden in another one's arguments (`bash -c X`, ...) runs."""
    if sub.error:
        out.error = sub.error
    out.parts.extend(sub.parts)
    out.redirects.extend(sub.redirects)
    out.defines_functions |= sub.defines_functions


def _unwrap(part: Part) -> list[str]:
    """Commands hidden inside a command's arguments: `bash -c X`, `env X`, `xargs X`, `find -exec X ;`, ..."""
    w = part.words
    if not w or w[0] is None:
        return []
    name = os.path.basename(w[0])
    args = w[1:]
    found: list[str] = []
    if name in SHELLS and "-c" in args:
        i = args.index("-c")
        if i + 1 < len(args):
            found.append(args[i + 1] if args[i + 1] is not None else "$DYNAMIC")
    elif name in ("eval",):
        found.append(" ".join(a if a is not None else "$DYNAMIC" for a in args))
    elif name in WRAPPERS:
        rest = list(args)
        while rest and rest[0] is not None and (rest[0].startswith("-") or (name == "env" and "=" in rest[0])
                                                 or (name == "timeout" and rest[0][:1].isdigit())
                                                 or (name in ("nice", "ionice", "chrt") and rest[0].isdigit())):
            opt = rest.pop(0)
            if name in ("env",) and opt in ("-u", "-C", "-S") and rest:
                rest.pop(0)
            if name == "timeout" and opt in ("-s", "-k", "--signal", "--kill-after") and rest:
                rest.pop(0)
            if name == "xargs" and opt in ("-I", "-L", "-n", "-P", "-d", "-E", "-s", "-a") and rest:
                rest.pop(0)
        if rest:
            found.append(" ".join(shlex.quote(a) if a is not None else "$DYNAMIC" for a in rest))
    elif name == "find":
        i = 0
        while i < len(args):
            a = args[i]
            if a in ("-exec", "-execdir", "-ok", "-okdir"):
                j = i + 1
                cmd = []
                while j < len(args) and args[j] not in (";", "+", "\\;"):
                    cmd.append(args[j])
                    j += 1
                found.append(" ".join(shlex.quote(x) if x is not None else "$DYNAMIC" for x in cmd if x != "{}"))
                i = j
            i += 1
    return found


# --- classification -----------------------------------------------------------------------------------------
def is_read_only_part(part: Part) -> bool:
    w = part.words
    if not w or w[0] is None or part.dynamic_name or part.assigns:
        return False
    name = os.path.basename(w[0])
    args = list(w[1:])
    if any(a is None for a in args):
        return False
    positional = [a for a in args if a is not None and not a.startswith("-")]
    # Commands that are read-only only in some forms.
    if name == "hostname" and positional:
        return False
    if name == "date" and any(a is not None and (a.startswith("-s") or a.startswith("--set")) for a in args):
        return False
    if name == "uniq" and len(positional) > 1:
        return False
    if name == "tree" and any(a is not None and a.startswith("-o") for a in args):
        return False
    if name == "file" and any(a is not None and a.startswith("-C") for a in args):
        return False
    if name == "git":
        sub = next((a for a in args if a is not None and not a.startswith("-")), None)
        if any(a is not None and (a == "-c" or a.startswith("--exec") or a.startswith("--upload-pack")
                                  or a.startswith("-c")) for a in args):
            return False
        if sub == "branch" or sub == "tag" or sub == "remote":
            return all(a is not None and (a.startswith("-") and a not in ("-d", "-D", "-m", "-M", "-f"))
                       or a == sub for a in args)
        return sub in GIT_READ_ONLY and "--output" not in " ".join(a or "" for a in args)
    if name == "find":
        return not any(a is None or a in ("-exec", "-execdir", "-ok", "-okdir", "-delete", "-fprint", "-fprint0",
                                          "-fls", "-fprintf") for a in args)
    if name == "sort":
        return not any(a is None or a.startswith("-o") or a.startswith("--output") for a in args)
    return name in READ_ONLY_COMMANDS


def _expand_home(p: str) -> str:
    return os.path.expanduser(p) if p.startswith("~") else p


def _outside(path: str, workspace: Path, cwd: Path) -> bool:
    p = _expand_home(path)
    full = os.path.realpath(p if os.path.isabs(p) else os.path.join(cwd, p))
    ws = os.path.realpath(workspace)
    return not (full == ws or full.startswith(ws.rstrip("/") + "/"))


def _touches_secret_or_rc(word: str) -> str | None:
    w = word.replace("\\", "")
    if re.search(r"(^|/|~)\.ssh(/|$)", w) or w in ("~/.ssh", ".ssh"):
        return "touches ~/.ssh"
    for rc in RC_FILES:
        if w.endswith(rc) or (rc + "/") in w or w.startswith(rc):
            if rc.startswith("/") or "~" in w or w.startswith("$HOME") or w.startswith(os.path.expanduser("~")) \
                    or w.startswith(".") or "/" in w:
                return f"touches a shell startup file ({rc})"
    if re.search(r"(^|/)\.git/(hooks|config)(/|$)", w):
        return "touches .git hooks/config"
    return None


def _rm_danger(args: list[str | None], workspace: Path, cwd: Path) -> str | None:
    flags = "".join(a[1:] for a in args if a and a.startswith("-") and not a.startswith("--"))
    long = [a for a in args if a and a.startswith("--")]
    if not ("r" in flags.lower() or "--recursive" in long or "f" in flags or "--force" in long):
        return None
    for t in (a for a in args if a is None or not a.startswith("-")):
        if t is None:
            return "rm -rf with a target only known at run time"
        if t in ("/", "~", "*", "/*") or _outside(t, workspace, cwd):
            return f"rm -rf outside the workspace ({t})"
    return None


def _git_danger(args: list[str | None], workspace: Path, cwd: Path) -> str | None:
    if "push" in args and any(a is not None and (a in ("-f", "--force", "--mirror", "--delete", "-d")
                                                 or a.startswith("--force") or (a.startswith("+") and len(a) > 1))
                              for a in args):
        return "git push --force"
    if any(a is not None and (a == "-c" or (a.startswith("-c") and "=" in a) or a.startswith("--exec-path"))
           for a in args):
        cfg = " ".join(a or "" for a in args)
        if re.search(r"alias\.|core\.(pager|editor|sshcommand|hookspath|fsmonitor)|!|credential", cfg, re.I):
            return "git -c with an alias or command-running setting"
    return None


def _name_danger(name: str, args: list[str | None]) -> str | None:
    if name in ("sudo", "su", "doas", "pkexec"):
        return f"{name}: privilege escalation"
    if name in ("mkfs", "fdisk", "parted") or name.startswith("mkfs."):
        return f"{name}: disk formatting"
    if name == "dd" and any(a is not None and a.startswith("of=/dev/") for a in args):
        return "dd onto a device"
    if name in ("chmod", "chown") and any(a in ("/", "~") for a in args):
        return f"{name} on / or ~"
    return None


_ARG_CHECKS = {"rm": _rm_danger, "git": _git_danger}


def _part_danger(part: Part, workspace: Path, cwd: Path) -> str | None:
    name = os.path.basename(part.name) if part.name else ""
    args = part.words[1:]
    check = _ARG_CHECKS.get(name)
    why = (check(args, workspace, cwd) if check else None) or _name_danger(name, args)
    if why:
        return why
    return next((r for a in part.words if a is not None and (r := _touches_secret_or_rc(a))), None)


def dangerous_reason(parsed: Parsed, workspace: Path, cwd: Path) -> str | None:
    """Why a command is destructive or exfiltrating (needs approval even in auto), or None."""
    for part in parsed.parts:
        why = part.words and _part_danger(part, workspace, cwd)
        if why:
            return why
    for target in parsed.redirects:
        why = target is not None and _touches_secret_or_rc(target)
        if why:
            return why
    # download | interpreter, and interpreter fed by a download via $(...) or <(...)
    names = {os.path.basename(p.name) for p in parsed.parts if p.name}
    if names & DOWNLOADERS and names & INTERPRETERS:
        return "downloads and runs code (curl | sh)"
    return None


def _norm_part(part: Part) -> str:
    return " ".join(w if w is not None else "$?" for w in part.words)


class Policy:
    """Evaluate tool calls against rules, remembered approvals and the sandbox/approval modes."""

    def __init__(self, allow: list[str] | None = None, ask: list[str] | None = None,
                 deny: list[str] | None = None, *, level: str | None = None,
                 remembered: bool = True,
                 workspace: Path | None = None):
        """level: the OS sandbox layer commands run under (default: detect_level() on first use).
        workspace: the default for evaluate()'s workspace. Bad rule syntax raises ValueError."""
        self.allow = [Rule.parse(r) for r in (allow or [])]
        self.ask = [Rule.parse(r) for r in (ask or [])]
        self.deny = [Rule.parse(r) for r in (deny or [])]
        self.level = level
        self.workspace = workspace
        self.use_remembered = remembered

    @classmethod
    def from_config(cls, permissions: dict[str, Any] | None, **kw: Any) -> Policy:
        """From `[permissions]`: allow/ask/deny lists, or a {tool: {pattern: action}} / {tool: action} table."""
        p = permissions or {}
        lists: dict[str, list[str]] = {"allow": [], "ask": [], "deny": []}
        for key, val in p.items():
            if key in lists and isinstance(val, list):
                lists[key].extend(str(v) for v in val)
            elif key in lists and isinstance(val, str):
                lists[key].append(val)
            elif isinstance(val, str) and val in lists:
                lists[val].append(key)
            elif isinstance(val, dict):
                for pat, action in val.items():
                    if action in lists:
                        lists[action].append(f"{key}: {pat}")
        return cls(lists["allow"], lists["ask"], lists["deny"], **kw)

    def _remembered_rules(self, workspace: Path) -> list[Rule]:
        if not self.use_remembered:
            return []
        out = []
        for r in store.remembered(workspace):
            try:
                out.append(Rule.parse(r))
            except ValueError:
                continue
        return out

    def evaluate(self, action: Action, *, mode: str, approval: str, workspace: Path | None = None,
                 cwd: Path | None = None, level: str | None = None) -> Decision:
        workspace = workspace or self.workspace or Path.cwd()
        cwd = cwd or workspace
        if level is None:
            if self.level is None:
                from ghostline.sandbox.runner import detect_level

                self.level = detect_level()
            level = self.level
        yolo = mode == "full-access" and approval == "auto"
        allow_rules = self.allow + self._remembered_rules(workspace)
        if action.kind == "network":
            return self._evaluate_network(action, allow_rules, yolo=yolo)
        if action.kind == "shell":
            return self._evaluate_shell(action.tool, action.command or "", mode=mode, approval=approval,
                                        workspace=workspace, cwd=cwd, level=level, yolo=yolo,
                                        allow_rules=allow_rules)
        ruled = self._deny_or_ask_rule(action, workspace)
        if ruled is not None:
            return ruled
        if action.kind == "read":
            return Decision("allow", "read-only tool")
        if action.self_contained:
            return Decision("allow", "changes nothing outside the agent")
        if approval == "plan":
            return Decision("deny", PLAN_MODE_REFUSAL)
        if mode == "read-only" and action.kind == "edit":
            return Decision("deny", "read-only mode: file changes are not allowed")
        for r in allow_rules:
            if r.matches_tool(action.tool) and _paths_match(r, action.paths, workspace):
                return Decision("allow", f"allow rule '{r.source}'")
        if action.kind == "edit":
            return _evaluate_edit(action.paths, mode=mode, approval=approval, workspace=workspace, cwd=cwd,
                                  yolo=yolo)
        if action.configured_by == "project" and not yolo:
            return Decision("ask", f"{action.tool} comes from the project's configuration and needs approval")
        if yolo or approval == "auto":
            return Decision("allow", "auto")
        return Decision("ask", f"{action.tool} needs approval")

    def _evaluate_network(self, action: Action, allow_rules: list[Rule], *, yolo: bool) -> Decision:
        """A call that reaches hosts: a rule naming them decides; else only full-access + auto allows it unasked
        (plan mode included: looking something up changes nothing here)."""
        for rules, verdict in ((self.deny, "deny"), (self.ask, "ask")):
            for r in rules:
                if r.matches_tool(action.tool) and (r.pattern is None or any(map(r.matches_host, action.hosts))):
                    return Decision(verdict, f"{verdict} rule '{r.source}'")
        hosts = ", ".join(action.hosts) or "the network"
        for r in allow_rules:
            if r.matches_tool(action.tool) and (r.pattern is None or all(map(r.matches_host, action.hosts))):
                return Decision("allow", f"allow rule '{r.source}'")
        if yolo:
            return Decision("allow", "full-access + auto")
        rule = f"{action.tool}: {action.hosts[0]}" if action.hosts else action.tool
        return Decision("ask", f"{action.tool} reaches {hosts}; a rule such as `{rule}` allows it without asking")

    def _deny_or_ask_rule(self, action: Action, workspace: Path) -> Decision | None:
        for rules, verdict in ((self.deny, "deny"), (self.ask, "ask")):
            for r in rules:
                if r.matches_tool(action.tool) and (r.pattern is None or _paths_match(r, action.paths, workspace,
                                                                                    every=False)):
                    return Decision(verdict, f"{verdict} rule '{r.source}'")
        return None

    def _evaluate_shell(self, tool: str, command: str, *, mode: str, approval: str, workspace: Path, cwd: Path,
                        level: str, yolo: bool, allow_rules: list[Rule]) -> Decision:
        if not command.strip():
            return Decision("deny", "empty command")
        parsed = parse_command(command)
        if parsed.error:
            rule = next((r for r in self.deny if r.matches_tool(tool) and r.pattern is None), None)
            if rule is not None:
                return Decision("deny", f"deny rule '{rule.source}'")
            if approval == "plan":
                return Decision("deny", PLAN_MODE_REFUSAL)
            return Decision("allow" if yolo else "ask", f"{parsed.error}; needs approval")
        ruled = self._shell_rule(tool, parsed)
        if ruled is not None:
            return ruled
        if approval == "plan":
            return _plan_shell(parsed)
        danger = dangerous_reason(parsed, workspace, cwd)
        if yolo:
            return Decision("allow", "full-access + auto")
        if danger:
            return Decision("ask", f"dangerous: {danger}")
        return _shell_by_mode(parsed, _allowed_by_rule(tool, parsed, allow_rules), mode=mode, approval=approval,
                              level=level)

    def _shell_rule(self, tool: str, parsed: Parsed) -> Decision | None:
        """A deny or ask rule matching any command the line runs."""
        for rules, verdict in ((self.deny, "deny"), (self.ask, "ask")):
            for r in rules:
                if not r.matches_tool(tool):
                    continue
                for part in parsed.parts:
                    if r.matches_command(_norm_part(part)) or r.matches_command(part.text):
                        return Decision(verdict, f"{verdict} rule '{r.source}' matches `{_norm_part(part)}`")
        return None


def _allowed_by_rule(tool: str, parsed: Parsed, allow_rules: list[Rule]) -> bool:
    """Some command of the line is allowed by a rule, and every other one is read-only."""
    matched = [any(r.matches_tool(tool) and (r.matches_command(_norm_part(p)) or r.matches_command(p.text))
                   for r in allow_rules) for p in parsed.parts]
    return any(matched) and all(m or is_read_only_part(p) for p, m in zip(parsed.parts, matched, strict=True))


def _writes(parsed: Parsed) -> list[str | None]:
    return [t for t in parsed.redirects if t is None or t not in ("/dev/null", "/dev/stdout", "/dev/stderr")]


def _is_read_only(parsed: Parsed) -> bool:
    return bool(not _writes(parsed) and not parsed.defines_functions and parsed.parts
                and all(is_read_only_part(p) for p in parsed.parts))


def _plan_shell(parsed: Parsed) -> Decision:
    """Plan mode runs a command only when it is known to read and nothing else (the same test that lets one run
    unasked in ask mode): `git log`, `ls`, `grep` look; anything that may write waits for the plan."""
    if _is_read_only(parsed):
        return Decision("allow", "plan mode: a read-only command")
    return Decision("deny", PLAN_MODE_REFUSAL)


def _shell_by_mode(parsed: Parsed, allowed_by_rule: bool, *, mode: str, approval: str, level: str) -> Decision:
    writes = _writes(parsed)
    if _is_read_only(parsed):
        return Decision("allow", "read-only command")
    if mode == "read-only" and writes:
        return Decision("deny", "read-only mode: the command writes files")
    if mode == "read-only" and level == "none":
        return Decision("deny", "read-only mode without an OS sandbox: only read-only commands may run")
    if allowed_by_rule:
        return Decision("allow", "allowed by rule")
    if approval == "auto":
        if level == "none" and mode != "full-access":
            return Decision("ask", "no OS sandbox here: commands that may write need approval")
        return Decision("allow", "auto: the sandbox confines the command")
    return Decision("ask", "command is not known to be read-only")


def _paths_match(rule: Rule, paths: tuple[str, ...], workspace: Path, *, every: bool = True) -> bool:
    """A rule's pattern against the paths a call touches: an allow rule must cover every path, a deny/ask rule
    fires on any. A rule without a pattern, or a call without paths, matches."""
    if rule.pattern is None or not paths:
        return True
    hits = (rule.matches_path(p, workspace) for p in paths)
    return all(hits) if every else any(hits)


def _evaluate_edit(paths: tuple[str, ...], *, mode: str, approval: str, workspace: Path, cwd: Path,
                   yolo: bool) -> Decision:
    from ghostline.sandbox.paths import protected_reason

    for path in paths:
        real = Path(os.path.realpath(os.path.join(cwd, os.path.expanduser(path))))
        why = protected_reason(real, workspace)
        if why:
            return Decision("deny", why)
    inside = not any(_outside(p, workspace, cwd) for p in paths)
    if not inside and mode != "full-access":
        return Decision("deny", "outside the workspace")
    if yolo:
        return Decision("allow", "full-access + auto")
    if approval in ("auto", "auto-edit") and inside:
        return Decision("allow", f"{approval}: edits in the workspace")
    return Decision("ask", "file change needs approval" if inside else "file change outside the workspace")


def suggest_rule(action: Action) -> str:
    """The rule an "always allow this" answer would remember (e.g. `bash: npm run test *`, `fetch: example.com`)."""
    if action.kind == "network" and action.hosts:
        return f"{action.tool}: {action.hosts[0]}"
    if action.kind != "shell":
        return action.tool
    command = action.command or ""
    parsed = parse_command(command)
    if parsed.error or not parsed.parts or parsed.parts[0].words[:1] == [None]:
        return f"{action.tool}: {command}"
    w = [x for x in parsed.parts[0].words if x is not None]
    keep = w[:3] if len(w) > 1 and w[0] in ("npm", "pnpm", "yarn", "cargo", "go", "make", "uv", "poetry") \
        else w[:2] if len(w) > 1 and not w[1].startswith("-") else w[:1]
    return f"{action.tool}: {' '.join(keep)} *"
