"""Restarts through supervisord's XML-RPC API (HTTP or unix socket): stop, start, verify PID and state."""

from __future__ import annotations

import http.client
import os
import socket
import xmlrpc.client
from typing import Any
from urllib.parse import quote, urlsplit

from tools.backend import BackendError
from tools.sources import SupervisordSource

# supervisor.xmlrpc.Faults
BAD_NAME = 10
ALREADY_STARTED = 60
NOT_RUNNING = 70


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
        return xmlrpc.client.ServerProxy(f"http://{credentials}localhost/RPC2",
                                         transport=_UnixTransport(parts.path, source.timeout_s))
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
        self._call(proxy.supervisor.stopProcess, NOT_RUNNING)
        self._call(proxy.supervisor.startProcess, ALREADY_STARTED)
        after = self._info(proxy)
        if after.get("statename") != "RUNNING":
            detail = after.get("spawnerr") or after.get("description") or "no detail"
            raise BackendError(f"supervisord process {self._process} is {after.get('statename')} "
                               f"after the restart ({detail})")
        if after.get("pid") == before.get("pid"):
            raise BackendError(f"supervisord process {self._process} kept PID {after.get('pid')}: "
                               "not restarted")
        return (f"restarted {self._process} through supervisord: PID {before.get('pid') or 'none'} -> "
                f"{after.get('pid')}, RUNNING")

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
            raise BackendError(f"supervisord at {self._source.url} answered {exc.errcode} {exc.errmsg}{hint}"
                               ) from None
        except (OSError, http.client.HTTPException) as exc:
            raise BackendError(f"supervisord unreachable at {self._source.url}: {exc}") from None
