"""Alert intake: `serve` accepts Alertmanager webhooks on POST /alerts and runs one incident thread per alert.

This module owns the HTTP side (validation, bounded reads, /healthz), the intake: alerts committed to the state
store's queue before the 2xx answer, coalesced per server, cancelled when resolved; the workers that claim and run
them and survive any failure of a run; and the shutdown: runs in progress are waited for, queued alerts stay in
the store and run at the next start.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import dataclasses
import faulthandler
import hashlib
import hmac
import html
import json
import logging
import os
import signal
import socket
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

from langchain_core.runnables import RunnableConfig

from it_support_agent.graph.app.alerts import (
    DEFAULT_SERVER_LABEL,
    Alert,
    AlertGroup,
    IncidentRequest,
    PayloadError,
    incident_text,
    parse_incident_request,
    parse_payload,
    server_for,
)
from it_support_agent.graph.app.alerts import thread_id as alert_thread_id
from it_support_agent.graph.app.checkpoints import forget_finished, open_checkpointer, unfinished_steps
from it_support_agent.graph.app.console import (
    CONSOLE_PATH,
    SESSION_COOKIE,
    Console,
    csrf_value,
    session_value,
    signed_in,
)
from it_support_agent.graph.app.options import EXIT_OK, CliError, context_from_args
from it_support_agent.incident.context import Context
from it_support_agent.incident.fleet import Fleet
from it_support_agent.incident.matching import ServerIndex
from it_support_agent.incident.state import IncidentInput
from it_support_agent.incident.text import known_secrets, redact, strip_controls
from it_support_agent.nodes.escalate import STORM_UPDATE, file_unfinished
from it_support_agent.tools import audit
from it_support_agent.tools.infrastructure import open_infrastructure
from it_support_agent.tools.outbox import TicketDesk
from it_support_agent.tools.sinks import TICKET_RESOLVED
from it_support_agent.tools.store import IntakeItem, StoreError, open_store

ALERTS_PATH = "/alerts"
INCIDENTS_PATH = "/incidents"
HEALTH_PATH = "/healthz"
MAX_BODY_BYTES = 1024 * 1024
REQUEST_TIMEOUT_S = 10.0
STOP_WAIT_S = 900.0
STOP_LOG_EVERY_S = 30.0
IDLE_POLL_S = 0.5
DEFAULT_WORKERS = 2
DELIVERY_POLL_S = 0.25
"""How often the delivery worker looks for queued tickets."""
DELIVERY_BACKOFF_MAX_S = 30.0
"""The longest wait between delivery attempts while a sink keeps failing."""
RETENTION_EVERY_S = 3600.0
"""How often `--retain-days` forgets old finished incidents."""
LISTEN_BACKLOG = 128
TOKEN_VARIABLE = "IT_SUPPORT_INTAKE_TOKEN"
log = logging.getLogger(__name__)


class AlertIntake:
    """Commits firing alerts to the store's intake queue, and runs them on worker threads.

    An alert is committed before `serve` answers 2xx, so nothing accepted is lost when the process dies: at the
    next start, runs a dead worker had claimed are queued again and continue from their checkpoints (a restart
    in flight is never repeated: its idempotency key is in the store). Alerts for a server whose incident is
    queued or running join that incident instead of racing it; a resolved alert cancels a run not yet started.
    """

    def __init__(
        self,
        context: Context,
        server_label: str = DEFAULT_SERVER_LABEL,
        workers: int = DEFAULT_WORKERS,
        retain_days: float | None = None,
        retain_audit: bool = False,
    ) -> None:
        from it_support_agent.graph.builder import compile_graph

        # tickets reach the outbox at once and the sinks from the delivery worker: a hanging sink holds up no run
        self._context = dataclasses.replace(context, deliveries="background")
        self._label = server_label
        self._store = open_store(context.state_path)
        self._checkpointer = open_checkpointer(context.state_path)
        self._app = compile_graph(self._checkpointer)
        self._stopping = threading.Event()
        self._wake = threading.Condition()
        self._running: dict[str, str] = {}
        self._lock = threading.Lock()
        prefix = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self._workers = [
            threading.Thread(target=self._work, args=(f"{prefix}:{number}",), name=f"intake-worker-{number}")
            for number in range(max(1, workers))
        ]
        self._deliverer = threading.Thread(target=self._deliver, name="ticket-delivery", daemon=True)
        self._retain_s = retain_days * 86400 if retain_days else None
        self._retain_audit = retain_audit
        self._pruner = threading.Thread(target=self._prune, name="retention", daemon=True)

    def start(self) -> None:
        requeued = self._store.requeue_abandoned(_worker_alive) + self._store.requeue_stalled()
        if requeued:
            log.warning(
                "%d accepted alert(s) a stopped process or a failed run left unfinished are queued again", requeued
            )
        for worker in self._workers:
            worker.start()
        self.start_delivery()
        if self._retain_s:
            self._pruner.start()

    def start_delivery(self) -> None:
        """The delivery worker alone (the console without intake files tickets too)."""
        if not self._deliverer.is_alive():
            self._deliverer.start()

    def stop(self) -> None:
        """Stop taking work and wait for the runs in progress; queued alerts stay in the store for the next start.

        A restart in progress is never cut off: after STOP_WAIT_S this returns, but the workers are not daemon
        threads, so the process still exits only when their runs have ended.
        """
        self._stopping.set()
        with self._wake:
            self._wake.notify_all()
        deadline = time.monotonic() + STOP_WAIT_S
        for worker in self._workers:
            while worker.is_alive() and (left := deadline - time.monotonic()) > 0:
                worker.join(min(STOP_LOG_EVERY_S, left))
                if worker.is_alive():
                    log.warning("stopping: waiting for incidents %s to finish", sorted(self._running.values()))
        with contextlib.suppress(StoreError):
            queued = self._store.intake_counts().get("queued", 0)
            if queued:
                log.info("stopping: %d accepted alert(s) stay queued in the store and run at the next start", queued)

    def _deliver(self) -> None:
        """The delivery worker: sends spooled and queued tickets to the sinks, backing off while a sink fails.

        Its work items are the store's delivery queue (shared by every replica) and the spool files, both written
        before a run goes on, so a ticket whose delivery a stop cuts short is sent later, by this or another replica
        (or by `flush`); each sink's dedup record keeps it from arriving twice."""
        desk = TicketDesk(self._context.state_path)
        spool_pause, spool_next = DELIVERY_POLL_S, 0.0
        while not self._stopping.wait(DELIVERY_POLL_S):
            try:
                if desk.queue_due():  # each queued ticket backs off on its own while its sink fails
                    desk.flush(spool=False, due_only=True)
                if time.monotonic() >= spool_next and desk.spooled():  # files: only while the store was unusable
                    failed = desk.flush(queue=False)["failed"]
                    spool_pause = min(spool_pause * 2, DELIVERY_BACKOFF_MAX_S) if failed else DELIVERY_POLL_S
                    spool_next = time.monotonic() + spool_pause
            except Exception:  # noqa: BLE001 - the worker must outlive any one bad delivery; the ticket stays owed
                log.exception("ticket delivery failed; the tickets owed are retried")

    def _prune(self) -> None:
        """Retention (--retain-days): at start and every hour, forget finished incidents older than that; their
        tickets stay, and so do their audit events unless --retain-audit."""
        assert self._retain_s
        while True:
            try:
                forgotten = forget_finished(
                    self._checkpointer, self._context.state_path, self._retain_s, audit=self._retain_audit
                )
                if forgotten:
                    log.info("retention: forgot %d finished incident(s) older than the limit", len(forgotten))
            except Exception:  # noqa: BLE001 - retention never stops the intake; it is tried again in an hour
                log.exception("retention failed; tried again in an hour")
            if self._stopping.wait(RETENTION_EVERY_S):
                return

    def alive(self) -> bool:
        """Whether every worker that runs incidents is running."""
        return all(worker.is_alive() for worker in self._workers) and not self._stopping.is_set()

    def pending(self) -> int:
        """Alerts accepted whose run has not finished yet (queued or running, in any process)."""
        counts = self._store.intake_counts()
        return counts.get("queued", 0) + counts.get("running", 0)

    def submit(self, group: AlertGroup) -> dict[str, Any]:
        """Commit each new firing alert; repeats are acknowledged, resolved alerts cancel runs not yet started.

        Every alert of the batch is turned into its item before any is committed, so a bad one commits nothing.
        """
        infra = open_infrastructure(self._context.fleet_path, self._context.state_path)
        items = [(alert, self._item(group, alert, infra.fleet, infra.index)) for alert in group.alerts]
        answer: dict[str, Any] = {"accepted": [], "duplicates": [], "resolved": [], "coalesced": []}
        if group.truncated:  # the sender left alerts out (its max_alerts): they never reach an incident
            answer["truncated"] = group.truncated
            log.warning(
                "%s group %s left out %d alert(s) (truncatedAlerts)", group.sender, group.group_key, group.truncated
            )
            audit.record(
                self._context.state_path, "", "alerts_truncated", group_key=group.group_key, count=group.truncated
            )
        for alert, item in items:
            if alert.status == "resolved":
                before = self._store.cancel(item.thread_id)
                answer["resolved"].append(item.thread_id)
                audit.record(
                    self._context.state_path,
                    item.thread_id,
                    "alert_resolved",
                    labels=dict(alert.labels),
                    run=("cancelled" if before in ("queued", "coalesced") else before or "none"),
                )
                self._resolve_tickets(item.thread_id)
                continue
            config: RunnableConfig = {"configurable": {"thread_id": item.thread_id}}
            if self._checkpointer.get_tuple(config) is not None and not unfinished_steps(self._app.get_state(config)):
                answer["duplicates"].append(item.thread_id)  # finished, or waiting for a human's answer
                continue
            # (a checkpoint with work left is queued: the run continues where it stopped)
            verdict, parent = self._store.enqueue(
                item, _received(item, "alert_received", alertname=item.alertname, group_key=group.group_key)
            )
            if verdict == "duplicate":
                answer["duplicates"].append(item.thread_id)
                continue
            summary = {"thread_id": item.thread_id, "server_id": item.server_id, "alertname": item.alertname}
            if verdict == "accepted":
                answer["accepted"].append(summary)
            else:
                answer["coalesced"].append({**summary, "into": parent})
        with self._wake:
            self._wake.notify_all()
        return answer

    def submit_incident(self, request: IncidentRequest) -> dict[str, Any]:
        """Commit one plain incident (a script's or chat bot's); an `id` makes retries of it one incident."""
        infra = open_infrastructure(self._context.fleet_path, self._context.state_path)
        server_id = None
        if request.server is not None:
            server_id = infra.index.resolve(request.server)
            if server_id is None:
                raise PayloadError(f"unknown server {request.server!r}: not in the fleet file")
        key = request.key or uuid.uuid4().hex
        thread_id = "incident-" + hashlib.sha256(key.encode("utf-8")).hexdigest()[:20]
        item = IntakeItem(thread_id, server_id, "", redact(request.incident, known_secrets()), "queued")

        verdict, parent = self._store.enqueue(item, _received(item, "incident_received"))
        summary = {"thread_id": thread_id, "server_id": server_id}
        if verdict == "duplicate":
            return {"accepted": [], "duplicates": [thread_id], "coalesced": []}
        with self._wake:
            self._wake.notify_all()
        if verdict == "coalesced":
            return {"accepted": [], "duplicates": [], "coalesced": [{**summary, "into": parent}]}
        return {"accepted": [summary], "duplicates": [], "coalesced": []}

    def _item(self, group: AlertGroup, alert: Alert, fleet: Fleet, index: ServerIndex) -> IntakeItem:
        server_id = server_for(alert.labels.get(self._label, ""), fleet, index)
        secrets = known_secrets()
        return IntakeItem(
            alert_thread_id(group.group_key, alert),
            server_id,
            alert.labels.get("alertname", ""),
            redact(incident_text(alert, server_id, self._label), secrets),
            "queued",
        )

    def _work(self, worker: str) -> None:
        """Claim and run queued incidents until stopped; nothing a run does can end this loop.

        The thread is not a daemon, so the interpreter never kills a run mid-restart at exit; an idle worker
        notices a program that ends without stop() and ends too.
        """
        while not self._stopping.is_set() and threading.main_thread().is_alive():
            try:
                item = self._store.claim(worker)
            except StoreError as exc:
                log.error("cannot claim queued alerts: %s", exc)
                item = None
            if item is None:
                with self._wake:
                    self._wake.wait(IDLE_POLL_S)
                continue
            with self._lock:
                self._running[worker] = item.thread_id
            outcome = "error"
            try:
                outcome = self._run(item)
            except Exception as exc:  # noqa: BLE001 - the worker outlives any failure of one incident
                self._note_failure(item, "worker", exc)
            finally:
                with self._lock:
                    self._running.pop(worker, None)
                self._finish(item, outcome)

    def _finish(self, item: IntakeItem, outcome: str) -> None:
        """Mark the run done, or stalled when it stopped on an error: the next start continues it."""
        try:
            event = audit.make_event(item.thread_id, "alert_run_finished", outcome=outcome)
            if outcome == "error":
                self._store.stall(item.thread_id, event)
            else:
                self._store.finish(item.thread_id, outcome, event)
        except StoreError as exc:  # the run is done; at the next start its checkpoint says so
            log.error("incident %s: finished (%s) but not marked done: %s", item.thread_id, outcome, exc)
            return
        try:  # its alert resolved while it ran: what it filed is resolved now (the notices are idempotent)
            if outcome != "error" and any(
                event.get("kind") == "alert_resolved" for event in self._store.audit_events(item.thread_id)
            ):
                self._resolve_tickets(item.thread_id)
        except (StoreError, OSError) as exc:
            log.error("incident %s: its alert resolved, but its tickets could not be resolved: %s", item.thread_id, exc)

    def _run(self, item: IntakeItem) -> str:
        """Run (or continue, after a crash) one incident; its outcome."""
        config: RunnableConfig = {"configurable": {"thread_id": item.thread_id}}
        # An alert's server comes from its label only (None when it names no fleet server): the free text of
        # annotations is never searched for one. A plain incident (no alert name) without a server is read like
        # text an operator typed.
        payload: IncidentInput | None = {"incident": item.incident}
        if item.alertname or item.server_id:
            payload = {"incident": item.incident, "alert_server": item.server_id}
            group = self._group_key(item.thread_id)
            if group:
                payload["alert_group"] = group
        try:
            snapshot = self._app.get_state(config)
            steps = unfinished_steps(snapshot)
            if snapshot.values and not steps:
                return str(snapshot.values.get("outcome") or "done")  # it finished before the process died
            if snapshot.values:
                payload = None  # continue from the last checkpoint
                audit.record(self._context.state_path, item.thread_id, "resume_after_stop", next=steps)
            result = self._app.invoke(payload, config, context=self._context, durability="sync")
        except Exception as exc:  # noqa: BLE001 - one failed run must not stop the intake
            self._note_failure(item, "run", exc)
            try:
                self._fallback_ticket(item, exc)
            except Exception as problem:  # noqa: BLE001 - nor may a failed fallback ticket
                self._note_failure(item, "fallback_ticket", problem)
            return "error"
        outcome = str(result.get("outcome") or "awaiting_approval")
        log.info("incident %s (%s on %s): %s", item.thread_id, item.alertname, item.server_id, outcome)
        return outcome

    def _group_key(self, thread_id: str) -> str | None:
        """The Alertmanager group key an accepted alert came with (kept in its alert_received audit event)."""
        for event in self._store.audit_events(thread_id):
            if event.get("kind") == "alert_received" and isinstance(event.get("group_key"), str):
                return str(event["group_key"])
        return None

    def _resolve_tickets(self, thread_id: str) -> None:
        """An alert resolved: each ticket the agent filed for it is resolved in the sinks (a `ticket_resolved`
        notice: PagerDuty gets `resolve` with the ticket's dedup key, the webhook and Slack a notice naming the
        ticket). A storm's parent ticket is resolved only with the last of its servers' alerts."""
        storm = self._store.leave_storm(thread_id)
        if storm is not None and storm[1] > 0:
            audit.record(
                self._context.state_path,
                thread_id,
                "ticket_resolution",
                action="none",
                detail=f"{storm[1]} other alert(s) of ticket {storm[0]}'s servers still firing",
            )
            return
        if storm:  # the storm's last alert: its parent ticket
            parent = self._store.ticket(storm[0])
            tickets = [parent] if parent else []
        else:
            tickets = self._store.tickets(thread_id)
        for ticket in tickets:
            if ticket.get("kind") in (TICKET_RESOLVED, STORM_UPDATE):
                continue
            delivery = TicketDesk(self._context.state_path).deliver(
                resolution_notice(ticket, thread_id), background=True
            )
            audit.record(
                self._context.state_path,
                thread_id,
                "ticket_resolution",
                action="resolve",
                ticket_id=ticket["id"],
                delivery=delivery["status"],
            )

    def _note_failure(self, item: IntakeItem, stage: str, exc: BaseException) -> None:
        log.error("incident %s: %s failed", item.thread_id, stage, exc_info=exc)
        with contextlib.suppress(Exception):
            audit.record(self._context.state_path, item.thread_id, "intake_error", stage=stage, error=repr(exc)[:500])

    def _fallback_ticket(self, item: IntakeItem, exc: Exception) -> None:
        """A run that failed still reaches a human: what it knew, whether it acted, the service now."""
        values: dict[str, Any] = {}
        with contextlib.suppress(Exception):
            values = dict(self._app.get_state({"configurable": {"thread_id": item.thread_id}}).values)
        file_unfinished(self._context, item.thread_id, {"server_id": item.server_id, **values}, item.incident, exc)


