"""Alert intake: `serve` accepts Alertmanager webhooks on POST /alerts and runs one incident thread per alert."""

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

from graph.alerts import DEFAULT_SERVER_LABEL, AlertGroup, PayloadError, incident_text, parse_payload, server_for
from graph.alerts import thread_id as alert_thread_id
from graph.checkpoints import open_checkpointer
from graph.context import Context
from graph.state import IncidentInput
from nodes.escalate import ticket_id
from tools import audit
from tools.backend import open_infrastructure
from tools.outbox import TicketDesk

ALERTS_PATH = "/alerts"
HEALTH_PATH = "/healthz"
MAX_BODY_BYTES = 1024 * 1024
STOP_WAIT_S = 60.0
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
        from graph.builder import builder

        self._context = context
        self._label = server_label
        self._checkpointer = open_checkpointer(context.state_path)
        self._app = builder.compile(checkpointer=self._checkpointer, name="it-support-agent")
        self._queue: queue.Queue[IncidentTask | None] = queue.Queue()
        self._claimed: set[str] = set()
        self._lock = threading.Lock()
        self._worker = threading.Thread(target=self._work, name="alert-intake-worker", daemon=True)

    def start(self) -> None:
        self._worker.start()

    def stop(self) -> None:
        """Finish the incident in progress (queued ones are dropped: Alertmanager sends them again)."""
        self._queue.put(None)
        self._worker.join(STOP_WAIT_S)

    def pending(self) -> int:
        """Alerts accepted whose run has not finished yet."""
        with self._lock:
            return len(self._claimed)

    def submit(self, group: AlertGroup) -> dict[str, Any]:
        """Queue each new firing alert; repeats and resolved alerts are acknowledged without a run."""
        infra = open_infrastructure(self._context.fleet_path, self._context.state_path)
        answer: dict[str, list[Any]] = {"accepted": [], "duplicates": [], "resolved": []}
        for alert in group.alerts:
            thread_id = alert_thread_id(group.group_key, alert)
            if alert.status == "resolved":
                answer["resolved"].append(thread_id)
                audit.record(self._context.state_path, thread_id, "alert_resolved", labels=dict(alert.labels))
                continue
            server_id = server_for(alert.labels.get(self._label, ""), infra.fleet, infra.index)
            task = IncidentTask(thread_id, incident_text(alert, server_id, self._label), server_id,
                                alert.labels.get("alertname", ""))
            if not self._claim(thread_id):
                answer["duplicates"].append(thread_id)
                continue
            audit.record(self._context.state_path, thread_id, "alert_received", server_id=server_id,
                         alertname=task.alertname, group_key=group.group_key)
            self._queue.put(task)
            answer["accepted"].append({"thread_id": thread_id, "server_id": server_id, "alertname": task.alertname})
        return answer

    def _claim(self, thread_id: str) -> bool:
        """True when no run of this thread is queued, running or done (done ones live in the checkpoints)."""
        with self._lock:
            if thread_id in self._claimed:
                return False
            if self._checkpointer.get_tuple({"configurable": {"thread_id": thread_id}}) is not None:
                return False
            self._claimed.add(thread_id)
            return True

    def _work(self) -> None:
        while (task := self._queue.get()) is not None:
            try:
                self._run(task)
            finally:
                with self._lock:
                    self._claimed.discard(task.thread_id)

    def _run(self, task: IncidentTask) -> None:
        config: RunnableConfig = {"configurable": {"thread_id": task.thread_id}}
        payload: IncidentInput = {"incident": task.incident}
        try:
            result = self._app.invoke(payload, config, context=self._context, durability="sync")
        except Exception as exc:  # noqa: BLE001 - one failed run must not stop the intake
            log.exception("incident %s failed", task.thread_id)
            audit.record(self._context.state_path, task.thread_id, "intake_error", error=repr(exc)[:500])
            self._fallback_ticket(task, exc)
            return
        log.info("incident %s (%s on %s): %s", task.thread_id, task.alertname, task.server_id,
                 result.get("outcome", "awaiting approval"))


    def _fallback_ticket(self, task: IncidentTask, exc: Exception) -> None:
        """A run that crashed still reaches a human: the alert as received, and why the agent could not handle it."""
        incident_id = f"{task.thread_id}:intake-failure"
        ticket: dict[str, Any] = {
            "id": ticket_id(incident_id), "dedup_key": ticket_id(incident_id), "thread_id": task.thread_id,
            "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "server_id": task.server_id,
            "severity": "high", "reason": f"the agent failed while handling this alert: {type(exc).__name__}",
            "summary": f"alert {task.alertname} could not be diagnosed automatically; please look",
            "incident": task.incident.encode("utf-8", "replace").decode("utf-8")[:500],
            "evidence": {}, "actions_taken": [], "restart": None, "operator_comment": None, "model": None,
        }
        delivery = TicketDesk(self._context.state_path).deliver(ticket)
        audit.record(self._context.state_path, task.thread_id, "escalation", ticket_id=ticket["id"],
                     reason=ticket["reason"], delivery=delivery["status"])


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

    def do_GET(self) -> None:
        if self.path != HEALTH_PATH:
            self._answer(404, {"error": f"unknown path {self.path}; POST alerts to {ALERTS_PATH}"})
            return
        self._answer(200, {"status": "ok", "pending": self.server.intake.pending()})

    def do_POST(self) -> None:
        if self.path != ALERTS_PATH:
            self._answer(404, {"error": f"unknown path {self.path}; POST alerts to {ALERTS_PATH}"})
            return
        length = self.headers.get("Content-Length")
        if length is None or not length.isdigit():
            self._answer(411, {"error": "Content-Length is required"})
            return
        if int(length) > MAX_BODY_BYTES:
            self._answer(413, {"error": f"payload larger than {MAX_BODY_BYTES} bytes"})
            return
        try:
            group = parse_payload(self.rfile.read(int(length)))
        except PayloadError as exc:
            self._answer(400, {"error": str(exc)})
            return
        try:
            accepted = self.server.intake.submit(group)
        except Exception as exc:  # noqa: BLE001 - e.g. a broken fleet file: Alertmanager retries on 5xx
            log.exception("cannot take alerts")
            self._answer(500, {"error": f"cannot take alerts: {exc}"})
            return
        self._answer(202, accepted)

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
def serving(context: Context, host: str = "127.0.0.1", port: int = 0,
            server_label: str = DEFAULT_SERVER_LABEL) -> Iterator[AlertServer]:
    """Run the intake and its HTTP server in background threads until the block ends."""
    intake = AlertIntake(context, server_label)
    intake.start()
    server = AlertServer((host, port), intake)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, name="alert-intake-http",
                              daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        intake.stop()


def cmd_serve(args: argparse.Namespace) -> int:
    from graph.cli import EXIT_OK, _context

    context = _context(args)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with serving(context, args.host, args.port, args.server_label) as server:
        print(f"listening on {server.url}{ALERTS_PATH} (fleet {context.fleet_path}, state {context.state_path})",
              file=sys.stderr, flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            stop.wait()
    return EXIT_OK


def add_serve_command(commands: Any) -> None:
    """The `serve` subcommand, for graph.cli's parser."""
    from graph.cli import _common

    serve = commands.add_parser("serve", help="accept Alertmanager webhooks and run an incident per alert")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=9095, help="port to listen on (default 9095)")
    serve.add_argument("--server-label", default=DEFAULT_SERVER_LABEL,
                       help="alert label naming the server (default: instance, port stripped)")
    _common(serve)
    serve.set_defaults(handler=cmd_serve)
