"""The decision benchmark: scenario files in, accuracy and unsafe-restart figures out."""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from langgraph.checkpoint.memory import InMemorySaver

from it_support_agent.incident.context import PROJECT_ROOT, Context
from it_support_agent.incident.fleet import FleetError, parse_servers

DEFAULT_LIBRARY = PROJECT_ROOT / "scenarios" / "library"
ACTIONS = ("restart", "escalate", "none")


class ScenarioError(ValueError):
    """A scenario file does not follow the schema."""


@dataclass(frozen=True)
class Scenario:
    """One evaluation case: an incident, its fleet, and the expected outcome."""

    scenario_id: str
    incident: str
    servers: Mapping[str, Any]
    action: str
    server: str | None
    restart_attempted: bool = False
    tags: tuple[str, ...] = ()
    source: str = ""


@dataclass
class CaseResult:
    """What the agent did on one scenario, and how that compares with the expectation."""

    scenario: Scenario
    outcome: str | None
    server_id: str | None
    restarted: bool
    tool_calls: int
    model_calls: int
    tokens: int
    latency_ms: float
    error: str = ""
    flags: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.flags

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.scenario.scenario_id,
            "expected": self.scenario.action,
            "expected_server": self.scenario.server,
            "outcome": self.outcome,
            "server_id": self.server_id,
            "restarted": self.restarted,
            "ok": self.ok,
            "flags": self.flags,
            "tool_calls": self.tool_calls,
            "model_calls": self.model_calls,
            "tokens": self.tokens,
            "latency_ms": round(self.latency_ms, 2),
            "tags": list(self.scenario.tags),
            "error": self.error,
        }


def scenario_files(paths: Sequence[str]) -> list[Path]:
    """YAML files named, or found under the folders named (default: the bundled library)."""
    found: list[Path] = []
    for name in paths or [str(DEFAULT_LIBRARY)]:
        path = Path(name)
        if path.is_dir():
            found.extend(sorted([*path.glob("*.yaml"), *path.glob("*.yml")]))
        elif path.exists():
            found.append(path)
        else:
            raise ScenarioError(f"no such scenario file or folder: {path}")
    return found


def load_scenarios(paths: Sequence[str]) -> list[Scenario]:
    """Every scenario in the files, validated; ids must be unique."""
    scenarios: list[Scenario] = []
    for path in scenario_files(paths):
        scenarios.extend(_parse_file(path))
    seen: set[str] = set()
    for scenario in scenarios:
        if scenario.scenario_id in seen:
            raise ScenarioError(f"duplicate scenario id {scenario.scenario_id!r} ({scenario.source})")
        seen.add(scenario.scenario_id)
    return scenarios


def _parse_file(path: Path) -> list[Scenario]:
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise ScenarioError(f"{path}: malformed YAML{f' at line {mark.line + 1}' if mark else ''}") from None
    if not isinstance(document, Mapping) or not isinstance(document.get("scenarios"), list):
        raise ScenarioError(f"{path}: expected a top-level 'scenarios' list")
    return [_parse_scenario(entry, path) for entry in document["scenarios"]]


def _parse_scenario(entry: Any, path: Path) -> Scenario:
    if not isinstance(entry, Mapping) or not isinstance(entry.get("id"), str):
        raise ScenarioError(f"{path}: every scenario needs a string 'id'")
    where = f"{path}: scenario {entry['id']!r}"
    expect = entry.get("expect")
    if not isinstance(expect, Mapping) or expect.get("action") not in ACTIONS:
        raise ScenarioError(f"{where}: expect.action must be one of {', '.join(ACTIONS)}")
    if not isinstance(entry.get("incident"), str) or not isinstance(entry.get("servers"), Mapping):
        raise ScenarioError(f"{where}: needs 'incident' text and a 'servers' mapping")
    try:
        parse_servers(entry["servers"], source=where)
    except FleetError as exc:
        raise ScenarioError(str(exc)) from None
    server = expect.get("server")
    if server is not None and server not in entry["servers"]:
        raise ScenarioError(f"{where}: expect.server {server!r} is not one of its servers")
    return Scenario(
        scenario_id=entry["id"],
        incident=entry["incident"],
        servers=entry["servers"],
        action=expect["action"],
        server=server,
        restart_attempted=bool(expect.get("restart_attempted")),
        tags=tuple(str(tag) for tag in entry.get("tags", []) or []),
        source=str(path),
    )


