"""Sandbox modes and OS layers, named once for the package and for its callers (config, CLI)."""

from __future__ import annotations

from typing import Literal, get_args

# What a command or a file tool may touch. Tightest first: config relies on the order to pick the tighter one.
SandboxMode = Literal["read-only", "workspace-write", "full-access"]
SANDBOX_MODES: tuple[SandboxMode, ...] = get_args(SandboxMode)

# The OS layer a command runs under. Strongest first: detection falls from one to the next.
SandboxLevel = Literal["bubblewrap", "landlock", "none"]
SANDBOX_LEVELS: tuple[SandboxLevel, ...] = get_args(SandboxLevel)

# Who decides when the policy would ask. Tightest first (config picks the tighter of user and project). In plan
# mode nothing that changes anything runs (the policy refuses it and says why): the model explores and plans.
ApprovalMode = Literal["plan", "ask", "auto-edit", "auto"]
APPROVAL_MODES: tuple[ApprovalMode, ...] = get_args(ApprovalMode)
