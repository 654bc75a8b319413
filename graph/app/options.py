"""What every program shares: exit codes, the one-line user error, the common flags and the Context they build."""

from __future__ import annotations

import argparse
import sys

from it_support_agent.incident.context import AUTONOMY_MODES, Context

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_AWAITING_APPROVAL = 3


class CliError(Exception):
    """A problem the user can fix; printed as one line, never a traceback."""


def add_common_options(parser: argparse.ArgumentParser) -> None:
    """The flags every command that runs or reads incidents takes."""
    parser.add_argument("--fleet", help="fleet file (default: the bundled demo fleet)")
    parser.add_argument("--state-dir", help="state directory (default: $XDG_STATE_HOME/it-support-agent)")
    parser.add_argument("--model", help="'offline' (default) or an OpenAI-compatible model name")
    parser.add_argument("--autonomy", choices=AUTONOMY_MODES, help="auto (default), approve or dry-run")
    parser.add_argument("--policy", help="restart policy YAML file")
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def context_from_args(args: argparse.Namespace, *, check_sinks: bool = True, index_only: bool = False) -> Context:
    """The run's Context, after checking the fleet, policy, model and sinks (one-line CliError on any problem).

    A sink variable that cannot be used is a warning, never a refusal: the ticket still reaches the outbox and waits
    in the spool for that sink. Commands that only read incidents (list, show, audit) do not check sinks;
    `index_only` (list: the store's index) checks nothing and imports no model."""
    if index_only:
        try:
            return Context(model=args.model or "offline", state_dir=args.state_dir or "", fleet_file=args.fleet or "")
        except ValueError as exc:
            raise CliError(str(exc)) from None
    from it_support_agent.incident.fleet import FleetError
    from it_support_agent.incident.policy import PolicyFileError, load_policy
    from it_support_agent.nodes.model.chat_models import (
        ModelConfigError,
        decide_format,
        is_offline,
        load_chat_model,
        model_budget_s,
        parallel_tool_calls,
    )
    from it_support_agent.tools.infrastructure import open_infrastructure
    from it_support_agent.tools.sinks import sink_problems

    try:
        context = Context(
            model=args.model or "offline",
            fleet_file=args.fleet or "",
            state_dir=args.state_dir or "",
            autonomy=args.autonomy or "auto",
            policy_file=getattr(args, "policy", "") or "",
        )
    except ValueError as exc:
        raise CliError(str(exc)) from None
    try:
        open_infrastructure(context.fleet_path, context.state_path)  # parsed once, reused by the graph
        load_policy(context.policy_file)
        if not is_offline(context.model):
            load_chat_model(context)
            decide_format()
            model_budget_s()
            parallel_tool_calls()
    except (FleetError, PolicyFileError, ModelConfigError) as exc:
        raise CliError(str(exc)) from None
    for problem in sink_problems() if check_sinks else []:
        # a broken sink must not stop incidents: tickets still reach the outbox, and are spooled for that sink
        print(f"warning: {problem}; tickets are kept in the outbox and spooled for it", file=sys.stderr)
    return context
