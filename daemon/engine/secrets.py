"""The credential scanner every suggestion passes before it reaches an editor: where the first secret in a text
starts and what kind it is, and how much of a growing text may be streamed without showing part of one.

Detectors: the regex detectors of `detect-secrets` (Yelp's maintained plugins: AWS, GitHub, GitLab, Slack, Stripe,
OpenAI, SendGrid, npm, PyPI, Twilio, Discord, Mailchimp, Square, Telegram, Azure storage, Artifactory, private
keys, JWTs, basic-auth URLs), plus known formats they lack or match too narrowly (GitHub fine-grained tokens,
Anthropic and project-scoped OpenAI keys, Google API keys, npm tokens outside .npmrc, AWS secret keys without
quotes, Stripe test keys, bearer tokens), passwords inside connection URLs, PEM private keys with key material,
and high-entropy literals assigned to secret-like names (`api_key = "..."`, `PASSWORD=...`, `"token": "..."`).

What passes: placeholders (`"<YOUR_API_KEY>"`, `"${TOKEN}"`, `"changeme"`, AWS's documented `...EXAMPLE` keys),
environment lookups (no literal to find), UUIDs, hashes and colour lists (no secret-like name, no key format).

Pure text and regexes; `detect_secrets` is imported when the first scanner is built.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote


@dataclass(frozen=True)
class Finding:
    """A secret in a text: [start, end) and its kind (a short name; the only thing telemetry keeps)."""

    start: int
    end: int
    kind: str


# --------------------------------------------------------------------------------------------- known formats

_B64 = r"[A-Za-z0-9+/]"
_KNOWN: tuple[tuple[str, re.Pattern[str]], ...] = tuple((k, re.compile(p)) for k, p in (
    ("aws_access_key_id", r"\b(?:A3T[A-Z0-9]|ABIA|ACCA|AKIA|ASIA)[A-Z0-9]{16}\b"),
    ("aws_secret_access_key",
     rf"(?i:aws)[\w.-]{{0,30}}?(?i:secret|key)[\w.-]{{0,20}}[\"']?\s*(?::=|=>|=|:)\s*[\"']?({_B64}{{40}})(?![A-Za-z0-9+/])"),
    ("github_token", r"\b(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{36}\b"),
    ("github_fine_grained_token", r"\bgithub_pat_[A-Za-z0-9]{22}_[A-Za-z0-9]{59}\b"),
    ("slack_token", r"\bxox[abposre]-[A-Za-z0-9-]{10,}"),
    ("slack_webhook", r"https://hooks\.slack\.com/(?:services|workflows)/[A-Za-z0-9_/]{20,}"),
    ("stripe_key", r"\b(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{20,}"),
    ("anthropic_key", r"\bsk-ant-[a-z]{2,8}\d{0,3}-[A-Za-z0-9_-]{32,}"),
    ("openai_key", r"\bsk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{0,64}T3BlbkFJ[A-Za-z0-9_-]{16,}"),
    ("openai_key", r"\bsk-(?:proj|svcacct|admin)-[A-Za-z0-9_-]{40,}"),
    ("google_api_key", r"\bAIza[A-Za-z0-9_-]{35}(?![A-Za-z0-9_-])"),
    ("sendgrid_key", r"\bSG\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43}\b"),
    ("npm_token", r"\bnpm_[A-Za-z0-9]{36}\b"),
    ("jwt", r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{16,}"),
    ("bearer_token", r"\b[Bb]earer\s+([A-Za-z0-9._~+/-]{24,}=*)"),
))

# PEM: a private-key header followed by key material (a header alone, e.g. in a parser, is no secret)
_PEM = re.compile(r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----[ \t]*\r?\n(?:[\w-]+: [^\n]*\n|\s*\n)*"
                  rf"[ \t]*{_B64}{{16,}}")
_PEM_START = re.compile(r"-----BEGIN")
# scheme://user:password@host -- the password is the secret
_URL_PASSWORD = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]{1,20}://[^\s:/@'\"`<>{}]{1,64}:([^\s@/'\"`<>]{3,128})@[\w.-]")

# a literal assigned to a secret-like name: NAME = "value", NAME: value, "NAME": "value", NAME=value (env)
_ASSIGN = re.compile(
    r"(?<![\w.$-])(?P<name>[A-Za-z_$][\w.$-]{0,60})[\"'`\]]{0,2}(?:\s*:\s*[A-Za-z_][\w.\[\]| ]{0,40}?(?=\s*=))?"
    r"\s*(?::=|=>|\+?=|:)\s*"
    r"(?:[rbuRBU]?(?P<q>[\"'`])(?P<quoted>[^\"'`\n\\]{8,256})(?P=q)|(?P<bare>[^\s\"'`,;#(){}\[\]<>][^\s\"'`,;(){}\[\]<>]{7,255})(?=\s|$|[,;]))"
)
_SECRET_WORDS = {"password", "passwd", "passphrase", "pwd", "pass", "secret", "secrets", "token", "apikey",
                 "credential", "credentials", "bearer", "privatekey", "accesskey", "secretkey", "authkey",
                 "clientsecret", "apitoken", "authtoken", "accesstoken", "refreshtoken", "sessionkey"}
_KEY_QUALIFIERS = {"api", "access", "private", "secret", "auth", "signing", "encryption", "master", "client",
                   "consumer", "session", "app", "account", "service", "admin", "license", "webhook"}
# a name with one of these words names something about a secret, not the secret itself
_NOT_SECRET_WORDS = {"hash", "hashed", "digest", "checksum", "sha", "md5", "type", "types", "name", "names", "id",
                     "ids", "url", "uri", "endpoint", "path", "file", "filename", "dir", "header", "field", "len",
                     "length", "size", "count", "max", "min", "limit", "prefix", "suffix", "regex", "pattern",
                     "format", "env", "var", "label", "placeholder", "param", "expires", "expiry", "ttl", "scope",
                     "kind", "mode", "version", "policy", "prompt", "help", "hint", "message", "msg", "error",
                     "text", "title", "description", "desc", "template", "column", "col", "attr", "attribute",
                     "keys", "class", "cls", "fn", "func", "method", "test", "tests", "example", "sample",
                     "dummy", "fake", "mock", "validator", "location", "source", "store", "storage",
                     "manager", "provider", "handler", "cache", "counter", "index", "position", "pos", "char",
                     "chars", "span", "spans", "start", "end", "budget", "usage", "estimate", "parser"}
_PLACEHOLDER = re.compile(
    r"(?i)^(?:x{3,}|\*{3,}|\.{3,}|-+|_+|none|null|nil|true|false|undefined)$|[<>{}]|\$\{|\$\(|%\(|(?-i:%s)|\{\{|"
    r"(?:^|[^a-z0-9])(?:your|my|example|sample|dummy|fake|placeholder|changeme|change[_-]?me|replace|insert|redacted|"
    r"todo|fixme|secret[_-]?here|key[_-]?here|token[_-]?here|test[_-]?key)(?:[^a-z0-9]|$)|EXAMPLE|x{6,}|X{6,}")
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_WORDISH = re.compile(r"^[a-z]+(?:[ _.-][a-z]+)*$|^(?:[A-Z]?[a-z]{2,}|[A-Z]{2,}(?![a-z]))+$|^[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+$|^[A-Za-z]+(?:\.[A-Za-z_]\w*)+$")
# literals (lower case) one of which a text must hold before a kind's patterns run: most code holds none, and a
# substring test costs far less than a regex pass
_NEEDS: dict[str, tuple[str, ...]] = {
    "aws_access_key_id": ("akia", "asia", "abia", "acca", "a3t"), "aws_secret_access_key": ("aws",),
    "aws_key": ("akia", "asia", "abia", "acca", "a3t", "aws"), "github_token": ("ghp_", "gho_", "ghu_", "ghs_", "ghr_"),
    "github_fine_grained_token": ("github_pat_",), "slack_token": ("xox", "hooks.slack.com"),
    "slack_webhook": ("hooks.slack.com",), "stripe_key": ("k_live_", "k_test_"), "anthropic_key": ("sk-ant-",),
    "openai_key": ("sk-",), "google_api_key": ("aiza",), "sendgrid_key": ("sg.",), "npm_token": ("npm_", "_authtoken"),
    "jwt": ("eyj",), "bearer_token": ("bearer",), "gitlab_token": ("gl", "gr1348941"), "pypi_token": ("pypi-",),
    "square_token": ("sq0csp-",), "mailchimp_key": ("-us",), "azure_storage_key": ("accountkey=",),
    "artifactory_token": ("akc", "ap"),
}
_ASSIGN_NEEDS = re.compile(r"pass|pwd|secret|token|key|credential|bearer", re.IGNORECASE)
# an unquoted value that is code, not a literal: a name or a dotted path (`api_key=_sdk.api_key`)
_CODE_NAME = re.compile(r"^(?:_*[A-Za-z][A-Za-z_]*|[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+)$")
_CAMEL = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+")

# detect-secrets plugins whose matches are a token format (the entropy and keyword plugins are left out: they
# flag hashes, UUIDs and ordinary assignments, which must pass)
_DS_PLUGINS = (
    ("aws", "AWSKeyDetector", "aws_key"), ("artifactory", "ArtifactoryDetector", "artifactory_token"),
    ("azure_storage_key", "AzureStorageKeyDetector", "azure_storage_key"),
    ("basic_auth", "BasicAuthDetector", "url_password"), ("discord", "DiscordBotTokenDetector", "discord_token"),
    ("github_token", "GitHubTokenDetector", "github_token"), ("gitlab_token", "GitLabTokenDetector", "gitlab_token"),
    ("jwt", "JwtTokenDetector", "jwt"), ("mailchimp", "MailchimpDetector", "mailchimp_key"),
    ("npm", "NpmDetector", "npm_token"), ("openai", "OpenAIDetector", "openai_key"),
    ("private_key", "PrivateKeyDetector", "private_key"), ("pypi_token", "PypiTokenDetector", "pypi_token"),
    ("sendgrid", "SendGridDetector", "sendgrid_key"), ("slack", "SlackDetector", "slack_token"),
    ("square_oauth", "SquareOAuthDetector", "square_token"), ("stripe", "StripeDetector", "stripe_key"),
    ("telegram_token", "TelegramBotTokenDetector", "telegram_token"), ("twilio", "TwilioKeyDetector", "twilio_key"),
)
# handled here with more context than the plugin's bare regex (a PEM header needs key material after it; a URL
# password must not be a placeholder; a JWT must decode)
_DS_OWN_RULES = {"PrivateKeyDetector", "BasicAuthDetector", "JwtTokenDetector"}


def _detect_secrets_patterns() -> list[tuple[str, re.Pattern[str]]]:
    import importlib

    out = []
    for module, cls_name, kind in _DS_PLUGINS:
        if cls_name in _DS_OWN_RULES:
            continue
        cls = getattr(importlib.import_module(f"detect_secrets.plugins.{module}"), cls_name)
        out += [(kind, p) for p in cls.denylist]
    return out


def shannon_entropy(s: str) -> float:
    """Bits per character of `s`'s character distribution."""
    n = len(s)
    return -sum(c / n * math.log2(c / n) for c in Counter(s).values()) if n else 0.0


