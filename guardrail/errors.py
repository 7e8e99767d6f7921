"""Exception types: every error a user can cause carries a one-line, actionable message."""

from __future__ import annotations

__all__ = ["ConfigError", "GuardrailError", "ModelLoadError", "PolicyError"]


class GuardrailError(Exception):
    """Base class; the CLI prints ``str(exc)`` as one line and exits non-zero."""


class ConfigError(GuardrailError):
    """Bad configuration detected at start-up."""


class ModelLoadError(GuardrailError):
    """The classifier's files are missing, corrupt or do not match their checksums."""


class PolicyError(ConfigError):
    """A policy file is invalid. ``problems`` holds ``FILE:LINE:COL: message`` lines."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems) if self.problems else "invalid policy")
