"""Alert intake: `serve` accepts Alertmanager webhooks on POST /alerts and runs one incident thread per alert.

This module owns the HTTP side (validation, bounded reads, /healthz), the deduplicating queue, the worker thread
that runs incidents one at a time and survives any failure of a run, and the shutdown: queued incidents are
dropped (Alertmanager sends them again), the running one is waited for.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import queue
import signal
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from langchain_core.runnables import RunnableConfig

from it_support_agent.graph.app.alerts import (
    DEFAULT_SERVER_LABEL,
    Alert,
    AlertGroup,
    PayloadError,
    incident_text,
    parse_payload,
    server_for,
)
from it_support_agent.graph.app.alerts import thread_id as alert_thread_id
from it_support_agent.graph.app.checkpoints import open_checkpointer
from it_support_agent.graph.app.options import EXIT_OK, context_from_args
from it_support_agent.incident.context import Context
from it_support_agent.incident.fleet import Fleet
from it_support_agent.incident.matching import ServerIndex
from it_support_agent.incident.state import IncidentInput
from it_support_agent.nodes.escalate import file_ticket, new_ticket
from it_support_agent.tools import audit
from it_support_agent.tools.infrastructure import open_infrastructure

ALERTS_PATH = "/alerts"
HEALTH_PATH = "/healthz"
MAX_BODY_BYTES = 1024 * 1024
REQUEST_TIMEOUT_S = 10.0
STOP_WAIT_S = 900.0
STOP_LOG_EVERY_S = 30.0
IDLE_POLL_S = 0.5
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class IncidentTask:
    """One firing alert turned into an incident run."""

    thread_id: str
    incident: str
    server_id: str | None
    alertname: str


class AlertIntake:
    """Deduplicates firing alerts into incident threads and runs them, one at a time, on a worker thread."""

    def __init__(self, context: Context, server_label: str = DEFAULT_SERVER_LABEL) -> None:
        from it_support_agent.graph.builder import compile_graph

        self._context = context
        self._label = server_label
        self._checkpointer = open_checkpointer(context.state_path)
        self._app = compile_graph(self._checkpointer)
        self._queue: queue.Queue[IncidentTask | None] = queue.Queue()
        self._claimed: set[str] = set()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._current: str | None = None
        self._worker = threading.Thread(target=self._work, name="alert-intake-worker", daemon=False)

    def start(self) -> None:
        self._worker.start()

    def stop(self) -> None:
        """Drop the queued incidents (not started: Alertmanager sends them again) and wait for the one running.

        A restart in progress is never cut off: after STOP_WAIT_S this returns, but the worker is no daemon thread,
        so the process still exits only when the run has ended.
        """
        self._stopping.set()
        self._drop_queued()
        self._queue.put(None)
        deadline = time.monotonic() + STOP_WAIT_S
        while self._worker.is_alive() and (left := deadline - time.monotonic()) > 0:
            self._worker.join(min(STOP_LOG_EVERY_S, left))
            if self._worker.is_alive():
                log.warning("stopping: waiting for incident %s to finish", self._current)
        if self._worker.is_alive():
            log.error("incident %s still running after %gs; the process exits when it ends", self._current, STOP_WAIT_S)

    def alive(self) -> bool:
        """Whether the worker that runs incidents is running."""
        return self._worker.is_alive()

    def pending(self) -> int:
        """Alerts accepted whose run has not finished yet."""
        with self._lock:
            return len(self._claimed)

    def submit(self, group: AlertGroup) -> dict[str, Any]:
        """Queue each new firing alert; repeats and resolved alerts are acknowledged without a run.

        Every alert of the batch is turned into its task before any is queued, so a bad one queues nothing.
        """
        infra = open_infrastructure(self._context.fleet_path, self._context.state_path)
        tasks = [(alert, self._task(group, alert, infra.fleet, infra.index)) for alert in group.alerts]
        answer: dict[str, list[Any]] = {"accepted": [], "duplicates": [], "resolved": []}
        for alert, task in tasks:
            if alert.status == "resolved":
                answer["resolved"].append(task.thread_id)
                audit.record(self._context.state_path, task.thread_id, "alert_resolved", labels=dict(alert.labels))
                continue
            if not self._claim(task.thread_id):
                answer["duplicates"].append(task.thread_id)
                continue
            audit.record(
                self._context.state_path,
                task.thread_id,
                "alert_received",
                server_id=task.server_id,
                alertname=task.alertname,
                group_key=group.group_key,
            )
            self._queue.put(task)
            answer["accepted"].append(
                {"thread_id": task.thread_id, "server_id": task.server_id, "alertname": task.alertname}
            )
        return answer

    def _task(self, group: AlertGroup, alert: Alert, fleet: Fleet, index: ServerIndex) -> IncidentTask:
        server_id = server_for(alert.labels.get(self._label, ""), fleet, index)
        return IncidentTask(
            alert_thread_id(group.group_key, alert),
            incident_text(alert, server_id, self._label),
            server_id,
            alert.labels.get("alertname", ""),
        )

    def _claim(self, thread_id: str) -> bool:
        """True when no run of this thread is queued, running or done (done ones live in the checkpoints)."""
        with self._lock:
            if thread_id in self._claimed:
                return False
            if self._checkpointer.get_tuple({"configurable": {"thread_id": thread_id}}) is not None:
                return False
            self._claimed.add(thread_id)
            return True

    def _release(self, thread_id: str) -> None:
        with self._lock:
            self._claimed.discard(thread_id)

    def _work(self) -> None:
        """Run queued incidents until stopped; nothing a run does can end this loop.

        The thread is not a daemon, so the interpreter never kills a run mid-restart at exit; an idle worker
        notices a program that ends without stop() and ends too.
        """
        while (task := self._next()) is not None:
            if self._stopping.is_set() or not threading.main_thread().is_alive():
                self._drop(task)
                continue
            self._current = task.thread_id
            try:
                self._run(task)
            except Exception as exc:  # noqa: BLE001 - the worker outlives any failure of one incident
                self._note_failure(task, "worker", exc)
            finally:
                self._current = None
                self._release(task.thread_id)

    def _next(self) -> IncidentTask | None:
        """The next queued incident; None once stopped, or once the program's main thread has ended."""
        while True:
            try:
                return self._queue.get(timeout=IDLE_POLL_S)
            except queue.Empty:
                if not threading.main_thread().is_alive():
                    return None

    def _drop_queued(self) -> None:
        while True:
            try:
                task = self._queue.get_nowait()
            except queue.Empty:
                return
            if task is not None:
                self._drop(task)

    def _drop(self, task: IncidentTask) -> None:
        """A queued incident not started before shutdown: forgotten, so Alertmanager's re-send runs it."""
        self._release(task.thread_id)
        log.info(
            "stopping: dropped queued incident %s (%s); Alertmanager sends it again", task.thread_id, task.alertname
        )
        with contextlib.suppress(Exception):
            audit.record(
                self._context.state_path,
                task.thread_id,
                "alert_dropped",
                alertname=task.alertname,
                reason="serve stopped before the run started; Alertmanager sends the alert again",
            )

    def _run(self, task: IncidentTask) -> None:
        config: RunnableConfig = {"configurable": {"thread_id": task.thread_id}}
        # The server comes from the alert's label only (None when it names no fleet server): the free text of
        # annotations is never searched for one.
        payload: IncidentInput = {"incident": task.incident, "alert_server": task.server_id}
        try:
            result = self._app.invoke(payload, config, context=self._context, durability="sync")
        except Exception as exc:  # noqa: BLE001 - one failed run must not stop the intake
            self._note_failure(task, "run", exc)
            try:
                self._fallback_ticket(task, exc)
            except Exception as problem:  # noqa: BLE001 - nor may a failed fallback ticket
                self._note_failure(task, "fallback_ticket", problem)
            return
        log.info(
            "incident %s (%s on %s): %s",
            task.thread_id,
            task.alertname,
            task.server_id,
            result.get("outcome", "awaiting approval"),
        )

    def _note_failure(self, task: IncidentTask, stage: str, exc: BaseException) -> None:
        log.error("incident %s: %s failed", task.thread_id, stage, exc_info=exc)
        with contextlib.suppress(Exception):
            audit.record(self._context.state_path, task.thread_id, "intake_error", stage=stage, error=repr(exc)[:500])

    def _fallback_ticket(self, task: IncidentTask, exc: Exception) -> None:
        """A run that crashed still reaches a human: the alert as received, and why the agent could not handle it."""
        ticket = new_ticket(
            f"{task.thread_id}:intake-failure",
            task.thread_id,
            server_id=task.server_id,
            severity="high",
            reason=f"the agent failed while handling this alert: {type(exc).__name__}",
            summary=f"alert {task.alertname} could not be diagnosed automatically; please look",
            incident=task.incident,
        )
        file_ticket(self._context.state_path, ticket)


