"""Escalation sinks besides the outbox: JSON webhook, Slack, PagerDuty Events v2, set by environment."""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tools.statefile import locked_json

DELIVERIES_FILE = "deliveries.json"
KEEP_DELIVERIES_S = 30 * 24 * 3600.0
PAGERDUTY_EVENTS_URL = "https://events.pagerduty.com/v2/enqueue"
PAGERDUTY_SEVERITIES = {"critical": "critical", "high": "error", "medium": "warning", "low": "info"}
RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
SLACK_TEXT_LIMIT = 2_900
Payload = Callable[[Mapping[str, Any]], dict[str, Any]]


class SinkError(RuntimeError):
    """A sink did not take the ticket (down, timed out, refused)."""


@dataclass(frozen=True)
class Sink:
    """One place tickets go: a name, an endpoint, how a ticket becomes its payload, delivery settings."""

    name: str
    url: str
    payload: Payload
    headers: Mapping[str, str] = field(default_factory=dict)
    timeout_s: float = 5.0
    attempts: int = 3
    backoff_s: float = 0.5

    def send(self, ticket: Mapping[str, Any]) -> None:
        """POST the payload, retrying timeouts, connection errors, 429 and 5xx; raise SinkError in the end."""
        body = json.dumps(self.payload(ticket), ensure_ascii=False, default=str).encode("utf-8")
        headers = {"Content-Type": "application/json", "Idempotency-Key": str(ticket["id"]), **self.headers}
        problem = ""
        for attempt in range(max(1, self.attempts)):
            if attempt:
                time.sleep(self.backoff_s * 2 ** (attempt - 1))
            try:
                request = urllib.request.Request(self.url, data=body, headers=headers, method="POST")
                with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                    response.read()
                return
            except ValueError as exc:
                problem = f"bad URL: {exc}"
                break
            except urllib.error.HTTPError as exc:
                problem = f"HTTP {exc.code} {exc.reason}"
                if exc.code not in RETRY_STATUSES:
                    break
            except (urllib.error.URLError, OSError) as exc:
                problem = str(getattr(exc, "reason", exc))
        raise SinkError(f"{self.name} did not take ticket {ticket['id']}: {problem}")


def webhook_payload(ticket: Mapping[str, Any]) -> dict[str, Any]:
    """The generic webhook gets the ticket itself (its `dedup_key` lets a receiver drop repeats)."""
    return dict(ticket)


def slack_payload(ticket: Mapping[str, Any]) -> dict[str, Any]:
    """A Slack incoming-webhook message: fallback text plus blocks (header, fields, reason, log lines)."""
    server = ticket.get("server_id") or "unidentified server"
    severity = str(ticket.get("severity", "")).upper()
    text = f"[{severity}] {ticket['id']} {server}: {ticket.get('summary') or ticket.get('reason')}"
    evidence = ticket.get("evidence") or {}
    fields = [("Severity", severity), ("Server", server), ("Health", evidence.get("health_summary") or "n/a"),
              ("Category", evidence.get("category") or "n/a")]
    reason = str(ticket.get("reason") or "escalated")[:SLACK_TEXT_LIMIT]
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": f"{ticket['id']}: {server}"[:150]}},
        {"type": "section", "fields": [_mrkdwn(f"*{name}*\n{value}") for name, value in fields]},
        {"type": "section", "text": _mrkdwn(reason)},
    ]
    lines = [str(line) for line in evidence.get("log_lines") or []]
    if lines:
        quoted = "\n".join(lines)[:SLACK_TEXT_LIMIT].replace("```", "'''")
        blocks.append({"type": "section", "text": _mrkdwn(f"```{quoted}```")})
    blocks.append({"type": "context", "elements": [_mrkdwn(f"thread {ticket.get('thread_id')}")]})
    return {"text": text[:SLACK_TEXT_LIMIT], "blocks": blocks}


def _mrkdwn(text: str) -> dict[str, str]:
    return {"type": "mrkdwn", "text": text}