def _worker_alive(worker: str) -> bool:
    """Whether the worker that claimed a run still exists: same host and its process alive (other hosts: yes)."""
    host, _, rest = worker.partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname():
        return True
    if not pid.isdigit():
        return False
    if int(pid) == os.getpid():
        return False  # this process is starting: nothing of its own is running yet
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def authorized(header: str | None, token: str) -> bool:
    """Whether a request's Authorization header carries the intake token: `Bearer TOKEN`, or basic auth with the
    token as password (Alertmanager's `http_config` can send either). No token configured: every request passes."""
    if not token:
        return True
    scheme, _, credentials = (header or "").strip().partition(" ")
    offered = credentials.strip()
    if scheme.lower() == "basic":
        try:
            offered = base64.b64decode(offered, validate=True).decode("utf-8").partition(":")[2]
        except (ValueError, UnicodeDecodeError):
            return False
    elif scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(offered.encode("utf-8"), token.encode("utf-8"))


class AlertServer(ThreadingHTTPServer):
    """The HTTP side: each request thread hands payloads to the intake."""

    daemon_threads = True
    request_queue_size = LISTEN_BACKLOG  # Alertmanager and its peers post in bursts

    def __init__(self, address: tuple[str, int], intake: AlertIntake, takes_alerts: bool = True) -> None:
        super().__init__(address, _Handler)
        self.intake = intake
        self.takes_alerts = takes_alerts  # False for `console`: pages and answers, no intake
        self.console = Console(intake._context, intake._app, os.environ.get(TOKEN_VARIABLE, ""))

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"


