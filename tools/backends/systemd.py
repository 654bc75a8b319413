"""Restarts through systemd on this machine: `systemctl restart UNIT`, verified by state and main PID."""

from __future__ import annotations

from it_support_agent.incident.sources import SystemdSource
from it_support_agent.tools.backends.base import BackendError, RestartOutcomeUnknown
from it_support_agent.tools.backends.commands import CommandTimeout, run_command

SYSTEMCTL = "systemctl"


class SystemdRestarter:
    """Restarts one unit; succeeds only when it is active again (under a new main PID when it has one)."""

    def __init__(self, source: SystemdSource, unit: str) -> None:
        self._source = source
        self._unit = unit
        self.settle_s = source.settle_s

    def restart(self) -> str:
        before = self._show()
        try:
            self._systemctl("restart", self._unit)
            after = self._show()
        except CommandTimeout as exc:
            raise RestartOutcomeUnknown(
                f"outcome unknown: {exc}; the unit may be restarting, stopped or running (check `systemctl status`)"
            ) from None
        if after.get("ActiveState") != "active":
            raise BackendError(
                f"unit {self._unit} is {after.get('ActiveState', 'unknown')} "
                f"({after.get('SubState', '?')}) after the restart"
            )
        old_pid, new_pid = before.get("MainPID", "0"), after.get("MainPID", "0")
        if new_pid != "0" and new_pid == old_pid:
            raise BackendError(f"unit {self._unit} kept main PID {new_pid}: not restarted")
        return f"restarted {self._unit} through systemd: main PID {old_pid} -> {new_pid}, active"

    def _show(self) -> dict[str, str]:
        output = self._systemctl("show", "-p", "ActiveState", "-p", "SubState", "-p", "MainPID", self._unit)
        pairs = (line.split("=", 1) for line in output.splitlines() if "=" in line)
        return {key.strip(): value.strip() for key, value in pairs}

    def _systemctl(self, *arguments: str) -> str:
        output = run_command(
            [SYSTEMCTL, *arguments],
            f"systemctl {arguments[0]} {self._unit}",
            self._source.timeout_s,
            "systemctl not found: systemd restarts need systemd on this machine",
        )
        return output.decode("utf-8", errors="replace")
