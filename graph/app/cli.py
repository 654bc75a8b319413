"""The command line: run an incident, resume or inspect one, read the audit trail, flush spooled tickets."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sqlite3
import sys
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from it_support_agent.graph.app.options import (
    EXIT_AWAITING_APPROVAL,
    EXIT_ERROR,
    EXIT_OK,
    EXIT_USAGE,
    CliError,
    add_common_options,
    context_from_args,
)
from it_support_agent.tools.store import StoreError

if TYPE_CHECKING:
    from it_support_agent.incident.context import Context

# Each command imports what it uses when it runs, so `--help` and argument errors answer at once.

MAX_INCIDENT_BYTES = 16 * 1024 * 1024


def new_thread_id() -> str:
    return time.strftime("inc-%Y%m%d-%H%M%S-", time.gmtime()) + uuid.uuid4().hex[:6]


def _compiled(context: Context) -> Any:
    from it_support_agent.graph.app.checkpoints import open_checkpointer
    from it_support_agent.graph.builder import compile_graph

    return compile_graph(open_checkpointer(context.state_path))


def _ask(request: dict[str, Any]) -> dict[str, Any] | None:
    """Ask the operator at the terminal; None when they give no usable answer (the thread keeps waiting)."""
    try:
        if request.get("type") == "choose_server":
            print(f"\nWhich server is this about? Known: {', '.join(request.get('candidates', [])[:20])}")
            choice = input("server id (empty to stop here): ").strip()
            return {"server_id": choice} if choice else None
        print(f"\nRestart proposed: {request.get('proposed_action')} ({request.get('health')})")
        print(f"Finding: {request.get('finding')}")
        reply = input("Approve the restart? [y/n, empty to decide later]: ").strip().lower()
    except EOFError:
        return None
    if reply in ("y", "yes"):
        return {"decision": "approve", "comment": ""}
    if reply in ("n", "no"):
        return {"decision": "reject", "comment": input("comment for the ticket (optional): ").strip()}
    return None


def _drive(
    app: Any,
    payload: Any,
    context: Context,
    thread_id: str,
    as_json: bool,
    interactive: bool = False,
    incident: str = "",
) -> int:
    from langgraph.types import Command

    from it_support_agent.graph.app.trace import result_object, trace_lines

    config = {"configurable": {"thread_id": thread_id}}
    if not as_json:
        print(f"thread {thread_id} (model: {context.model}, autonomy: {context.autonomy})")
    try:
        while True:
            for chunk in app.stream(payload, config, context=context, stream_mode="updates", durability="sync"):
                for node, update in chunk.items():
                    if not as_json and node != "__interrupt__":
                        for line in trace_lines(node, update if isinstance(update, dict) else None):
                            print(line)
            snapshot = app.get_state(config)
            interrupts = [item.value for item in snapshot.interrupts]
            answer = _ask(interrupts[0]) if interrupts and interactive else None
            if answer is None:
                break
            payload = Command(resume=answer)
    except Exception as exc:  # noqa: BLE001 - a step, its checkpoint or its audit failed: a human must still know
        return _stopped(app, context, thread_id, exc, as_json, incident)
    result = result_object(thread_id, snapshot.values, interrupts)
    if as_json:
        print(json.dumps(result, ensure_ascii=False, default=str))
    elif interrupts:
        print(f"\nAWAITING APPROVAL — thread {thread_id}")
        print(json.dumps(interrupts[0], indent=2, ensure_ascii=False))
        print(f"Answer with: it-support-agent resume {thread_id} --approve | --reject [--comment TEXT]")
    else:
        print("\n" + (result["summary"] or ""))
        print(f"outcome: {result['outcome']}  thread: {thread_id}")
    return EXIT_AWAITING_APPROVAL if interrupts else EXIT_OK


def _stopped(app: Any, context: Context, thread_id: str, exc: Exception, as_json: bool, incident: str = "") -> int:
    """The run stopped on an error (a full disk, a broken store, a failing step): file what is known, say so."""
    from it_support_agent.incident.text import known_secrets, redact
    from it_support_agent.nodes.escalate import file_unfinished

    values: dict[str, Any] = {}
    if app is not None:
        with contextlib.suppress(Exception):
            values = dict(app.get_state({"configurable": {"thread_id": thread_id}}).values)
    ticket = file_unfinished(context, thread_id, values, incident or str(values.get("incident") or ""), exc)
    delivery = ticket.get("delivery") or {}
    filed = (
        f"ticket {ticket['id']} {delivery.get('status')}"
        if delivery.get("status") != "failed"
        else f"ticket {ticket['id']} could be written nowhere, so it is printed"
    )
    problem = redact(" ".join(str(exc).split())[:300], known_secrets())
    message = (
        f"thread {thread_id} stopped: {type(exc).__name__}: {problem}; {filed}; once the cause is fixed, "
        f"`it-support-agent resume {thread_id}` finishes it"
    )
    if as_json or delivery.get("status") == "failed":
        print(json.dumps({"thread_id": thread_id, "outcome": "error", "error": message, "ticket": ticket}))
    print(f"error: {message}", file=sys.stderr)
    return EXIT_ERROR


def _read_incident(text: str) -> str:
    if text == "-":
        text = sys.stdin.buffer.read(MAX_INCIDENT_BYTES + 1).decode("utf-8", errors="replace")
    if not text.strip():
        raise CliError('the incident text is empty: describe the problem, e.g. "payment-server-01 is slow"')
    from it_support_agent.incident.text import known_secrets, redact

    return redact(text, known_secrets())  # the text is checkpointed: a pasted credential must not be kept


def cmd_run(args: argparse.Namespace) -> int:
    incident = _read_incident(args.incident)
    context = context_from_args(args)
    thread_id = args.thread_id or new_thread_id()
    interactive = not args.json and not args.no_input and sys.stdin.isatty() and args.incident != "-"
    if context.interactive == "auto":
        context.interactive = "always" if interactive else "never"
    try:
        app = _compiled(context)
    except Exception as exc:  # noqa: BLE001 - e.g. a corrupt or read-only state store: the incident is still filed
        return _stopped(None, context, thread_id, exc, args.json, incident)
    return _drive(app, {"incident": incident}, context, thread_id, args.json, interactive, incident)


def cmd_resume(args: argparse.Namespace) -> int:
    from it_support_agent.tools.statefile import thread_lock

    context = context_from_args(args)
    with thread_lock(context.state_path, args.thread_id):  # a second answer waits, then finds none is asked
        return _resume(args, context)


def _resume(args: argparse.Namespace, context: Context) -> int:
    from langgraph.types import Command

    from it_support_agent.graph.app.checkpoints import unfinished_steps
    from it_support_agent.tools import audit

    app = _compiled(context)
    config = {"configurable": {"thread_id": args.thread_id}}
    snapshot = app.get_state(config)
    if not snapshot.values:
        raise CliError(f"unknown thread {args.thread_id!r}: no checkpoint in {context.state_path}")
    recorded = snapshot.values.get("settings") or {}
    if (not args.fleet and recorded.get("fleet")) or (
        not getattr(args, "policy", None) and recorded.get("policy_file")
    ):
        # resumed without --fleet/--policy: continue under the files the incident was decided with, so an approval
        # given from another shell is not spent on a configuration mismatch
        args.fleet = args.fleet or recorded.get("fleet")
        args.policy = getattr(args, "policy", None) or recorded.get("policy_file") or None
        context = context_from_args(args)
    steps = unfinished_steps(snapshot)
    if steps:
        if args.approve or args.reject or args.server:
            raise CliError(
                f"thread {args.thread_id} is not waiting for an answer: it stopped before "
                f"{', '.join(steps)}; resume it without --approve/--reject to continue"
            )
        audit.record(context.state_path, args.thread_id, "resume_after_stop", next=steps)
        return _drive(app, None, context, args.thread_id, args.json)
    if not snapshot.interrupts:
        raise CliError(
            f"thread {args.thread_id} is not waiting for an answer (outcome: "
            f"{snapshot.values.get('outcome', 'in progress')})"
        )
    pending = snapshot.interrupts[0].value
    if pending.get("type") == "choose_server":
        if not args.server:
            raise CliError(f"thread {args.thread_id} asks which server the incident is about: pass --server ID")
        answer: dict[str, Any] = {"server_id": args.server}
        context.interactive = "always"  # the question was asked; the resumed node must take the answer
    else:
        if args.approve == args.reject:
            raise CliError("say either --approve or --reject")
        answer = {"decision": "approve" if args.approve else "reject", "comment": args.comment or ""}
    return _drive(app, Command(resume=answer), context, args.thread_id, args.json)


def _thread_ids(state_dir: str) -> list[str]:
    from it_support_agent.graph.app.checkpoints import CHECKPOINT_FILE

    path = Path(state_dir) / CHECKPOINT_FILE
    if not path.exists():
        return []
    with sqlite3.connect(str(path)) as connection:
        rows = connection.execute("SELECT thread_id, MIN(rowid) FROM checkpoints GROUP BY thread_id ORDER BY 2")
        return [str(row[0]) for row in rows]


_OUTCOME_STATUS = {"restart": "restarted", "escalate": "escalated", "none": "no action"}


def _status(snapshot: Any) -> str:
    if snapshot.interrupts:
        return "awaiting approval"
    from it_support_agent.graph.app.checkpoints import unfinished_steps

    if unfinished_steps(snapshot):
        return "unfinished"  # running now, or stopped (killed, a full disk): `resume` continues it
    status = _OUTCOME_STATUS.get(snapshot.values.get("outcome") or "")
    return status or "in progress"


def cmd_list(args: argparse.Namespace) -> int:
    context = context_from_args(args, index_only=True)
    from it_support_agent.tools.store import open_store

    compiled: list[Any] = []

    def app() -> Any:  # the graph (and its imports) only when a thread's checkpoint must be read
        if not compiled:
            compiled.append(_compiled(context))
        return compiled[0]

    rows: list[dict[str, Any]] = []
    now = time.time()
    indexed = open_store(context.state_path).threads()
    for thread_id, created, server_id, outcome in indexed:
        status = _OUTCOME_STATUS.get(outcome or "")
        if status is None:  # not finished: only its checkpoint says whether it waits for an answer
            status = _status(app().get_state({"configurable": {"thread_id": thread_id}}))
        rows.append({"thread_id": thread_id, "status": status, "server_id": server_id, "age_s": round(now - created)})
    known = {row["thread_id"] for row in rows}
    for thread_id in _thread_ids(context.state_path):  # threads from before the index existed
        if thread_id in known:
            continue
        snapshot = app().get_state({"configurable": {"thread_id": thread_id}})
        created_at = _created_at(app(), thread_id)
        rows.append(
            {
                "thread_id": thread_id,
                "status": _status(snapshot),
                "server_id": snapshot.values.get("server_id"),
                "age_s": round(now - created_at) if created_at else None,
            }
        )
    if args.json:
        print(json.dumps(rows))
        return EXIT_OK
    for row in rows:
        age = "?" if row["age_s"] is None else _age(row["age_s"])
        print(f"{row['thread_id']:<32} {row['status']:<18} {row['server_id'] or '-':<24} {age}")
    if not rows:
        print(f"no incidents in {context.state_path}")
    if any(row["status"] == "unfinished" for row in rows):
        print("unfinished: running now, or stopped (killed, disk full); `it-support-agent resume ID` continues one")
    return EXIT_OK


def _created_at(app: Any, thread_id: str) -> float | None:
    history = list(app.get_state_history({"configurable": {"thread_id": thread_id}}))
    if not history or not history[-1].created_at:
        return None
    from datetime import datetime

    return datetime.fromisoformat(history[-1].created_at).timestamp()


def _age(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit} ago"
    return f"{int(seconds)}s ago"


def cmd_show(args: argparse.Namespace) -> int:
    from it_support_agent.graph.app.trace import trace_lines

    context = context_from_args(args, check_sinks=False)
    app = _compiled(context)
    config = {"configurable": {"thread_id": args.thread_id}}
    history = list(app.get_state_history(config))
    if not history:
        raise CliError(f"unknown thread {args.thread_id!r}: no checkpoint in {context.state_path}")
    for snapshot in reversed(history):
        step = (snapshot.metadata or {}).get("step")
        print(f"step {step:>3}  {snapshot.created_at}  next={','.join(snapshot.next) or 'end'}")
        for task in snapshot.tasks:
            if task.interrupts:
                print(f"          {task.name:<13}waiting for an answer: {task.interrupts[0].value.get('type')}")
            for line in trace_lines(task.name, task.result if isinstance(task.result, dict) else None):
                print(f"          {line}")
    final = history[0]
    print(f"\nstatus: {_status(final)}")
    if final.values.get("summary"):
        print(final.values["summary"])
    return EXIT_OK


def cmd_audit(args: argparse.Namespace) -> int:
    from it_support_agent.tools import audit

    context = context_from_args(args, check_sinks=False)
    count = 0
    for event in audit.events(context.state_path, args.thread_id):
        print(json.dumps(event, ensure_ascii=False, sort_keys=True))
        count += 1
    if count == 0 and args.thread_id:
        raise CliError(f"no audit events for thread {args.thread_id!r}")
    return EXIT_OK


def cmd_prune(args: argparse.Namespace) -> int:
    """Forget finished incidents older than --older-than days: their checkpoints, index and intake rows."""
    from it_support_agent.tools.store import open_store

    if not args.older_than > 0:
        raise CliError("--older-than must be a positive number of days")
    context = context_from_args(args, check_sinks=False)
    if args.dry_run:
        threads = open_store(context.state_path).finished_before(time.time() - args.older_than * 86400)
    else:
        from it_support_agent.graph.app.checkpoints import forget_finished

        checkpointer = _compiled(context).checkpointer
        threads = forget_finished(checkpointer, context.state_path, args.older_than * 86400, args.audit)
        if threads and args.vacuum and not os.environ.get("IT_SUPPORT_DATABASE_URL"):
            from it_support_agent.graph.app.checkpoints import CHECKPOINT_FILE

            with sqlite3.connect(str(Path(context.state_path) / CHECKPOINT_FILE)) as connection:
                connection.execute("VACUUM")  # give the freed pages back to the file system
    verb = "would forget" if args.dry_run else "forgot"
    kept = "" if args.audit else "; their audit events and tickets are kept"
    print(
        json.dumps({"threads": threads, "dry_run": args.dry_run})
        if args.json
        else f"{verb} {len(threads)} finished incident(s) older than {args.older_than:g} days{kept}"
    )
    return EXIT_OK


def cmd_flush(args: argparse.Namespace) -> int:
    from it_support_agent.tools.outbox import TicketDesk

    context = context_from_args(args)
    counts = TicketDesk(context.state_path).flush()
    print(
        json.dumps(counts)
        if args.json
        else f"delivered {counts['delivered']}, already present {counts['duplicate']}, still failing {counts['failed']}"
    )
    return EXIT_OK if counts["failed"] == 0 else EXIT_ERROR


def cmd_eval(args: argparse.Namespace) -> int:
    from it_support_agent.graph.app.evaluation import ScenarioError, load_scenarios, run_scenario, summarise, table

    try:
        scenarios = load_scenarios(args.paths)
    except ScenarioError as exc:
        raise CliError(str(exc)) from None
    model = args.model or "offline"
    results = [run_scenario(scenario, model) for scenario in scenarios]
    summary = {**summarise(results), "model": model}
    if args.json:
        print(json.dumps({"summary": summary, "results": [result.to_dict() for result in results]}))
    else:
        print("\n".join(table(results)))
        print("\n" + "  ".join(f"{key}={value}" for key, value in summary.items()))
    failed = summary["unsafe_restarts"] > 0 or (
        args.min_accuracy is not None and summary["accuracy"] < args.min_accuracy
    )
    return EXIT_ERROR if failed else EXIT_OK


def cmd_bench(args: argparse.Namespace) -> int:
    from it_support_agent.graph.app.bench import (
        growth,
        isolate_from_live_settings,
        render,
        render_growth,
        run_benchmark,
    )

    ignored = isolate_from_live_settings()
    if ignored:
        print(
            f"bench: ignoring {', '.join(ignored)} (a benchmark files only to its own temporary state)", file=sys.stderr
        )

    if args.growth:
        try:
            marks = [int(mark) for mark in args.growth.split(",")]
        except ValueError:
            raise CliError(f"--growth takes incident counts separated by commas, not {args.growth!r}") from None
        figures = growth(marks, sample=args.repeats * 10, cli=main)
        print(json.dumps(figures) if args.json else "\n".join(render_growth(figures)))
        return EXIT_OK
    figures = run_benchmark(incidents=args.incidents, concurrency=args.concurrency, repeats=args.repeats)
    print(json.dumps(figures) if args.json else "\n".join(render(figures)))
    return EXIT_OK


def cmd_serve(args: argparse.Namespace) -> int:
    from it_support_agent.graph.app.serve import serve_forever

    return serve_forever(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="it-support-agent", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="handle an incident")
    run.add_argument("incident", help="the incident text ('-' reads it from stdin)")
    run.add_argument("--thread-id", help="use this thread id instead of a new one")
    run.add_argument("--no-input", action="store_true", help="never ask at the terminal; stop and exit instead")
    add_common_options(run)
    run.set_defaults(handler=cmd_run)
    resume = commands.add_parser("resume", help="answer an incident waiting for approval")
    resume.add_argument("thread_id")
    resume.add_argument("--approve", action="store_true")
    resume.add_argument("--reject", action="store_true")
    resume.add_argument("--comment", help="comment for the ticket")
    resume.add_argument("--server", help="server id, when the incident asks which server it is about")
    add_common_options(resume)
    resume.set_defaults(handler=cmd_resume)
    for name, handler, text in (("list", cmd_list, "list incidents"), ("flush", cmd_flush, "retry spooled tickets")):
        sub = commands.add_parser(name, help=text)
        add_common_options(sub)
        sub.set_defaults(handler=handler)
    show = commands.add_parser("show", help="show an incident's steps from its checkpoints")
    show.add_argument("thread_id")
    add_common_options(show)
    show.set_defaults(handler=cmd_show)
    audit_parser = commands.add_parser("audit", help="print the audit trail")
    audit_parser.add_argument("thread_id", nargs="?")
    add_common_options(audit_parser)
    audit_parser.set_defaults(handler=cmd_audit)
    prune = commands.add_parser("prune", help="forget finished incidents older than N days (checkpoints, index)")
    prune.add_argument("--older-than", type=float, required=True, metavar="DAYS", help="age in days")
    prune.add_argument("--audit", action="store_true", help="drop their audit events too (default: kept)")
    prune.add_argument("--vacuum", action="store_true", help="then shrink checkpoints.sqlite (SQLite only)")
    prune.add_argument("--dry-run", action="store_true", help="only list what would be forgotten")
    add_common_options(prune)
    prune.set_defaults(handler=cmd_prune)
    serve = commands.add_parser("serve", help="accept Alertmanager webhooks and run an incident per alert")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=9095, help="port to listen on (default 9095)")
    serve.add_argument("--server-label", help="alert label naming the server (default: instance, port stripped)")
    serve.add_argument("--workers", type=int, default=2, help="incidents run at once by this process (default 2)")
    serve.add_argument(
        "--retain-days",
        type=float,
        help="retention: every hour, forget finished incidents older than this (their tickets and audit stay; "
        "default: keep everything, `prune` by hand)",
    )
    serve.add_argument(
        "--retain-audit",
        action="store_true",
        help="with --retain-days: forget the audit events of those incidents too (tickets stay)",
    )
    add_common_options(serve)
    serve.set_defaults(handler=cmd_serve, takes_alerts=True)
    console = commands.add_parser("console", help="the operator console alone: incidents, approvals, owed tickets")
    console.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    console.add_argument("--port", type=int, default=9096, help="port to listen on (default 9096)")
    add_common_options(console)
    console.set_defaults(handler=cmd_serve, takes_alerts=False, server_label=None, workers=1)
    evaluate = commands.add_parser("eval", help="score the restart/escalate decision on scenario files")
    evaluate.add_argument("paths", nargs="*", help="scenario files or folders (default: scenarios/library)")
    evaluate.add_argument("--model", help="'offline' (default) or an OpenAI-compatible model name")
    evaluate.add_argument("--min-accuracy", type=float, help="exit non-zero below this accuracy (0..1)")
    evaluate.add_argument("--json", action="store_true", help="print one JSON object")
    evaluate.set_defaults(handler=cmd_eval)
    bench = commands.add_parser("bench", help="performance benchmark on the offline model")
    bench.add_argument("--incidents", type=int, default=1000, help="sequential incidents (default 1000)")
    bench.add_argument("--concurrency", type=int, default=4, help="worker threads for the concurrent run")
    bench.add_argument("--repeats", type=int, default=20, help="incidents per point of the scaling runs")
    bench.add_argument(
        "--growth",
        metavar="N,N,...",
        help="instead: per-incident p50 and CPU after each count of incidents in one store (e.g. 0,10000,50000), "
        "`list` at 10,000, and the checkpoints' cost; --repeats x 10 incidents per point",
    )
    bench.add_argument("--json", action="store_true", help="print one JSON object")
    bench.set_defaults(handler=cmd_bench)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from dotenv import load_dotenv

    load_dotenv(override=False)
    os.umask(0o077)  # the state store, outbox, spool and audit hold incident data: the user's alone (0600 / 0700)
    args = build_parser().parse_args(argv)
    try:
        code = int(args.handler(args))
        sys.stdout.flush()
        return code
    except BrokenPipeError:  # `show ... | head`: the reader has what it wanted
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # so the interpreter's own flush at exit does not fail again
        return EXIT_OK
    except CliError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (sqlite3.Error, StoreError) as exc:  # reading a state store that is corrupt, foreign or unreadable
        print(f"error: the state store cannot be used: {' '.join(str(exc).split())[:300]}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("interrupted; the incident can be continued from its checkpoint", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
