"""Escalation sinks besides the outbox: JSON webhook, Slack, PagerDuty Events v2, set by environment.

This module owns how a ticket reaches an HTTP sink: each sink's payload, the checks on a sink's URL when the
environment is read, bounded delivery (a deadline per try and per delivery, no redirects, every failure a
SinkError) and the record of which sink took which ticket (in the state store, shared by every replica; in
`deliveries.json` only while the store cannot be used, imported into the store once it can).
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import json
import math
import os
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from email.message import Message
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote, urlsplit

from it_support_agent.tools.statefile import file_lock, locked_json, read_json
from it_support_agent.tools.store import KEEP_DELIVERIES_S, Store, StoreError, open_store

DELIVERIES_FILE = "deliveries.json"
CLAIM_SLACK_S = 30.0
PAGERDUTY_EVENTS_URL = "https://events.pagerduty.com/v2/enqueue"
PAGERDUTY_EVENT = "pagerduty_event"
TICKET_RESOLVED = "ticket_resolved"
"""A notice that a ticket's alert resolved: PagerDuty resolves the page, the webhook and Slack are told."""
PAGERDUTY_SEVERITIES = {"critical": "critical", "high": "error", "medium": "warning", "low": "info"}
RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
MAX_ATTEMPTS = 10
DEFAULT_PORTS = {"http": 80, "https": 443}
SLACK_TEXT_LIMIT = 2_900
Payload = Callable[[Mapping[str, Any]], dict[str, Any]]
Outcome = tuple[str, str]

# Where each sink's URL comes from, and where its credentials belong instead of the URL.
URL_VARIABLES = {
    "webhook": "IT_SUPPORT_WEBHOOK_URL",
    "slack": "IT_SUPPORT_SLACK_WEBHOOK_URL",
    "pagerduty": "IT_SUPPORT_PAGERDUTY_URL",
}
CREDENTIAL_HINTS = {
    "webhook": "put the token in IT_SUPPORT_WEBHOOK_TOKEN (sent as Authorization: Bearer)",
    "slack": "use the webhook URL exactly as Slack issued it",
    "pagerduty": "PagerDuty authenticates by IT_SUPPORT_PAGERDUTY_ROUTING_KEY",
}


class SinkError(RuntimeError):
    """A sink did not take the ticket (down, timed out, refused, redirected, misconfigured)."""


def redact_url(url: str) -> str:
    """A URL as it may appear in messages: scheme://host:port (a webhook's path and query are secrets)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "<unparseable URL>"
    if not parts.scheme or not parts.hostname:
        return "<URL without scheme or host>"
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    port = port or DEFAULT_PORTS.get(parts.scheme.lower())
    return f"{parts.scheme}://{host}" + (f":{port}" if port else "")


def url_problem(name: str, url: str) -> str:
    """Why a sink URL cannot be used, or "" when it can; never quotes the URL, which may hold a secret."""
    variable = URL_VARIABLES.get(name, f"the {name} URL")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        return f"{variable} is not a valid URL"
    if "@" in parts.netloc:
        hint = CREDENTIAL_HINTS.get(name, "set credentials in the sink's own variables")
        return f"{variable} must not embed credentials (user:password@host); {hint}"
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
        return f"{variable} must be an http:// or https:// URL with a host"
    return ""


def _scrub(text: str, url: str) -> str:
    """Text with any secret part of url (the whole URL, its path, query or credentials) replaced by '…'."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return text.replace(url, "…") if url else text
    secrets = [
        url,
        parts.path + (f"?{parts.query}" if parts.query else ""),
        parts.query,
        parts.path,
        parts.netloc.rpartition("@")[0],
    ]
    for secret in sorted({item for item in secrets if len(item) > 1}, key=len, reverse=True):
        text = text.replace(secret, "…")
    return text


class _RefuseRedirects(urllib.request.HTTPRedirectHandler):
    """Sinks never follow a redirect: the ticket and its Authorization header stay with the configured URL."""

    def redirect_request(
        self, req: urllib.request.Request, fp: IO[bytes], code: int, msg: str, headers: Message, newurl: str
    ) -> urllib.request.Request | None:
        raise urllib.error.HTTPError(req.full_url, code, f"redirect refused ({msg})", headers, fp)


