"""The operator console: server-rendered pages of incidents, approvals, questions and owed tickets, and the few
actions an operator takes there (approve or reject a restart, name the server, retry deliveries).

This module owns the pages, the session (a cookie derived from IT_SUPPORT_INTAKE_TOKEN, HttpOnly and
SameSite=Strict), the CSRF token every form carries, and running an answer in the background. It needs no CDN or
internet access: the page's little script is inline. Without a configured token the console is read-only.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import html
import json
import logging
import threading
import time
from collections.abc import Mapping
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.types import Command

from it_support_agent.graph.app.checkpoints import unfinished_steps
from it_support_agent.incident.context import Context
from it_support_agent.nodes.escalate import file_unfinished
from it_support_agent.tools import audit
from it_support_agent.tools.outbox import TicketDesk
from it_support_agent.tools.statefile import thread_lock
from it_support_agent.tools.store import open_store

CONSOLE_PATH = "/console"
SESSION_COOKIE = "it_support_session"
POLL_MS = 2000
log = logging.getLogger(__name__)

_STATUS = {"restart": "restarted", "escalate": "escalated", "none": "no action"}


def session_value(token: str) -> str:
    return hmac.new(token.encode(), b"console-session", hashlib.sha256).hexdigest()


def csrf_value(token: str) -> str:
    return hmac.new(token.encode(), b"console-csrf", hashlib.sha256).hexdigest()


def signed_in(cookie_header: str | None, token: str) -> bool:
    """Whether the request carries the console's session cookie for this token."""
    if not token or not cookie_header:
        return False
    for part in cookie_header.split(";"):
        name, _, value = part.strip().partition("=")
        if name == SESSION_COOKIE and hmac.compare_digest(value, session_value(token)):
            return True
    return False


