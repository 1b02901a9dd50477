"""The credential scanner's labelled test set (tests/daemon/test_secrets.py, bench/daemon_bench.py).

Positives: fabricated secrets of every known format (random, from a fixed seed; none is or was ever real), each
inside a suggestion-shaped snippet (Python, JS, JSON, YAML, .env, shell, headers, connection URLs). Negatives:
windows of real source files of installed packages (requests, urllib3, httpx, aiohttp, jinja2, pygments, jwt,
cryptography, openai, anthropic -- code that handles tokens, keys and passwords all day), every line of them that
names a password, token, secret or key, and ordinary code that must pass: placeholders, environment lookups,
UUIDs, hashes, colour lists.

`evaluate(scanner)` scores a scanner (anything with `find(text)`) and `format_table(scores)` prints it.
"""

from __future__ import annotations

import base64
import json
import random
import string
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ALNUM = string.ascii_letters + string.digits
UPPER_DIGITS = string.ascii_uppercase + string.digits
B64 = ALNUM + "+/"
URLSAFE = ALNUM + "-_"
NEGATIVE_PACKAGES = ("requests", "urllib3", "httpx", "aiohttp", "jinja2", "pygments", "jwt", "cryptography",
                     "openai", "anthropic")


@dataclass(frozen=True)
class Sample:
    text: str
    kind: str  # the format of the secret in it; "" for a negative
    source: str  # where a negative comes from (package/file or "ordinary"); the context of a positive


def _r(rng: random.Random, alphabet: str, n: int) -> str:
    return "".join(rng.choice(alphabet) for _ in range(n))


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _jwt(rng: random.Random) -> str:
    head = _b64url(json.dumps({"alg": rng.choice(["HS256", "RS256"]), "typ": "JWT"}).encode())
    body = _b64url(json.dumps({"sub": str(rng.randrange(10**9)), "name": _r(rng, string.ascii_letters, 8),
                               "iat": 1700000000 + rng.randrange(10**7)}).encode())
    return f"{head}.{body}.{_b64url(rng.randbytes(32))}"


def _pem(rng: random.Random) -> str:
    label = rng.choice(["RSA PRIVATE KEY", "PRIVATE KEY", "EC PRIVATE KEY", "OPENSSH PRIVATE KEY",
                        "ENCRYPTED PRIVATE KEY", "DSA PRIVATE KEY"])
    body = "\n".join(_r(rng, B64, 64) for _ in range(rng.randrange(1, 4)))
    return f"-----BEGIN {label}-----\n{body}\n"


def _secret_of(kind: str, rng: random.Random) -> str:
    makers: dict[str, Any] = {
        "aws_access_key_id": lambda: rng.choice(["AKIA", "ASIA"]) + _r(rng, UPPER_DIGITS, 16),
        "aws_secret_access_key": lambda: _r(rng, B64, 40),
        "github_token": lambda: rng.choice(["ghp_", "gho_", "ghs_", "ghu_"]) + _r(rng, ALNUM, 36),
        "github_fine_grained_token": lambda: f"github_pat_{_r(rng, ALNUM, 22)}_{_r(rng, ALNUM, 59)}",
        "slack_token": lambda: (f"{rng.choice(['xoxb', 'xoxp', 'xoxa'])}-{rng.randrange(10**10, 10**12)}-"
                                f"{rng.randrange(10**10, 10**12)}-{_r(rng, ALNUM, 24)}"),
        "slack_webhook": lambda: (f"https://hooks.slack.com/services/T{_r(rng, UPPER_DIGITS, 8)}/"
                                  f"B{_r(rng, UPPER_DIGITS, 10)}/{_r(rng, ALNUM, 24)}"),
        "stripe_key": lambda: f"{rng.choice(['sk', 'rk'])}_{rng.choice(['live', 'test'])}_{_r(rng, ALNUM, 24)}",
        "openai_key": lambda: rng.choice([
            f"sk-proj-{_r(rng, URLSAFE, 74)}T3BlbkFJ{_r(rng, URLSAFE, 74)}",
            f"sk-{_r(rng, ALNUM, 20)}T3BlbkFJ{_r(rng, ALNUM, 20)}"]),
        "anthropic_key": lambda: f"sk-ant-api03-{_r(rng, URLSAFE, 93)}AA",
        "google_api_key": lambda: "AIza" + _r(rng, URLSAFE, 35),
        "sendgrid_key": lambda: f"SG.{_r(rng, URLSAFE, 22)}.{_r(rng, URLSAFE, 43)}",
        "npm_token": lambda: "npm_" + _r(rng, ALNUM, 36),
        "jwt": lambda: _jwt(rng),
        "private_key": lambda: _pem(rng),
        "url_password": lambda: _r(rng, ALNUM + "!*~", rng.randrange(10, 24)),
        "secret_assignment": lambda: _r(rng, ALNUM + "!#%^&*-_", rng.randrange(14, 40)),
    }
    return makers[kind]()


