"""Running a local command for a backend: bounded time, and every failure as one clear BackendError."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence

from it_support_agent.tools.backends.base import BackendError


class CommandTimeout(BackendError):
    """The command was started but did not finish in time: whatever it does may still be happening."""


def run_command(command: Sequence[str], label: str, timeout_s: float, missing: str) -> bytes:
    """The command's stdout; BackendError naming `label` when it is missing, slow or fails."""
    try:
        done = subprocess.run(list(command), capture_output=True, timeout=timeout_s, check=False)
    except FileNotFoundError:
        raise BackendError(missing) from None
    except subprocess.TimeoutExpired:
        raise CommandTimeout(f"{label} timed out after {timeout_s:g}s") from None
    except OSError as exc:
        raise BackendError(f"cannot run {command[0]}: {exc.strerror or exc}") from None
    if done.returncode != 0:
        problem = done.stderr.decode("utf-8", errors="replace").strip().splitlines()
        raise BackendError(f"{label} failed (exit {done.returncode}): {problem[0] if problem else 'no message'}")
    return done.stdout