class Console:
    """Reads incidents from the state store and checkpoints; runs the operator's answers on background threads."""

    def __init__(self, context: Context, app: Any, token: str) -> None:
        self._context = context
        self._app = app
        self._token = token
        self._store = open_store(context.state_path)

    # --- reading -------------------------------------------------------------------------------------------

    def incidents(self) -> list[dict[str, Any]]:
        """Every incident, newest first: thread, status, server, age, outcome, model, and what it waits for."""
        rows: list[dict[str, Any]] = []
        now = time.time()
        for thread_id, created, server_id, outcome in reversed(self._store.threads()):
            row: dict[str, Any] = {
                "thread_id": thread_id,
                "server_id": server_id,
                "age_s": round(now - created),
                "outcome": outcome,
                "status": _STATUS.get(outcome or ""),
                "model": None,
                "request": None,
            }
            if row["status"] is None:
                snapshot = self._app.get_state(_config(thread_id))
                row["model"] = snapshot.values.get("model")
                if snapshot.interrupts:
                    request = snapshot.interrupts[0].value
                    row["request"] = request
                    question = request.get("type") == "choose_server" if isinstance(request, dict) else False
                    row["status"] = "asks which server" if question else "awaiting approval"
                elif unfinished_steps(snapshot):
                    row["status"] = "unfinished"
                else:
                    row["status"] = "in progress"
            rows.append(row)
        return rows

    def incident(self, thread_id: str) -> dict[str, Any] | None:
        snapshot = self._app.get_state(_config(thread_id))
        if not snapshot.values:
            return None
        values = dict(snapshot.values)
        request = snapshot.interrupts[0].value if snapshot.interrupts else None
        return {
            "thread_id": thread_id,
            "values": values,
            "request": request,
            "audit": list(self._store.audit_events(thread_id)),
            "unfinished": unfinished_steps(snapshot),
        }

    def owed(self) -> list[dict[str, Any]]:
        """Tickets a sink still owes a delivery (the store's queue and the spool)."""
        return TicketDesk(self._context.state_path).owed()

    # --- acting ----------------------------------------------------------------------------------------------

    def answer(self, thread_id: str, answer: Mapping[str, Any], by: str = "console") -> str:
        """Start answering a waiting thread in the background; "" when started, else why not."""
        snapshot = self._app.get_state(_config(thread_id))
        if not snapshot.interrupts:
            return f"incident {thread_id} is not waiting for an answer"
        context = self._context
        if snapshot.interrupts[0].value.get("type") == "choose_server":
            context = dataclasses.replace(context, interactive="always")  # the question was asked: take the answer
        audit.record(
            context.state_path, thread_id, "console_answer", by=by, **{k: str(v)[:200] for k, v in answer.items()}
        )
        threading.Thread(
            target=self._run, args=(thread_id, dict(answer), context), name=f"console-{thread_id}", daemon=True
        ).start()
        return ""

    def _run(self, thread_id: str, answer: dict[str, Any], context: Context) -> None:
        try:
            with thread_lock(context.state_path, thread_id):
                if not self._app.get_state(_config(thread_id)).interrupts:
                    return  # answered meanwhile (another tab, or the CLI)
                self._app.invoke(Command(resume=answer), _config(thread_id), context=context, durability="sync")
        except Exception as exc:  # noqa: BLE001 - the operator's answer must still reach a ticket on failure
            log.exception("answering %s failed", thread_id)
            file_unfinished(context, thread_id, {}, "", exc)

    def retry(self) -> dict[str, int]:
        return TicketDesk(self._context.state_path).flush()

    # --- pages -----------------------------------------------------------------------------------------------

    def page(self, status_filter: str = "") -> str:
        rows = self.incidents()
        body = [
            "<h1>Incidents</h1>",
            _filters(status_filter),
            f'<div id="rows">{self.rows_fragment(status_filter, rows)}</div>',
            "<h2>Tickets a sink still owes</h2>",
            self._owed_fragment(),
        ]
        script = (
            "<script>const f=new URLSearchParams(location.search).get('status')||'';"
            f"setInterval(()=>fetch('{CONSOLE_PATH}/rows?status='+encodeURIComponent(f),{{credentials:'same-origin'}})"
            ".then(r=>r.ok?r.text():null).then(t=>{if(t!==null)document.getElementById('rows').innerHTML=t;}),"
            f"{POLL_MS});</script>"
        )
        return _document("Incidents", "\n".join(body) + script)

    def rows_fragment(self, status_filter: str = "", rows: list[dict[str, Any]] | None = None) -> str:
        rows = self.incidents() if rows is None else rows
        shown = [row for row in rows if not status_filter or row["status"] == status_filter]
        if not shown:
            return '<p class="empty">No incidents.</p>'
        lines = [
            "<table><thead><tr><th>incident</th><th>status</th><th>server</th><th>age</th><th>model</th>"
            "<th>waiting for</th></tr></thead><tbody>"
        ]
        for row in shown:
            link = f'<a href="{CONSOLE_PATH}/incident/{_e(row["thread_id"])}">{_e(row["thread_id"])}</a>'
            lines.append(
                f'<tr data-thread="{_e(row["thread_id"])}" data-status="{_e(row["status"])}"><td>{link}</td>'
                f'<td class="status">{_e(row["status"])}</td><td>{_e(row["server_id"] or "-")}</td>'
                f"<td>{_age(row['age_s'])}</td><td>{_e(row['model'] or '')}</td>"
                f"<td>{self._question(row['thread_id'], row['request'])}</td></tr>"
            )
        lines.append("</tbody></table>")
        return "".join(lines)

    def incident_page(self, thread_id: str) -> str | None:
        found = self.incident(thread_id)
        if found is None:
            return None
        values = found["values"]
        diagnosis = values.get("diagnosis") or {}
        ticket = values.get("ticket") or {}
        status = _STATUS.get(values.get("outcome") or "") or ("waiting" if found["request"] else "in progress")
        parts = [
            f'<p><a href="{CONSOLE_PATH}">all incidents</a></p>',
            f"<h1>Incident {_e(thread_id)}</h1>",
            f'<p>status: <strong id="status">{_e(status)}</strong> · server: {_e(values.get("server_id") or "-")} '
            f"· model: {_e(values.get('model') or '-')}</p>",
            f"<p class='incident'>{_e(values.get('incident') or '')}</p>",
        ]
        if found["request"]:
            parts.append(f"<h2>Waiting for you</h2>{self._question(thread_id, found['request'])}")
        parts.append(
            f"<h2>Finding</h2><p>{_e(diagnosis.get('category') or '-')}: {_e(diagnosis.get('reason') or '')}</p>"
        )
        parts.append("<h3>Evidence for</h3>" + _list(diagnosis.get("evidence") or []))
        against = (ticket.get("evidence") or {}).get("not_explained_by_finding") or diagnosis.get("against") or []
        parts.append("<h3>Evidence against</h3>" + _list(against))
        policy = values.get("policy") or {}
        if policy:
            verdict = "allowed" if policy.get("allowed") else "refused"
            why = policy.get("reason") or "; ".join(policy.get("reasons") or [])
            parts.append(f"<h2>Policy</h2><p id='policy'>{verdict}: {_e(why)}</p>")
        restart = values.get("restart") or {}
        if restart:
            verified = "verified healthy" if restart.get("verified") else "not verified"
            did = restart.get("detail") or restart.get("error") or ""
            parts.append(f'<h2>Restart</h2><p id="restart">{_e(did)} ({verified})</p>')
        if ticket:
            deliveries = ticket.get("delivery") or {}
            sent = json.dumps(deliveries.get("sinks") or deliveries.get("status") or {})
            parts.append(
                f'<h2>Ticket</h2><p id="ticket">{_e(ticket.get("id"))} · severity {_e(ticket.get("severity"))} · '
                f"{_e(ticket.get('reason'))}</p><p>deliveries: {_e(sent)}</p>"
            )
        if values.get("summary"):
            parts.append(f"<h2>Report</h2><pre>{_e(values['summary'])}</pre>")
        parts.append("<h2>Audit</h2>" + _list([f"{e.get('ts', '')} {e.get('kind', '')}" for e in found["audit"]]))
        script = (
            ""
            if status not in ("waiting", "in progress")
            else f"<script>setTimeout(()=>location.reload(),{POLL_MS});</script>"
        )
        return _document(f"Incident {thread_id}", "\n".join(parts) + script)

    def login_page(self, problem: str = "") -> str:
        note = f'<p class="problem">{_e(problem)}</p>' if problem else ""
        return _document(
            "Sign in",
            f"<h1>Sign in</h1>{note}<form method='post' action='{CONSOLE_PATH}/login'>"
            "<label>Intake token <input type='password' name='token' autofocus></label> "
            "<button type='submit'>Sign in</button></form>",
        )

    def _question(self, thread_id: str, request: Any) -> str:
        if not isinstance(request, dict):
            return ""
        if not self._token:
            return "<em>answer with the CLI (set IT_SUPPORT_INTAKE_TOKEN to answer here)</em>"
        hidden = (
            f"<input type='hidden' name='csrf' value='{csrf_value(self._token)}'>"
            f"<input type='hidden' name='thread' value='{_e(thread_id)}'>"
        )
        if request.get("type") == "choose_server":
            options = "".join(f"<option>{_e(c)}</option>" for c in request.get("candidates", [])[:50])
            return (
                f"<form method='post' action='{CONSOLE_PATH}/choose'>{hidden}"
                f"<select name='server'>{options}</select> <button type='submit'>This server</button></form>"
            )
        return (
            f"<form method='post' action='{CONSOLE_PATH}/approve' class='approval'>{hidden}"
            f"<span>{_e(request.get('proposed_action', 'restart'))}</span> "
            "<input name='comment' placeholder='comment for the ticket' maxlength='1000'> "
            "<button type='submit' name='decision' value='approve'>Approve</button> "
            "<button type='submit' name='decision' value='reject'>Reject</button></form>"
        )

    def _owed_fragment(self) -> str:
        owed = self.owed()
        if not owed:
            return '<p class="empty">None.</p>'
        items = "".join(f"<li>{_e(t['id'])}: {_e(', '.join(t['pending']))} — {_e(t['reason'])}</li>" for t in owed)
        retry = ""
        if self._token:
            retry = (
                f"<form method='post' action='{CONSOLE_PATH}/retry'><input type='hidden' name='csrf' "
                f"value='{csrf_value(self._token)}'><button type='submit'>Retry deliveries</button></form>"
            )
        return f"<ul>{items}</ul>{retry}"