def _tracking(base: Any, sockets: list[socket.socket]) -> Any:
    """A connection class like `base` that hands its socket to `sockets` once connected (for the watchdog)."""

    class Tracked(base):  # type: ignore[misc]  # base is one of http.client's connection classes
        def connect(self) -> None:
            super().connect()
            sockets.append(self.sock)

    return Tracked


class _TrackedHTTP(urllib.request.HTTPHandler):
    def __init__(self, sockets: list[socket.socket]) -> None:
        super().__init__()
        self._sockets = sockets

    def do_open(self, http_class: Any, req: urllib.request.Request, **kwargs: Any) -> http.client.HTTPResponse:
        return super().do_open(_tracking(http_class, self._sockets), req, **kwargs)


class _TrackedHTTPS(urllib.request.HTTPSHandler):
    def __init__(self, sockets: list[socket.socket]) -> None:
        super().__init__()
        self._sockets = sockets

    def do_open(self, http_class: Any, req: urllib.request.Request, **kwargs: Any) -> http.client.HTTPResponse:
        return super().do_open(_tracking(http_class, self._sockets), req, **kwargs)


class _Watchdog:
    """Cuts a try's connections when its time is up, so an answer trickled byte by byte cannot hold it longer."""

    def __init__(self, limit_s: float) -> None:
        self.sockets: list[socket.socket] = []
        self.fired = threading.Event()
        self._timer = threading.Timer(limit_s, self._cut)
        self._timer.daemon = True

    def __enter__(self) -> _Watchdog:
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._timer.cancel()

    def _cut(self) -> None:
        self.fired.set()
        for sock in self.sockets:
            with contextlib.suppress(OSError):
                socket.socket.shutdown(sock, socket.SHUT_RDWR)  # the plain socket call, also under TLS


@dataclass(frozen=True)
class Sink:
    """One place tickets go: a name, an endpoint, how a ticket becomes its payload, delivery settings.

    `problem` is a configuration problem found when the environment was read: such a sink fails every delivery
    with it (the ticket is spooled) and never sends anything.
    """

    name: str
    url: str
    payload: Payload
    headers: Mapping[str, str] = field(default_factory=dict)
    timeout_s: float = 5.0
    attempts: int = 3
    backoff_s: float = 0.5
    problem: str = ""

    @property
    def tries(self) -> int:
        return max(1, min(self.attempts, MAX_ATTEMPTS))

    @property
    def deadline_s(self) -> float:
        """The longest one delivery may take: every try's timeout plus every backoff pause."""
        pauses = sum(self.backoff_s * float(2**pause) for pause in range(self.tries - 1))
        return self.tries * self.timeout_s + pauses

    @property
    def where(self) -> str:
        return f"{self.name} ({redact_url(self.url)})"

    def send(self, ticket: Mapping[str, Any]) -> None:
        """POST the payload, retrying timeouts, connection errors, 408/425/429 and 5xx within the deadline;
        raise SinkError in the end (whatever went wrong, with the URL's secret parts left out)."""
        if self.problem:
            raise SinkError(f"{self.where} is not usable: {self.problem}")
        try:
            body = json.dumps(self.payload(ticket), ensure_ascii=False, default=str).encode("utf-8")
            problem = self._deliver(body, str(ticket["id"]))
        except Exception as exc:  # noqa: BLE001 - whatever happens, the caller sees a SinkError and spools
            problem = f"unexpected {type(exc).__name__}: {exc}"
        if problem:
            raise SinkError(f"{self.where} did not take ticket {ticket.get('id')}: {_scrub(problem, self.url)}")

    def _deliver(self, body: bytes, ticket_id: str) -> str:
        """Try until taken, a failure not worth retrying, or the deadline; "" when taken, else the last problem."""
        deadline = time.monotonic() + self.deadline_s
        problem = ""
        for attempt in range(self.tries):
            if attempt:
                time.sleep(max(0.0, min(self.backoff_s * 2 ** (attempt - 1), deadline - time.monotonic())))
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return f"{problem} (delivery deadline of {self.deadline_s:g} s reached)"
            problem, retry = self._attempt(self._request(body, ticket_id), min(self.timeout_s, remaining))
            if not problem or not retry:
                break
        return problem

    def _request(self, body: bytes, ticket_id: str) -> urllib.request.Request:
        headers = {"Content-Type": "application/json", "Idempotency-Key": ticket_id}
        request = urllib.request.Request(self.url, data=body, headers=headers, method="POST")
        for name, value in self.headers.items():
            request.add_unredirected_header(name, value)  # credentials never travel to another URL
        return request

    def _attempt(self, request: urllib.request.Request, limit_s: float) -> tuple[str, bool]:
        """One POST bounded by limit_s as a whole: ("", False) when taken, else (problem, worth retrying)."""
        with _Watchdog(limit_s) as watchdog:
            opener = urllib.request.build_opener(
                _RefuseRedirects(), _TrackedHTTP(watchdog.sockets), _TrackedHTTPS(watchdog.sockets)
            )
            try:
                with opener.open(request, timeout=limit_s) as response:
                    response.read()
                    status = int(response.status)
            except urllib.error.HTTPError as exc:
                exc.close()
                return _status_problem(exc.code, str(exc.reason))
            except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
                if watchdog.fired.is_set():
                    return f"no complete answer within {limit_s:g} s", True
                return _describe(exc), True
        return _status_problem(status, "")