class _Handler(BaseHTTPRequestHandler):
    server: AlertServer
    timeout = REQUEST_TIMEOUT_S  # a client that stalls mid-request gives its thread back after this long

    def setup(self) -> None:
        """Each read must come within `timeout` (else 408), and the whole request (line, headers, body) within 1.5
        times that: a client that trickles a byte now and then (slowloris) is disconnected at the deadline."""
        super().setup()
        self._deadline = threading.Timer(1.5 * float(self.timeout or REQUEST_TIMEOUT_S), self._cut_off)
        self._deadline.daemon = True
        self._deadline.start()

    def _cut_off(self) -> None:
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    def finish(self) -> None:
        self._deadline.cancel()
        super().finish()

    def do_GET(self) -> None:
        self._deadline.cancel()
        if self.path == CONSOLE_PATH or self.path.startswith((CONSOLE_PATH + "/", CONSOLE_PATH + "?")):
            self._console_get()
            return
        if self.path != HEALTH_PATH:
            self._answer(404, {"error": f"unknown path {self.path}; POST alerts to {ALERTS_PATH}"})
            return
        if not self.server.takes_alerts:
            self._answer(200, {"status": "ok", "console_only": True})
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
        if self.path.startswith(CONSOLE_PATH + "/"):
            self._console_post()
            return
        if self.path not in (ALERTS_PATH, INCIDENTS_PATH) or not self.server.takes_alerts:
            self._answer(
                404, {"error": f"unknown path {self.path}; POST alerts to {ALERTS_PATH}, incidents to {INCIDENTS_PATH}"}
            )
            return
        if not authorized(self.headers.get("Authorization"), os.environ.get(TOKEN_VARIABLE, "")):
            self.close_connection = True
            self._answer(
                401, {"error": f"a valid bearer token (or basic auth password) from {TOKEN_VARIABLE} is required"}
            )
            return
        body = self._body()
        self._deadline.cancel()  # it all arrived: taking the alerts is not cut short
        if body is None:
            return
        try:
            request = parse_payload(body) if self.path == ALERTS_PATH else parse_incident_request(body)
        except PayloadError as exc:
            self._answer(400, {"error": str(exc)})
            return
        if not self.server.intake.alive():
            self._answer(503, {"error": "the incident worker is not running; alerts are not taken"})
            return
        try:
            if isinstance(request, AlertGroup):
                accepted = self.server.intake.submit(request)
            else:
                accepted = self.server.intake.submit_incident(request)
        except PayloadError as exc:  # e.g. a server the fleet does not have
            self._answer(400, {"error": str(exc)})
            return
        except Exception as exc:  # noqa: BLE001 - e.g. a broken fleet file: Alertmanager retries on 5xx
            log.exception("cannot take alerts")
            self._answer(500, {"error": f"cannot take alerts: {exc}"})
            return
        self._answer(202, accepted)

    # --- the console ---------------------------------------------------------------------------------------

    def _token(self) -> str:
        return os.environ.get(TOKEN_VARIABLE, "")

    def _may_read(self) -> bool:
        token = self._token()
        if not token:
            return True  # no token configured: read-only pages (answers need the token)
        return signed_in(self.headers.get("Cookie"), token) or authorized(self.headers.get("Authorization"), token)

    def _console_get(self) -> None:
        parts = urlsplit(self.path)
        query = parse_qs(parts.query)
        console = self.server.console
        if parts.path == CONSOLE_PATH + "/login":
            self._html(200, console.login_page())
            return
        if not self._may_read():
            self._redirect(CONSOLE_PATH + "/login")
            return
        status_filter = (query.get("status") or [""])[0]
        if parts.path == CONSOLE_PATH:
            self._html(200, console.page(status_filter))
        elif parts.path == CONSOLE_PATH + "/rows":
            self._html(200, console.rows_fragment(status_filter))
        elif parts.path.startswith(CONSOLE_PATH + "/incident/"):
            page = console.incident_page(unquote(parts.path.rsplit("/", 1)[1]))
            self._html(200, page) if page else self._html(404, console.login_page("no such incident"))
        else:
            self._html(404, "<p>unknown page</p>")

    def _console_post(self) -> None:
        body = self._body()
        self._deadline.cancel()
        if body is None:
            return
        form = {key: values[0] for key, values in parse_qs(body.decode("utf-8", "replace")).items()}
        console, token, path = self.server.console, self._token(), urlsplit(self.path).path
        if path == CONSOLE_PATH + "/login":
            if token and hmac.compare_digest(form.get("token", "").encode(), token.encode()):
                cookie = f"{SESSION_COOKIE}={session_value(token)}; HttpOnly; SameSite=Strict; Path={CONSOLE_PATH}"
                self._redirect(CONSOLE_PATH, cookie)
            else:
                problem = "wrong token" if token else f"the console takes no answers: {TOKEN_VARIABLE} is not set"
                self._html(401, console.login_page(problem))
            return
        if not (token and signed_in(self.headers.get("Cookie"), token)):
            self._html(401, console.login_page("sign in first"))
            return
        if not hmac.compare_digest(form.get("csrf", "").encode(), csrf_value(token).encode()):
            self._html(403, "<p>the form's CSRF token is missing or wrong; reload the page</p>")
            return
        thread_id = form.get("thread", "")
        problem = ""
        if path == CONSOLE_PATH + "/approve":
            decision = form.get("decision")
            if decision not in ("approve", "reject"):
                problem = "say approve or reject"
            else:
                problem = console.answer(thread_id, {"decision": decision, "comment": form.get("comment", "")})
        elif path == CONSOLE_PATH + "/choose":
            problem = console.answer(thread_id, {"server_id": form.get("server", "")})
        elif path == CONSOLE_PATH + "/retry":
            console.retry()
            self._redirect(CONSOLE_PATH)
            return
        else:
            problem = "unknown action"
        if problem:
            self._html(409, f"<p>{html.escape(problem)}</p><p><a href='{CONSOLE_PATH}'>back</a></p>")
            return
        self._redirect(f"{CONSOLE_PATH}/incident/{quote(thread_id, safe='')}")

    def _html(self, status: int, text: str) -> None:
        data = text.encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Frame-Options", "DENY")
        self.send_header(
            "Content-Security-Policy",
            "default-src 'self'; script-src 'unsafe-inline' 'self'; style-src 'unsafe-inline'",
        )
        self.end_headers()
        self.wfile.write(data)

    def _redirect(self, location: str, cookie: str | None = None) -> None:
        self.send_response(303)
        self.send_header("Location", location)
        if cookie:
            self.send_header("Set-Cookie", cookie)
        self.send_header("Content-Length", "0")
        self.end_headers()

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
        log.info("%s %s", self.address_string(), strip_controls(format % args))  # request lines are untrusted