def run_scenario(scenario: Scenario, model: str = "offline") -> CaseResult:
    """Run one scenario in a fresh temporary state directory with autonomy auto."""
    from it_support_agent.graph.builder import compile_graph

    with tempfile.TemporaryDirectory(prefix="itsa-eval-") as directory:
        fleet = Path(directory) / "fleet.yaml"
        fleet.write_text(yaml.safe_dump({"servers": dict(scenario.servers)}), encoding="utf-8")
        context = Context(model=model, fleet_file=str(fleet), state_dir=str(Path(directory) / "state"), autonomy="auto")
        app = compile_graph(InMemorySaver())
        started = time.perf_counter()
        try:
            values = app.invoke(
                {"incident": scenario.incident}, {"configurable": {"thread_id": scenario.scenario_id}}, context=context
            )
            error = ""
            if values.get("__interrupt__") and not values.get("outcome"):
                # an LLM's restart the rules could not corroborate waits for a person: no action was taken
                values = {**values, "outcome": "awaiting_approval"}
        except Exception as exc:  # noqa: BLE001 - a crash is a failed case, reported, not a crashed benchmark
            values, error = {}, f"{type(exc).__name__}: {exc}"
        latency_ms = (time.perf_counter() - started) * 1000
    return score(scenario, values, latency_ms, error)


def score(scenario: Scenario, values: Mapping[str, Any], latency_ms: float, error: str = "") -> CaseResult:
    """Compare one run with its expectation and flag what went wrong."""
    restart = values.get("restart") or {}
    # every restart the agent set in motion counts, whatever came after it (verified, "did not help", an error)
    restarted = bool(restart.get("performed") or restart.get("already_done")) or any(
        action.get("action") == "restart_service" for action in values.get("actions", []) or []
    )
    usage = values.get("usage") or {}
    tool_calls = sum(len(getattr(message, "tool_calls", []) or []) for message in values.get("messages", []))
    result = CaseResult(
        scenario=scenario,
        outcome=values.get("outcome"),
        server_id=values.get("server_id"),
        restarted=restarted,
        tool_calls=tool_calls,
        model_calls=int(usage.get("model_calls", 0)),
        tokens=int(usage.get("prompt_tokens", 0)) + int(usage.get("completion_tokens", 0)),
        latency_ms=latency_ms,
        error=error,
    )
    restart_expected = scenario.action == "restart" or scenario.restart_attempted
    if error:
        result.flags.append("error")
    if restarted and not restart_expected:
        result.flags.append("unsafe_restart")
    if restart_expected and not restarted:
        result.flags.append("missed_restart")
    if result.outcome != scenario.action:
        result.flags.append("noise" if scenario.action == "none" and result.outcome == "escalate" else "wrong_action")
    if scenario.server != result.server_id:
        result.flags.append("wrong_server")
    return result


def summarise(results: Sequence[CaseResult]) -> dict[str, Any]:
    """Totals over a run: accuracy, unsafe restarts, missed restarts, noise, wrong server, costs, latency."""
    count = len(results) or 1
    latencies = [result.latency_ms for result in results]
    return {
        "scenarios": len(results),
        "correct": sum(result.ok for result in results),
        "accuracy": round(sum(result.ok for result in results) / count, 4),
        "unsafe_restarts": sum("unsafe_restart" in result.flags for result in results),
        "missed_restarts": sum("missed_restart" in result.flags for result in results),
        "escalation_noise": sum("noise" in result.flags for result in results),
        "wrong_server": sum("wrong_server" in result.flags for result in results),
        "errors": sum("error" in result.flags for result in results),
        "mean_tool_calls": round(statistics.fmean(result.tool_calls for result in results), 2) if results else 0,
        "model_calls": sum(result.model_calls for result in results),
        "tokens": sum(result.tokens for result in results),
        "latency_p50_ms": round(percentile(latencies, 50), 2),
        "latency_p95_ms": round(percentile(latencies, 95), 2),
    }


def percentile(values: Sequence[float], percent: float) -> float:
    """The nearest-rank percentile of some values (0.0 for none)."""
    ordered = sorted(values)
    if not ordered:
        return 0.0
    return ordered[min(len(ordered) - 1, max(0, round(percent / 100 * (len(ordered) - 1))))]


def table(results: Iterable[CaseResult]) -> list[str]:
    """One line per scenario for the terminal."""
    lines = [f"{'scenario':<46} {'expected':<9} {'outcome':<9} {'server':<22} {'ms':>7}  result"]
    for result in results:
        verdict = "ok" if result.ok else ",".join(result.flags)
        lines.append(
            f"{result.scenario.scenario_id[:46]:<46} {result.scenario.action:<9} {result.outcome or '-':<9} "
            f"{(result.server_id or '-')[:22]:<22} {result.latency_ms:>7.1f}  {verdict}"
        )
    return lines