def _describe(exc: Exception) -> str:
    """A transport failure in a few words (a URLError's underlying reason, a malformed answer named as such)."""
    reason: object = getattr(exc, "reason", None) or exc
    text = str(reason).strip() or type(reason).__name__
    if isinstance(reason, http.client.HTTPException):
        return f"malformed HTTP answer ({type(reason).__name__}: {text[:200]})"
    return text


def _status_problem(status: int, reason: str) -> tuple[str, bool]:
    """An HTTP status as a delivery outcome: 2xx taken; 3xx refused (never followed); some retried."""
    if 200 <= status < 300:
        return "", False
    if 300 <= status < 400:
        return f"HTTP {status}: redirect refused; a sink must take the ticket at its configured URL", False
    return f"HTTP {status} {reason}".strip(), status in RETRY_STATUSES


def webhook_payload(ticket: Mapping[str, Any]) -> dict[str, Any]:
    """The generic webhook gets the ticket itself (its `dedup_key` lets a receiver drop repeats)."""
    return dict(ticket)


def slack_escape(text: object) -> str:
    """Untrusted text for Slack: `&`, `<` and `>` as entities (Slack's rule), so a log line cannot @-mention a
    channel (`<!channel>`), ping a user or disguise a link (`<https://evil|click>`)."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_payload(ticket: Mapping[str, Any]) -> dict[str, Any]:
    """A Slack incoming-webhook message: fallback text plus blocks (header, fields, reason, log lines).

    Every text from the ticket is escaped: it quotes log lines, alert text and model output. A resolution notice
    is one line."""
    if ticket.get("kind") == TICKET_RESOLVED:
        text = f"[RESOLVED] {slack_escape(ticket['resolves'])}: {slack_escape(ticket.get('summary'))}"
        return {"text": text[:SLACK_TEXT_LIMIT]}
    server = slack_escape(ticket.get("server_id") or "unidentified server")
    severity = slack_escape(str(ticket.get("severity", "")).upper())
    ticket_id = slack_escape(ticket["id"])
    text = f"[{severity}] {ticket_id} {server}: {slack_escape(ticket.get('summary') or ticket.get('reason'))}"
    evidence = ticket.get("evidence") or {}
    fields = [
        ("Severity", severity),
        ("Server", server),
        ("Health", slack_escape(evidence.get("health_summary") or "n/a")),
        ("Category", slack_escape(evidence.get("category") or "n/a")),
    ]
    reason = slack_escape(ticket.get("reason") or "escalated")[:SLACK_TEXT_LIMIT]
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": f"{ticket['id']}: {ticket.get('server_id')}"[:150]}},
        {"type": "section", "fields": [_mrkdwn(f"*{name}*\n{value}") for name, value in fields]},
        {"type": "section", "text": _mrkdwn(reason)},
    ]
    lines = [slack_escape(line) for line in evidence.get("log_lines") or []]
    if lines:
        quoted = "\n".join(lines)[:SLACK_TEXT_LIMIT].replace("```", "'''")
        blocks.append({"type": "section", "text": _mrkdwn(f"```{quoted}```")})
    blocks.append({"type": "context", "elements": [_mrkdwn(f"thread {slack_escape(ticket.get('thread_id'))}")]})
    return {"text": text[:SLACK_TEXT_LIMIT], "blocks": blocks}


def _mrkdwn(text: str) -> dict[str, str]:
    return {"type": "mrkdwn", "text": text}


def pagerduty_payload(routing_key: str, console_url: str = "") -> Payload:
    """PagerDuty Events API v2: a ticket is a `trigger` (dedup key: the ticket's, or Alertmanager's for its group
    when IT_SUPPORT_PAGERDUTY_DEDUP=alertmanager), with a link to the console; a lifecycle event
    (`kind: pagerduty_event`) is an `acknowledge` or `resolve` of a dedup key."""

    def build(ticket: Mapping[str, Any]) -> dict[str, Any]:
        if ticket.get("kind") == TICKET_RESOLVED:
            key = str(ticket.get("pagerduty_dedup_key") or ticket["resolves"])[:255]
            return {"routing_key": routing_key, "event_action": "resolve", "dedup_key": key}
        if ticket.get("kind") == PAGERDUTY_EVENT:
            action = str(ticket.get("event_action"))
            if action not in ("acknowledge", "resolve"):
                raise SinkError(f"PagerDuty lifecycle action {action!r} is not acknowledge or resolve")
            return {"routing_key": routing_key, "event_action": action, "dedup_key": str(ticket["dedup_key"])[:255]}
        evidence = ticket.get("evidence") or {}
        links = []
        if console_url and ticket.get("thread_id"):
            href = f"{console_url.rstrip('/')}/console/incident/{quote(str(ticket['thread_id']), safe='')}"
            links.append({"href": href, "text": "the incident in the it-support-agent console"})
        return {
            "routing_key": routing_key,
            "event_action": "trigger",
            "dedup_key": str(ticket.get("pagerduty_dedup_key") or ticket["id"])[:255],
            "client": "it-support-agent",
            **({"client_url": links[0]["href"], "links": links} if links else {}),
            "payload": {
                "summary": f"{ticket.get('server_id') or 'unidentified server'}: "
                f"{ticket.get('summary') or ticket.get('reason')}"[:1024],
                "source": str(ticket.get("server_id") or "it-support-agent"),
                "severity": PAGERDUTY_SEVERITIES.get(str(ticket.get("severity")), "info"),
                "custom_details": {
                    "ticket_id": ticket["id"],
                    "thread_id": ticket.get("thread_id"),
                    "reason": ticket.get("reason"),
                    "health": evidence.get("health_summary"),
                    "category": evidence.get("category"),
                    "log_lines": evidence.get("log_lines"),
                    "actions_taken": ticket.get("actions_taken"),
                },
            },
        }

    return build


def configured_sinks(environ: Mapping[str, str] = os.environ) -> list[Sink]:
    """The sinks the environment names (none by default: the JSONL outbox alone).

    A sink whose URL is unusable (credentials in it, not http/https) is kept with its `problem`, so the ticket is
    spooled with a clear error instead of being sent somewhere unintended.
    """
    timeout_s = _number(environ, "IT_SUPPORT_SINK_TIMEOUT_S", 5.0)
    attempts = int(_number(environ, "IT_SUPPORT_SINK_ATTEMPTS", 3))
    backoff_s = _number(environ, "IT_SUPPORT_SINK_BACKOFF_S", 0.5)

    def sink(name: str, url: str, payload: Payload, headers: Mapping[str, str] | None = None) -> Sink:
        return Sink(
            name,
            url,
            payload,
            headers or {},
            timeout_s=timeout_s,
            attempts=attempts,
            backoff_s=backoff_s,
            problem=url_problem(name, url),
        )

    sinks: list[Sink] = []
    if environ.get("IT_SUPPORT_WEBHOOK_URL"):
        token = environ.get("IT_SUPPORT_WEBHOOK_TOKEN", "")
        sinks.append(
            sink(
                "webhook",
                environ["IT_SUPPORT_WEBHOOK_URL"],
                webhook_payload,
                {"Authorization": f"Bearer {token}"} if token else None,
            )
        )
    if environ.get("IT_SUPPORT_SLACK_WEBHOOK_URL"):
        sinks.append(sink("slack", environ["IT_SUPPORT_SLACK_WEBHOOK_URL"], slack_payload))
    if environ.get("IT_SUPPORT_PAGERDUTY_ROUTING_KEY"):
        sinks.append(
            sink(
                "pagerduty",
                environ.get("IT_SUPPORT_PAGERDUTY_URL") or PAGERDUTY_EVENTS_URL,
                pagerduty_payload(environ["IT_SUPPORT_PAGERDUTY_ROUTING_KEY"], _console_url(environ)),
            )
        )
    return sinks


def sink_problems(environ: Mapping[str, str] = os.environ) -> list[str]:
    """Configuration problems of the sinks the environment names (for commands that check at start)."""
    return [f"{sink.name} sink: {sink.problem}" for sink in configured_sinks(environ) if sink.problem]


def alertmanager_dedup_key(group_key: str) -> str:
    """The dedup key Alertmanager's own PagerDuty notifier uses for an alert group: the SHA-256 of its group key."""
    return hashlib.sha256(group_key.encode("utf-8")).hexdigest()