def _received(item: IntakeItem, accepted_kind: str, **fields: Any) -> Callable[[str, str | None], dict[str, Any]]:
    """The audit event of an item taken in, made once the store knows the verdict (and committed with its queue
    row): `accepted_kind` when it runs, alert_coalesced (with `into`) when it joined a running incident."""

    def event(verdict: str, parent: str | None) -> dict[str, Any]:
        kind = accepted_kind if verdict == "accepted" else "alert_coalesced"
        into = {"into": parent} if parent else {}
        return audit.make_event(item.thread_id, kind, server_id=item.server_id, **fields, **into)

    return event


def resolution_notice(ticket: Mapping[str, Any], thread_id: str) -> dict[str, Any]:
    """The notice that a ticket's alert resolved: the outbox keeps it, every sink is told (PagerDuty: `resolve`)."""
    return {
        "id": f"{ticket['id']}-resolved",
        "kind": TICKET_RESOLVED,
        "resolves": ticket["id"],
        "dedup_key": ticket.get("dedup_key") or ticket["id"],
        "pagerduty_dedup_key": ticket.get("pagerduty_dedup_key") or ticket["id"],
        "thread_id": thread_id,
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "server_id": ticket.get("server_id"),
        "severity": "info",
        "reason": "the alert that raised this ticket resolved",
        "summary": f"resolved: the alert behind ticket {ticket['id']} ({ticket.get('server_id') or 'no server'}) "
        "stopped firing; the ticket can be closed once someone has checked",
    }