def pagerduty_payload(routing_key: str) -> Payload:
    """PagerDuty Events API v2 `trigger`, deduplicated by the ticket id."""

    def build(ticket: Mapping[str, Any]) -> dict[str, Any]:
        evidence = ticket.get("evidence") or {}
        return {
            "routing_key": routing_key,
            "event_action": "trigger",
            "dedup_key": str(ticket["id"]),
            "client": "it-support-agent",
            "payload": {
                "summary": f"{ticket.get('server_id') or 'unidentified server'}: "
                           f"{ticket.get('summary') or ticket.get('reason')}"[:1024],
                "source": str(ticket.get("server_id") or "it-support-agent"),
                "severity": PAGERDUTY_SEVERITIES.get(str(ticket.get("severity")), "info"),
                "custom_details": {
                    "ticket_id": ticket["id"], "thread_id": ticket.get("thread_id"),
                    "reason": ticket.get("reason"), "health": evidence.get("health_summary"),
                    "category": evidence.get("category"),
                    "log_lines": evidence.get("log_lines"), "actions_taken": ticket.get("actions_taken"),
                },
            },
        }

    return build


def configured_sinks(environ: Mapping[str, str] = os.environ) -> list[Sink]:
    """The sinks the environment names (none by default: the JSONL outbox alone)."""
    timeout_s = _number(environ, "IT_SUPPORT_SINK_TIMEOUT_S", 5.0)
    attempts = int(_number(environ, "IT_SUPPORT_SINK_ATTEMPTS", 3))
    backoff_s = _number(environ, "IT_SUPPORT_SINK_BACKOFF_S", 0.5)

    def sink(name: str, url: str, payload: Payload, headers: Mapping[str, str] | None = None) -> Sink:
        return Sink(name, url, payload, headers or {}, timeout_s=timeout_s, attempts=attempts, backoff_s=backoff_s)

    sinks: list[Sink] = []
    if environ.get("IT_SUPPORT_WEBHOOK_URL"):
        token = environ.get("IT_SUPPORT_WEBHOOK_TOKEN", "")
        sinks.append(sink("webhook", environ["IT_SUPPORT_WEBHOOK_URL"], webhook_payload,
                          {"Authorization": f"Bearer {token}"} if token else None))
    if environ.get("IT_SUPPORT_SLACK_WEBHOOK_URL"):
        sinks.append(sink("slack", environ["IT_SUPPORT_SLACK_WEBHOOK_URL"], slack_payload))
    if environ.get("IT_SUPPORT_PAGERDUTY_ROUTING_KEY"):
        sinks.append(sink("pagerduty", environ.get("IT_SUPPORT_PAGERDUTY_URL") or PAGERDUTY_EVENTS_URL,
                          pagerduty_payload(environ["IT_SUPPORT_PAGERDUTY_ROUTING_KEY"])))
    return sinks


def _number(environ: Mapping[str, str], name: str, default: float) -> float:
    try:
        value = float(environ.get(name) or default)
    except ValueError:
        return default
    return value if value >= 0 else default


def deliver_to_sinks(state_dir: Path, ticket: Mapping[str, Any],
                     sinks: Sequence[Sink]) -> dict[str, tuple[str, str]]:
    """Send a ticket to every sink that has not taken it yet: name -> (delivered | duplicate | failed, error).

    Deliveries are recorded in the state directory under a lock held while sending, so retries and concurrent
    flushes never send a ticket twice to a sink that took it.
    """
    if not sinks:
        return {}
    results: dict[str, tuple[str, str]] = {}
    with locked_json(state_dir / DELIVERIES_FILE) as document:
        record = document.setdefault("tickets", {}).setdefault(str(ticket["id"]), {})
        for sink in sinks:
            if sink.name in record:
                results[sink.name] = ("duplicate", "")
                continue
            try:
                sink.send(ticket)
            except SinkError as exc:
                results[sink.name] = ("failed", str(exc))
                continue
            record[sink.name] = time.time()
            results[sink.name] = ("delivered", "")
        _forget_old(document["tickets"])
    return results


def _forget_old(tickets: dict[str, dict[str, float]]) -> None:
    cutoff = time.time() - KEEP_DELIVERIES_S
    for ticket_id in [key for key, record in tickets.items() if record and max(record.values()) < cutoff]:
        del tickets[ticket_id]