def uses_alertmanager_dedup(environ: Mapping[str, str] = os.environ) -> bool:
    """IT_SUPPORT_PAGERDUTY_DEDUP=alertmanager: join the PagerDuty alert Alertmanager raised for the same group."""
    return (
        bool(environ.get("IT_SUPPORT_PAGERDUTY_ROUTING_KEY"))
        and environ.get("IT_SUPPORT_PAGERDUTY_DEDUP") == "alertmanager"
    )


def _console_url(environ: Mapping[str, str]) -> str:
    """IT_SUPPORT_CONSOLE_URL when it is a plain http(s) URL (it goes into every PagerDuty trigger as a link)."""
    url = environ.get("IT_SUPPORT_CONSOLE_URL", "").strip()
    return url if url and not url_problem("console", url) else ""


def _number(environ: Mapping[str, str], name: str, default: float) -> float:
    try:
        value = float(environ.get(name) or default)
    except ValueError:
        return default
    return value if math.isfinite(value) and value >= 0 else default


def deliver_to_sinks(state_dir: Path, ticket: Mapping[str, Any], sinks: Sequence[Sink]) -> dict[str, Outcome]:
    """Send a ticket to every sink that has not taken it yet: name -> (delivered | duplicate | failed, error).

    Each sink's outcome stands on its own: one that took the ticket is recorded even if a later one fails, and no
    failure escapes as an exception. The record is claimed and settled in short transactions, never held while
    sending; a claim (expiring after the sink's deadline) keeps a concurrent delivery of the same ticket, in this
    process or another replica, from sending it to the same sink meanwhile.
    """
    path = state_dir / DELIVERIES_FILE
    return {sink.name: _deliver_once(path, ticket, sink) for sink in sinks}


