"""Environment for child processes: everything that looks like a secret is removed."""

from __future__ import annotations

import fnmatch
import os

# Matched case-insensitively against variable names.
SECRET_PATTERNS = (
    "*_API_KEY", "*_APIKEY", "*API_KEY*", "*_KEY", "*_KEY_*", "*TOKEN*", "*SECRET*", "*PASSWORD*", "*PASSWD*",
    "*CREDENTIAL*", "*PRIVATE*", "*_AUTH", "*_AUTH_*", "*SESSION_KEY*", "*COOKIE*",
    "AWS_*", "AZURE_*", "GOOGLE_APPLICATION_CREDENTIALS", "GCP_*", "CLOUDSDK_*", "ANTHROPIC_*", "OPENAI_*",
    "HF_*", "HUGGING_FACE_*", "GH_*", "GITHUB_*", "GITLAB_*", "NPM_CONFIG__AUTH*", "NPM_TOKEN", "PYPI_*",
    "TWINE_*", "DOCKER_AUTH_CONFIG", "SSH_AUTH_SOCK", "SSH_AGENT_PID", "GPG_AGENT_INFO", "KUBECONFIG",
    "VAULT_*", "DATABASE_URL", "*_DSN", "SENTRY_*", "SLACK_*", "STRIPE_*", "TF_VAR_*",
)


def is_secret_name(name: str) -> bool:
    up = name.upper()
    return any(fnmatch.fnmatchcase(up, pat) for pat in SECRET_PATTERNS)


def scrub_env(base: dict[str, str] | None = None, extra: dict[str, str] | None = None) -> dict[str, str]:
    """A copy of `base` (default os.environ) without secrets, plus `extra` (trusted, not scrubbed)."""
    src = os.environ if base is None else base
    env = {k: v for k, v in src.items() if not is_secret_name(k)}
    if extra:
        env.update(extra)
    return env
