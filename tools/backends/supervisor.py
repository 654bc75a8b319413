"""Restarts through supervisord's XML-RPC API (HTTP or unix socket): stop, start, verify PID and state.

This module owns the RPC transport (timeouts, unix sockets, credentials) and the restart sequence, including what
happens when supervisord stops answering after the stop was sent: the outcome is unknown (RestartOutcomeUnknown),
the process is looked at once more and, if it was left STOPPED, started once.
"""

from __future__ import annotations

import http.client
import os
import socket
import time
import xmlrpc.client
from typing import Any
from urllib.parse import quote, urlsplit

from it_support_agent.incident.sources import SupervisordSource
from it_support_agent.tools.backends.base import BackendError, RestartOutcomeUnknown

# supervisor.xmlrpc.Faults
BAD_NAME = 10
ALREADY_STARTED = 60
NOT_RUNNING = 70
POLL_S = 0.25


class _TransportError(BackendError):
    """supervisord could not be talked to."""


class _Unreachable(_TransportError):
    """The request never reached supervisord (connection refused, no socket, unknown host)."""


class _NoAnswer(_TransportError):
    """supervisord may have received a request but its answer never came (timeout, lost connection, garbage)."""


class _HTTPTransport(xmlrpc.client.Transport):
    """The stock transport with a socket timeout."""

    def __init__(self, timeout_s: float) -> None:
        super().__init__()
        self._timeout_s = timeout_s

    def make_connection(self, host: Any) -> http.client.HTTPConnection:
        connection = super().make_connection(host)
        connection.timeout = self._timeout_s
        return connection


class _HTTPSTransport(xmlrpc.client.SafeTransport):
    """The stock TLS transport with a socket timeout."""

    def __init__(self, timeout_s: float) -> None:
        super().__init__()
        self._timeout_s = timeout_s

    def make_connection(self, host: Any) -> http.client.HTTPSConnection:
        connection = super().make_connection(host)
        connection.timeout = self._timeout_s
        return connection


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, socket_path: str, timeout_s: float) -> None:
        super().__init__("localhost", timeout=timeout_s)
        self._socket_path = socket_path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self._socket_path)
        except OSError:
            sock.close()
            raise
        self.sock = sock


class _UnixTransport(xmlrpc.client.Transport):
    """HTTP over supervisord's unix socket; credentials still travel as basic auth."""

    def __init__(self, socket_path: str, timeout_s: float) -> None:
        super().__init__()
        self._socket_path = socket_path
        self._timeout_s = timeout_s

    def make_connection(self, host: Any) -> http.client.HTTPConnection:
        _, self._extra_headers, _ = self.get_host_info(host)
        connection = _UnixConnection(self._socket_path, self._timeout_s)
        self._connection = host, connection
        return connection


def server_proxy(source: SupervisordSource) -> xmlrpc.client.ServerProxy:
    """A proxy to supervisord's RPC endpoint, with credentials when configured."""
    password = os.environ.get(source.password_env, "") if source.password_env else source.password
    credentials = f"{quote(source.username, safe='')}:{quote(password, safe='')}@" if source.username else ""
    parts = urlsplit(source.url)
    if parts.scheme == "unix":
        return xmlrpc.client.ServerProxy(
            f"http://{credentials}localhost/RPC2", transport=_UnixTransport(parts.path, source.timeout_s)
        )
    path = parts.path if parts.path not in ("", "/") else "/RPC2"
    url = f"{parts.scheme}://{credentials}{parts.netloc}{path}"
    secure = parts.scheme == "https"
    transport = _HTTPSTransport(source.timeout_s) if secure else _HTTPTransport(source.timeout_s)
    return xmlrpc.client.ServerProxy(url, transport=transport)