def _deliver_once(path: Path, ticket: Mapping[str, Any], sink: Sink) -> Outcome:
    ticket_id = str(ticket["id"])
    try:
        settled, where, until = _claim(path, ticket_id, sink)
    except (OSError, ValueError) as exc:  # no usable record: sending could send twice
        return "failed", f"{sink.name}: delivery record unusable, not sent: {exc}"
    if settled is not None:
        return settled
    try:
        sink.send(ticket)
        outcome: Outcome = ("delivered", "")
    except SinkError as exc:
        outcome = ("failed", str(exc))
    except Exception as exc:  # noqa: BLE001 - a sink problem never escapes: the ticket is spooled instead
        outcome = ("failed", f"{sink.where} did not take ticket {ticket_id}: unexpected {type(exc).__name__}")
    with contextlib.suppress(OSError, ValueError, StoreError):  # the claim then simply expires
        _settle(path, ticket_id, sink.name, delivered=outcome[0] == "delivered", where=where, until=until)
    return outcome


def _claim(path: Path, ticket_id: str, sink: Sink) -> tuple[Outcome | None, str, float]:
    """(the outcome when the sink has the ticket or is being sent it, or None after claiming; where the claim is:
    "store", or "file" while the store cannot be used; when it expires, which also names it)."""
    until = time.time() + sink.deadline_s + CLAIM_SLACK_S
    try:
        store = open_store(path.parent)
        if path.exists():  # records kept while the store could not be used: into the store, once
            _import_file_records(path, store)
        state = store.claim_delivery(ticket_id, sink.name, until)
    except StoreError:
        return _claim_in_file(path, ticket_id, sink, until), "file", until
    if state == "delivered":
        return ("duplicate", ""), "store", until
    if state == "sending":
        busy = f"{sink.name} is being sent ticket {ticket_id} by another delivery right now"
        return ("failed", busy), "store", until
    return None, "store", until