class AlertServer(ThreadingHTTPServer):
    """The HTTP side: each request thread hands payloads to the intake."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], intake: AlertIntake) -> None:
        super().__init__(address, _Handler)
        self.intake = intake

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"


class _Handler(BaseHTTPRequestHandler):
    server: AlertServer
    timeout = REQUEST_TIMEOUT_S  # a client that stalls mid-request gives its thread back after this long

    def do_GET(self) -> None:
        if self.path != HEALTH_PATH:
            self._answer(404, {"error": f"unknown path {self.path}; POST alerts to {ALERTS_PATH}"})
            return
        intake = self.server.intake
        alive = intake.alive()
        body: dict[str, Any] = {
            "status": "ok" if alive else "failing",
            "pending": intake.pending(),
            "worker_alive": alive,
        }
        if not alive:
            body["error"] = "the incident worker is not running; restart serve"
        self._answer(200 if alive else 503, body)

    def do_POST(self) -> None:
        if self.path != ALERTS_PATH:
            self._answer(404, {"error": f"unknown path {self.path}; POST alerts to {ALERTS_PATH}"})
            return
        body = self._body()
        if body is None:
            return
        try:
            group = parse_payload(body)
        except PayloadError as exc:
            self._answer(400, {"error": str(exc)})
            return
        if not self.server.intake.alive():
            self._answer(503, {"error": "the incident worker is not running; alerts are not taken"})
            return
        try:
            accepted = self.server.intake.submit(group)
        except Exception as exc:  # noqa: BLE001 - e.g. a broken fleet file: Alertmanager retries on 5xx
            log.exception("cannot take alerts")
            self._answer(500, {"error": f"cannot take alerts: {exc}"})
            return
        self._answer(202, accepted)

    def _body(self) -> bytes | None:
        """The request body, or None after answering why there is none to take."""
        length = (self.headers.get("Content-Length") or "").strip()
        if not length:
            self._answer(411, {"error": "Content-Length is required"})
            return None
        if not (length.isascii() and length.isdigit()):
            self._answer(400, {"error": "Content-Length must be a decimal number of bytes"})
            return None
        if int(length) > MAX_BODY_BYTES:
            self._answer(413, {"error": f"payload larger than {MAX_BODY_BYTES} bytes"})
            return None
        try:
            body = self.rfile.read(int(length))
        except OSError:  # the client stalled past the handler's timeout, or went away
            self.close_connection = True
            with contextlib.suppress(OSError):
                self._answer(408, {"error": f"the body did not arrive within {self.timeout:g} s"})
            return None
        if len(body) < int(length):
            self.close_connection = True
            self._answer(400, {"error": "body shorter than its Content-Length"})
            return None
        return body

    def _answer(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        log.info("%s %s", self.address_string(), format % args)


@contextlib.contextmanager
def serving(
    context: Context, host: str = "127.0.0.1", port: int = 0, server_label: str = DEFAULT_SERVER_LABEL
) -> Iterator[AlertServer]:
    """Run the intake and its HTTP server in background threads until the block ends."""
    intake = AlertIntake(context, server_label)
    intake.start()
    server = AlertServer((host, port), intake)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.1}, name="alert-intake-http", daemon=True
    )
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        intake.stop()


def serve_forever(args: argparse.Namespace) -> int:
    """The `serve` command: listen until SIGTERM or Ctrl-C."""
    context = context_from_args(args)  # refuses a bad fleet, policy, model or sink configuration with a one-line error
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with serving(context, args.host, args.port, args.server_label or DEFAULT_SERVER_LABEL) as server:
        print(
            f"listening on {server.url}{ALERTS_PATH} (fleet {context.fleet_path}, state {context.state_path})",
            file=sys.stderr,
            flush=True,
        )
        with contextlib.suppress(KeyboardInterrupt):
            stop.wait()
    return EXIT_OK