class SupervisordRestarter:
    """Restarts one supervisord program; succeeds only when it is RUNNING again under a new PID."""

    def __init__(self, source: SupervisordSource, process: str) -> None:
        self._source = source
        self._process = process
        self.settle_s = source.settle_s

    def restart(self) -> str:
        proxy = server_proxy(self._source)
        before = self._info(proxy)
        try:
            self._call(proxy.supervisor.stopProcess, NOT_RUNNING)
        except _NoAnswer as exc:  # the stop may be under way; unreachable means it was never sent
            raise RestartOutcomeUnknown(self._after_lost_answer("stopProcess", exc)) from None
        stage = "startProcess"
        try:
            self._call(proxy.supervisor.startProcess, ALREADY_STARTED)
            stage = "getProcessInfo"
            after = self._info(proxy)
        except _TransportError as exc:  # once stopped, any lost contact leaves the outcome unknown
            raise RestartOutcomeUnknown(self._after_lost_answer(stage, exc)) from None
        if after.get("statename") != "RUNNING":
            detail = after.get("spawnerr") or after.get("description") or "no detail"
            raise BackendError(
                f"supervisord process {self._process} is {after.get('statename')} after the restart ({detail})"
            )
        if after.get("pid") == before.get("pid"):
            raise BackendError(f"supervisord process {self._process} kept PID {after.get('pid')}: not restarted")
        return (
            f"restarted {self._process} through supervisord: PID {before.get('pid') or 'none'} -> "
            f"{after.get('pid')}, RUNNING"
        )

    def _after_lost_answer(self, stage: str, cause: BackendError) -> str:
        """What is known after an answer was lost mid-restart: the process's state, and whether it was started."""
        try:
            found = self._recover()
        except BackendError as problem:
            found = f"checking on it afterwards failed too ({problem})"
        return (
            f"outcome unknown: supervisord did not answer {stage} for {self._process} after the stop was sent "
            f"({cause}); {found}. Not retrying; check the process. restart.timeout_s "
            f"({self._source.timeout_s:g} s) must exceed the program's stopwaitsecs"
        )

    def _recover(self) -> str:
        """Look once more (waiting out STOPPING for up to timeout_s); a process left STOPPED is started once."""
        proxy = server_proxy(self._source)
        deadline = time.monotonic() + self._source.timeout_s
        info = self._info(proxy)
        while info.get("statename") == "STOPPING" and time.monotonic() < deadline:
            time.sleep(POLL_S)
            info = self._info(proxy)
        if info.get("statename") != "STOPPED":
            return f"it is {info.get('statename')} (PID {info.get('pid') or 'none'}), so it was not started again"
        self._call(proxy.supervisor.startProcess, ALREADY_STARTED)
        info = self._info(proxy)
        return f"it was found STOPPED and started once: now {info.get('statename')} (PID {info.get('pid') or 'none'})"

    def _info(self, proxy: xmlrpc.client.ServerProxy) -> dict[str, Any]:
        info = self._call(proxy.supervisor.getProcessInfo)
        if not isinstance(info, dict):
            raise BackendError(f"supervisord gave no process info for {self._process}")
        return info

    def _call(self, method: Any, tolerated: int | None = None) -> Any:
        """One RPC on the process; a tolerated fault (already stopped, already started) is not an error."""
        arguments = (self._process,) if tolerated is None else (self._process, True)
        try:
            return method(*arguments)
        except xmlrpc.client.Fault as fault:
            if fault.faultCode == tolerated:
                return None
            if fault.faultCode == BAD_NAME:
                raise BackendError(f"supervisord has no process named {self._process!r}") from None
            raise BackendError(f"supervisord refused for {self._process}: {fault.faultString}") from None
        except xmlrpc.client.ProtocolError as exc:
            hint = " (check username and password)" if exc.errcode == 401 else ""
            raise BackendError(f"supervisord at {self._source.url} answered {exc.errcode} {exc.errmsg}{hint}") from None
        except (ConnectionRefusedError, FileNotFoundError, socket.gaierror) as exc:  # the request never left
            raise _Unreachable(f"supervisord unreachable at {self._source.url}: {exc}") from None
        except (OSError, http.client.HTTPException) as exc:
            raise _NoAnswer(
                f"no answer from supervisord at {self._source.url}: {str(exc) or type(exc).__name__}"
            ) from None
        except Exception as exc:  # noqa: BLE001 - e.g. a garbled XML answer: treated like no answer
            raise _NoAnswer(f"unreadable answer from supervisord at {self._source.url}: {type(exc).__name__}") from None
