"""Logs from the systemd journal: `journalctl -u UNIT -n N -o short-iso --no-pager` on this machine."""

from __future__ import annotations

import subprocess

from tools.backend import BackendError
from tools.fleet import MAX_LOG_LINE_CHARS
from tools.sources import JournaldSource

JOURNALCTL = "journalctl"


def journalctl_command(unit: str, lines: int) -> list[str]:
    return [JOURNALCTL, "-u", unit, "-n", str(lines), "-o", "short-iso", "--no-pager"]


class JournaldLogs:
    """One unit's recent journal lines; journalctl missing, failing or slow raises BackendError."""

    def __init__(self, source: JournaldSource) -> None:
        self._source = source

    def logs(self, lines: int) -> list[str]:
        command = journalctl_command(self._source.unit, lines)
        try:
            done = subprocess.run(command, capture_output=True, timeout=self._source.timeout_s, check=False)
        except FileNotFoundError:
            raise BackendError("journalctl not found: journald logs need systemd's journalctl") from None
        except subprocess.TimeoutExpired:
            raise BackendError(f"journalctl -u {self._source.unit} timed out after "
                               f"{self._source.timeout_s:g}s") from None
        except OSError as exc:
            raise BackendError(f"cannot run journalctl: {exc.strerror or exc}") from None
        if done.returncode != 0:
            problem = done.stderr.decode("utf-8", errors="replace").strip().splitlines()
            raise BackendError(f"journalctl -u {self._source.unit} failed (exit {done.returncode}): "
                               f"{problem[0] if problem else 'no message'}")
        text = done.stdout.decode("utf-8", errors="replace").replace("\x00", "")
        kept = [line[:MAX_LOG_LINE_CHARS] for line in text.splitlines()
                if line.strip() and not line.startswith("-- ")]
        return kept[-lines:]