def _import_file_records(path: Path, store: Store) -> None:
    """Take deliveries.json's records into the store and set the file aside, both under the file's lock (so a
    fallback writer waiting on it starts a new file afterwards instead of losing its record)."""
    with file_lock(path):
        if not path.exists():  # another process took it in while this one waited
            return
        document = read_json(path)
        records = {
            str(ticket_id): {str(name): float(at) for name, at in record.items() if isinstance(at, float | int)}
            for ticket_id, record in _section(document, "tickets").items()
            if isinstance(record, dict)
        }
        store.record_deliveries(records)
        os.replace(path, path.with_name(path.name + ".migrated"))


def _claim_in_file(path: Path, ticket_id: str, sink: Sink, until: float) -> Outcome | None:
    """Under the file lock: the outcome when the sink has the ticket or is being sent it; None after claiming."""
    with locked_json(path) as document:
        tickets, claims = _section(document, "tickets"), _section(document, "sending")
        now = time.time()
        for key in [key for key, expires in claims.items() if not isinstance(expires, float | int) or expires < now]:
            del claims[key]
        _forget_old(tickets)
        record = tickets.get(ticket_id)
        if isinstance(record, dict) and sink.name in record:
            return "duplicate", ""
        claim = f"{ticket_id} {sink.name}"
        if claim in claims:
            return "failed", f"{sink.name} is being sent ticket {ticket_id} by another delivery right now"
        claims[claim] = until
    return None


def _settle(path: Path, ticket_id: str, sink_name: str, *, delivered: bool, where: str, until: float) -> None:
    """Release the claim and, when the sink took the ticket, record that."""
    if where == "store":
        open_store(path.parent).settle_delivery(ticket_id, sink_name, delivered, until)
        return
    with locked_json(path) as document:
        _section(document, "sending").pop(f"{ticket_id} {sink_name}", None)
        if delivered:
            tickets = _section(document, "tickets")
            record = tickets.get(ticket_id)
            if not isinstance(record, dict):
                record = tickets[ticket_id] = {}
            record[sink_name] = time.time()


def _section(document: dict[str, Any], name: str) -> dict[str, Any]:
    if not isinstance(document.get(name), dict):
        document[name] = {}
    section: dict[str, Any] = document[name]
    return section


def _forget_old(tickets: dict[str, Any]) -> None:
    cutoff = time.time() - KEEP_DELIVERIES_S
    for ticket_id in [key for key, record in tickets.items() if not _recent(record, cutoff)]:
        del tickets[ticket_id]


def _recent(record: Any, cutoff: float) -> bool:
    stamps = [value for value in record.values() if isinstance(value, float | int)] if isinstance(record, dict) else []
    return bool(stamps) and max(stamps) >= cutoff