@contextlib.contextmanager
def serving(
    context: Context,
    host: str = "127.0.0.1",
    port: int = 0,
    server_label: str = DEFAULT_SERVER_LABEL,
    workers: int = DEFAULT_WORKERS,
    takes_alerts: bool = True,
    retain_days: float | None = None,
    retain_audit: bool = False,
) -> Iterator[AlertServer]:
    """Run the intake and its HTTP server in background threads until the block ends."""
    intake = AlertIntake(context, server_label, workers, retain_days, retain_audit)
    if takes_alerts:
        intake.start()
    else:
        intake.start_delivery()
    server = AlertServer((host, port), intake, takes_alerts)
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
    if not os.environ.get(TOKEN_VARIABLE) and args.host not in ("127.0.0.1", "::1", "localhost"):
        log.warning("%s is not set: anyone who reaches %s can post alerts", TOKEN_VARIABLE, args.host)
    # The handler only flips a flag: taking a lock in a signal handler (Event.set) can deadlock the main thread.
    stopping: list[int] = []
    signal.signal(signal.SIGTERM, lambda signum, _frame: stopping.append(signum))
    faulthandler.register(signal.SIGUSR1, all_threads=True)  # `kill -USR1 PID` prints every thread's stack
    takes_alerts = bool(getattr(args, "takes_alerts", True))
    label = args.server_label or DEFAULT_SERVER_LABEL
    retain_days = getattr(args, "retain_days", None)
    if retain_days is not None and not retain_days > 0:
        raise CliError("--retain-days must be a positive number of days")
    retain_audit = bool(getattr(args, "retain_audit", False))
    with serving(context, args.host, args.port, label, args.workers, takes_alerts, retain_days, retain_audit) as server:
        where = (
            f"{server.url}{ALERTS_PATH}, console {server.url}{CONSOLE_PATH}"
            if takes_alerts
            else server.url + CONSOLE_PATH
        )
        print(
            f"listening on {where} (fleet {context.fleet_path}, state {context.state_path})",
            file=sys.stderr,
            flush=True,
        )
        with contextlib.suppress(KeyboardInterrupt):
            while not stopping:
                time.sleep(0.2)
    return EXIT_OK