def _config(thread_id: str) -> RunnableConfig:
    return {"configurable": {"thread_id": thread_id}}


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _list(items: list[Any]) -> str:
    return "<ul>" + "".join(f"<li><code>{_e(item)}</code></li>" for item in items) + "</ul>" if items else "<p>none</p>"


def _age(seconds: int) -> str:
    return f"{seconds}s" if seconds < 120 else f"{seconds // 60}m" if seconds < 7200 else f"{seconds // 3600}h"


def _filters(current: str) -> str:
    options = ["", "awaiting approval", "asks which server", "unfinished", "restarted", "escalated", "no action"]
    links = [
        f'<a href="{CONSOLE_PATH}?status={_e(option)}"{" class=current" if option == current else ""}>'
        f"{_e(option or 'all')}</a>"
        for option in options
    ]
    return "<nav>" + " · ".join(links) + "</nav>"


def _document(title: str, body: str) -> str:
    style = (
        "body{font-family:system-ui,sans-serif;margin:2rem;max-width:72rem}table{border-collapse:collapse;width:100%}"
        "td,th{border-bottom:1px solid #ccc;padding:.3rem .5rem;text-align:left;vertical-align:top}"
        "code,pre{white-space:pre-wrap;word-break:break-all}.current{font-weight:bold}.problem{color:#a00}"
    )
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<meta name='viewport' content='width=device-width'><title>{_e(title)} · it-support-agent</title>"
        f"<style>{style}</style></head><body>{body}</body></html>"
    )