# how each kind appears in code: (context, template); {s} is the secret, {n} a variable name
_NEUTRAL = ["value", "creds", "x", "cfg_value", "default", "data"]
_SECRET_NAMES = ["password", "db_password", "SECRET_KEY", "client_secret", "apiKey", "auth_token", "access_token",
                 "API_TOKEN", "private_key", "signingKey", "SMTP_PASS", "passphrase"]
_TEMPLATES: dict[str, list[tuple[str, str]]] = {
    "token": [
        ("python", '{n} = "{s}"'), ("python-kwarg", 'client = Client(api_key="{s}", timeout=30)'),
        ("js", "const {n} = '{s}';"), ("json", '  "{n}": "{s}",'), ("yaml", "{n}: {s}"), ("env", "{N}={s}"),
        ("shell", 'export {N}="{s}"'), ("header", 'headers = {{"Authorization": "token {s}"}}'),
        ("dict", 'settings["{n}"] = "{s}"'), ("multiline", 'def connect():\n    key = "{s}"\n    return key'),
    ],
    "url_password": [
        ("python", 'DATABASE_URL = "postgres://app_user:{s}@db.internal:5432/app"'),
        ("env", "REDIS_URL=redis://default:{s}@cache.local:6379/0"),
        ("yaml", "broker: amqp://guest_admin:{s}@rabbit:5672//"),
        ("js", "mongoose.connect('mongodb+srv://svc:{s}@cluster0.abcde.mongodb.net/prod');"),
        ("python-kwarg", 'engine = create_engine("mysql+pymysql://root:{s}@127.0.0.1/shop")'),
    ],
    "private_key": [
        ("python", 'KEY = """{s}"""'), ("raw", "{s}"), ("yaml", "tls_key: |\n  {s}"),
    ],
    "secret_assignment": [
        ("python", '{n} = "{s}"'), ("python-annotated", '{n}: str = "{s}"'), ("js", "const {n} = '{s}';"),
        ("json", '  "{n}": "{s}",'), ("yaml", "{n}: {s}"), ("env", "{N}={s}"), ("kwarg", 'login(user, {n}="{s}")'),
    ],
}


def positives(per_kind: int = 24, seed: int = 1234) -> list[Sample]:
    rng = random.Random(seed)
    out = []
    kinds = ["aws_access_key_id", "aws_secret_access_key", "github_token", "github_fine_grained_token", "slack_token",
             "slack_webhook", "stripe_key", "openai_key", "anthropic_key", "google_api_key", "sendgrid_key",
             "npm_token", "jwt", "private_key", "url_password", "secret_assignment"]
    for kind in kinds:
        templates = _TEMPLATES.get(kind, _TEMPLATES["token"])
        for i in range(per_kind):
            if kind == "aws_secret_access_key":  # only its name tells this one from any 40 characters
                templates = [t for t in _TEMPLATES["token"] if "{n}" in t[1] or "{N}" in t[1]]
            ctx, tmpl = templates[i % len(templates)]
            secret = _secret_of(kind, rng)
            if kind in ("secret_assignment", "aws_secret_access_key"):
                name = rng.choice(_SECRET_NAMES) if kind == "secret_assignment" else rng.choice(
                    ["aws_secret_access_key", "AWS_SECRET_ACCESS_KEY", "awsSecretKey"])
            else:
                name = rng.choice(_NEUTRAL)
            text = tmpl.format(n=name, N=name.upper(), s=secret)
            if kind == "private_key" and ctx == "yaml":
                text = text.replace("\n", "\n  ").rstrip() + "\n"
            out.append(Sample(text, kind, ctx))
    return out


ORDINARY = [
    'api_key = "<YOUR_API_KEY>"', 'API_KEY = os.environ["API_KEY"]', 'token = os.getenv("GITHUB_TOKEN")',
    'password = getpass.getpass("Password: ")', "const apiKey = process.env.OPENAI_API_KEY;",
    'SECRET_KEY = "${SECRET_KEY}"', 'password: "{{ vault_db_password }}"', "DB_PASSWORD=changeme",
    'api_key = "your-api-key-here"', 'token = "REPLACE_ME"', 'client_secret = ""', "password = None",
    'request_id = "123e4567-e89b-12d3-a456-426614174000"', 'run_id = uuid.UUID("9b2f3c1e-7a4d-4e8b-9c6f-2d1a0b3e4f5a")',
    'sha256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"',
    'commit = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"', 'etag = "d41d8cd98f00b204e9800998ecf8427e"',
    '"integrity": "sha512-Jl0pXk3tUOWrhVwRhA/PFuCeaJZqRH2lOHPSJV9o4FvTQm/ZDOVJv1tuoGrlzu0J+oBF1Bg0cDn6iQf2qQh4Q=="',
    'COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b"]',
    "palette = ['#FFFFFF', '#000000', '#FF5733', '#C70039', '#900C3F']",
    "AWS_ACCESS_KEY_ID = 'AKIAIOSFODNN7EXAMPLE'", "aws_secret_access_key = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY'",
    'url = "postgres://user:password@localhost:5432/db"', 'DSN = "postgresql://${DB_USER}:${DB_PASS}@db/app"',
    'url = f"https://{user}:{password}@{host}/"', "token_type = 'bearer'", 'tokenizer = "bert-base-uncased"',
    'password_hash = "pbkdf2_sha256$260000$"', "max_tokens = 4096", 'api_key_header = "X-API-Key"',
    'TOKEN_URL = "https://oauth2.googleapis.com/token"', 'password_field = "password"',
    "if not token:\n    raise ValueError('token is required')", 'headers = {"Authorization": f"Bearer {token}"}',
    'secret_name = "prod/db/credentials"', 'auth = ("user", os.environ["PASS"])', "key = keys[0]",
    'CACHE_KEY = "user:{id}:profile"', 'sort_key = "created_at"', 'private_key = load_pem_private_key(data, None)',
    'if line.startswith("-----BEGIN PRIVATE KEY-----"):', 'pem_header = "-----BEGIN RSA PRIVATE KEY-----"',
    "token = next(tokens)", "password = self.password or ''", 'key_id = "kid-2024-01"',
    "jwt_token = jwt.encode(payload, settings.SECRET_KEY, algorithm='HS256')",
    'label = "Enter your password"', 'session_key = request.session.session_key',
    "access_token = response.json()['access_token']", "csrf_token = get_token(request)",
]