def _name_words(name: str) -> list[str]:
    words: list[str] = []
    for part in re.split(r"[^A-Za-z0-9]+", name.rsplit(".", 1)[-1]):
        words += [w.lower() for w in _CAMEL.findall(part)]
    return words


def secret_like_name(name: str) -> bool:
    """`api_key`, `DB_PASSWORD`, `clientSecret`, `authToken`: yes. `token_type`, `password_hash`, `tokenizer`,
    `max_tokens`, `api_key_header`: no (they name something about a secret, or are no secret word at all)."""
    words = _name_words(name)
    if not words or any(w in _NOT_SECRET_WORDS for w in words):
        return False
    joined = "".join(words)
    if joined in _SECRET_WORDS or any(w in _SECRET_WORDS for w in words):
        return True
    # "...key" qualified as a secret's key: api_key, accessKey, SIGNING_KEY (not "key" alone, not "sort_key")
    return any(w == "key" and i > 0 and words[i - 1] in _KEY_QUALIFIERS for i, w in enumerate(words))


def literal_looks_secret(value: str) -> bool:
    """A literal that could be a credential: no placeholder, template or env-variable name, no UUID, not words
    or a dotted name, no spaces; at least two character classes and enough entropy for its length."""
    v = value.strip()
    if len(v) < 8 or " " in v or _PLACEHOLDER.search(v) or _UUID.match(v) or _WORDISH.match(v):
        return False
    if v.startswith(("http://", "https://", "/", "./", "~/", "$")) or v.isdigit():
        return False
    classes = sum(bool(re.search(p, v)) for p in (r"[a-z]", r"[A-Z]", r"\d", r"[^A-Za-z0-9]"))
    if classes < 2:
        return False
    return shannon_entropy(v) >= min(3.0, 0.8 * math.log2(len(v)))


