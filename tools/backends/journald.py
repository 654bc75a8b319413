"""Logs from the systemd journal: `journalctl -u UNIT -n N -o short-iso --no-pager` on this machine."""

from __future__ import annotations

from it_support_agent.incident.fleet import MAX_LOG_LINE_CHARS
from it_support_agent.incident.sources import JournaldSource
from it_support_agent.tools.backends.commands import run_command

JOURNALCTL = "journalctl"


def journalctl_command(unit: str, lines: int) -> list[str]:
    return [JOURNALCTL, "-u", unit, "-n", str(lines), "-o", "short-iso", "--no-pager"]


class JournaldLogs:
    """One unit's recent journal lines; journalctl missing, failing or slow raises BackendError."""

    def __init__(self, source: JournaldSource) -> None:
        self._source = source

    def logs(self, lines: int) -> list[str]:
        output = run_command(
            journalctl_command(self._source.unit, lines),
            f"journalctl -u {self._source.unit}",
            self._source.timeout_s,
            "journalctl not found: journald logs need systemd's journalctl",
        )
        text = output.decode("utf-8", errors="replace").replace("\x00", "")
        kept = [line[:MAX_LOG_LINE_CHARS] for line in text.splitlines() if line.strip() and not line.startswith("-- ")]
        return kept[-lines:]
