"""Ghostline: a terminal coding agent (CLI, config, providers, loop, sessions, front ends)."""

__version__ = "0.1.0"