def _real_files(site: Path) -> list[Path]:
    files: list[Path] = []
    for pkg in NEGATIVE_PACKAGES:
        d = site / pkg
        if d.is_dir():
            files += sorted(p for p in d.rglob("*.py") if "__pycache__" not in p.parts)
    return files


def negatives(n_windows: int = 3000, seed: int = 99, site: Path | None = None) -> list[Sample]:
    """Windows of 1-4 lines from real source files, every line of them that names a secret-like thing, and the
    ordinary-code list."""
    if site is None:
        import requests

        site = Path(requests.__file__).resolve().parent.parent
    rng = random.Random(seed)
    files = _real_files(site)
    out = [Sample(t, "", "ordinary") for t in ORDINARY]
    texts: dict[Path, list[str]] = {}
    for p in files:
        try:
            texts[p] = p.read_text(encoding="utf-8").split("\n")
        except (OSError, UnicodeDecodeError):
            continue
    names = sorted(texts)
    for _ in range(n_windows):
        p = rng.choice(names)
        lines = texts[p]
        a = rng.randrange(len(lines))
        w = "\n".join(lines[a : a + rng.randrange(1, 5)])
        if w.strip():
            out.append(Sample(w, "", f"{p.relative_to(site)}"))
    for p in names:  # hard negatives: code that handles passwords, tokens and keys
        for ln in texts[p]:
            low = ln.lower()
            if ("=" in ln or ":" in ln) and any(w in low for w in ("password", "token", "secret", "api_key")):
                out.append(Sample(ln.strip(), "", f"{p.relative_to(site)}"))
    return out


def evaluate(scanner: Any, samples: list[Sample] | None = None) -> dict[str, Any]:
    """Per kind: positives found (recall); over the negatives: false positives. Returns a dict with 'kinds'
    (kind -> {n, found}), 'negatives', 'false_positives', 'fp_examples', 'precision', 'recall', 'fp_rate'."""
    samples = samples if samples is not None else positives() + negatives()
    kinds: dict[str, dict[str, int]] = {}
    fps: list[str] = []
    n_neg = tp = 0
    for s in samples:
        hit = scanner.find(s.text) is not None
        if s.kind:
            k = kinds.setdefault(s.kind, {"n": 0, "found": 0})
            k["n"] += 1
            k["found"] += hit
            tp += hit
        else:
            n_neg += 1
            if hit:
                fps.append(f"{s.source}: {s.text[:120]!r}")
    n_pos = sum(k["n"] for k in kinds.values())
    return {"kinds": kinds, "negatives": n_neg, "false_positives": len(fps), "fp_examples": fps[:20],
            "precision": tp / (tp + len(fps)) if tp + len(fps) else 1.0, "recall": tp / n_pos if n_pos else 1.0,
            "fp_rate": len(fps) / n_neg if n_neg else 0.0, "blocked": tp + len(fps), "samples": len(samples)}


def format_table(scores: dict[str, Any]) -> str:
    lines = [f"{'kind':28s}{'secrets':>8s}{'found':>7s}{'recall':>8s}"]
    for kind, k in sorted(scores["kinds"].items()):
        lines.append(f"{kind:28s}{k['n']:>8d}{k['found']:>7d}{k['found'] / k['n']:>8.1%}")
    lines.append(f"{'all formats':28s}{sum(k['n'] for k in scores['kinds'].values()):>8d}"
                 f"{sum(k['found'] for k in scores['kinds'].values()):>7d}{scores['recall']:>8.1%}")
    lines.append(f"negatives {scores['negatives']} (real source windows, secret-naming lines, ordinary code): "
                 f"false positives {scores['false_positives']} ({scores['fp_rate']:.2%}); "
                 f"precision {scores['precision']:.1%}")
    return "\n".join(lines)