def _placeholder(value: str) -> bool:
    return bool(_PLACEHOLDER.search(value)) or value.lower() in {"password", "pass", "passwd", "secret", "token"}


# a key format's own placeholders: AWS's documented keys end in EXAMPLE; runs of x or 0 fill templates
_FORMAT_PLACEHOLDER = re.compile(r"EXAMPLE|[xX]{8,}|0{12,}|1234567890")


class SecretScanner:
    """Thread-safe (stateless after construction). `find(text)`: the first secret; `safe_length(text)`: how much of
    a text still being generated may be shown."""

    def __init__(self) -> None:
        self._patterns: list[tuple[str, re.Pattern[str]]] = list(_KNOWN) + _detect_secrets_patterns()
        from detect_secrets.plugins.jwt import JwtTokenDetector

        self._jwt_valid = JwtTokenDetector.is_formally_valid

    def find(self, text: str, after: int = 0) -> Finding | None:
        """The secret that starts first in `text` among those ending past `after` (text before `after` is the
        user's own: a secret wholly inside it is not the suggestion's). None: none."""
        best: Finding | None = None
        for f in self._findings(text, after):
            if best is None or f.start < best.start:
                best = f
        return best

    def _findings(self, text: str, after: int) -> Any:
        low = text.lower()
        for kind, pat in self._patterns:
            needs = _NEEDS.get(kind)
            if needs is not None and not any(n in low for n in needs):
                continue
            g = 1 if pat.groups else 0
            for m in pat.finditer(text):
                if m.end(g) <= after or _FORMAT_PLACEHOLDER.search(m.group(0)):
                    continue
                if kind == "jwt" and not self._jwt_valid(m.group(0)):
                    continue
                yield Finding(m.start(g), m.end(g), kind)
                break
        if "-----BEGIN" in text:
            yield from self._pem(text, after)
        if "://" in text:
            yield from self._url_passwords(text, after)
        if _ASSIGN_NEEDS.search(text):
            yield from self._assignments(text, after)

    def _pem(self, text: str, after: int) -> Any:
        for m in _PEM.finditer(text):
            if m.end() > after:
                yield Finding(m.start(), m.end(), "private_key")
                return

    def _url_passwords(self, text: str, after: int) -> Any:
        for m in _URL_PASSWORD.finditer(text):
            pw = unquote(m.group(1))
            if m.end(1) > after and not _placeholder(pw) and not _WORDISH.match(pw) and " " not in pw \
                    and not pw.startswith(("$", "%")):
                yield Finding(m.start(1), m.end(1), "url_password")
                return

    def _assignments(self, text: str, after: int) -> Any:
        for m in _ASSIGN.finditer(text):
            g = "quoted" if m.group("quoted") else "bare"
            if g == "bare" and _CODE_NAME.match(m.group(g)):
                continue
            if m.end(g) > after and secret_like_name(m.group("name")) and literal_looks_secret(m.group(g)):
                yield Finding(m.start(g), m.end(g), "secret_assignment")
                return

    def safe_length(self, text: str, after: int = 0) -> int:
        """How much of `text` (a completion still growing; text before `after` is the user's) may be shown now: up
        to the first secret, and never the trailing token (a secret may be starting there) nor an undecided PEM
        block."""
        found = self.find(text, after)
        hold = undecided_tail(text)
        return min(hold, found.start) if found is not None else hold


def undecided_tail(text: str) -> int:
    """Where the part of a growing text starts that may still turn into a secret: the trailing token (every
    secret format is a run of token characters), or a PEM header whose key material has not come yet."""
    hold = _trailing_token_start(text)
    pem = text.rfind("-----BEGIN")
    if pem >= 0 and text.count("\n", pem) < 2:
        hold = min(hold, text.rfind("\n", 0, pem) + 1)
    return hold


_TOKEN_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-+/=.:@%~!$&*?#\\")


def _trailing_token_start(text: str) -> int:
    """Start of the run of token characters at the end of `text` (== len(text) when it ends with a separator):
    every secret format is such a run, so what ends before it is settled."""
    i = len(text)
    while i > 0 and text[i - 1] in _TOKEN_CHARS:
        i -= 1
    return i
