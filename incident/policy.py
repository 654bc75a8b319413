"""The deterministic restart policy: whatever the model chose, these rules decide whether a restart may run."""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from it_support_agent.incident.diagnosis import INCIDENT_WINDOW_S
from it_support_agent.incident.fleet import ServerSpec
from it_support_agent.incident.records import VerdictRecord
from it_support_agent.incident.signals import BLOCKING
from it_support_agent.incident.yaml_strict import load_yaml

HOUR_S = 3600.0
BLOCKING_CATEGORIES = frozenset(category.value for category in BLOCKING)


class PolicyFileError(ValueError):
    """The policy file is unreadable or holds an invalid value."""


@dataclass(frozen=True)
class RestartPolicy:
    """Tunable limits; the defaults are the safe ones."""

    restart_cooldown_s: float = 1800.0
    fleet_restarts_per_hour: int = 5
    incident_window_s: float = INCIDENT_WINDOW_S
    """Evidence older than this before the newest log line is stale: it neither justifies nor vetoes a restart."""
    rule_files: tuple[str, ...] = ()
    """The operator's own rule files (paths relative to the policy file), read after the built-in rules."""
    figure_only: str = "approve"
    """A restart resting on a hot figure alone in auto mode: "approve" (an operator decides) or "restart"."""

    @property
    def lookback_s(self) -> float:
        """How far back the rate rules read the restart ledger: the cooldown or the hour, whichever is longer."""
        return max(self.restart_cooldown_s, HOUR_S)


@dataclass(frozen=True)
class Verdict:
    """The policy's answer for one proposed restart."""

    allowed: bool
    rule: str
    reason: str
    requires_approval: bool = False

    def to_dict(self) -> VerdictRecord:
        return VerdictRecord(
            allowed=self.allowed, rule=self.rule, reason=self.reason, requires_approval=self.requires_approval
        )


def load_policy(path: str) -> RestartPolicy:
    """The policy from a YAML file (keys restart_cooldown_s, fleet_restarts_per_hour, incident_window_s,
    rule_files, figure_only); defaults when empty. The file is parsed again only when it changes: several nodes of
    one incident ask for it."""
    if not path:
        return RestartPolicy()
    file = Path(path).expanduser()
    try:
        stat = file.stat()
    except OSError as exc:
        raise PolicyFileError(f"cannot read policy file {path}: {exc}") from None
    return _parse_policy(str(file), path, stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=16)
def _parse_policy(file: str, path: str, mtime_ns: int, size: int) -> RestartPolicy:
    """The policy file parsed and validated; cached by its modification time and size."""
    try:
        document = load_yaml(Path(file).read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise PolicyFileError(f"cannot read policy file {path}: {exc}") from None
    if not isinstance(document, Mapping):
        raise PolicyFileError(f"policy file {path}: expected a mapping")
    unknown = set(document) - {
        "restart_cooldown_s",
        "fleet_restarts_per_hour",
        "incident_window_s",
        "rule_files",
        "figure_only",
    }
    if unknown:
        raise PolicyFileError(f"policy file {path}: unknown keys {sorted(unknown)}")
    cooldown = document.get("restart_cooldown_s", RestartPolicy.restart_cooldown_s)
    limit = document.get("fleet_restarts_per_hour", RestartPolicy.fleet_restarts_per_hour)
    if (
        isinstance(cooldown, bool)
        or not isinstance(cooldown, int | float)
        or not math.isfinite(cooldown)
        or cooldown < 0
    ):
        raise PolicyFileError(f"policy file {path}: restart_cooldown_s must be a number >= 0")
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
        raise PolicyFileError(f"policy file {path}: fleet_restarts_per_hour must be an integer >= 0")
    window = document.get("incident_window_s", RestartPolicy.incident_window_s)
    if isinstance(window, bool) or not isinstance(window, int | float) or not math.isfinite(window) or window <= 0:
        raise PolicyFileError(f"policy file {path}: incident_window_s must be a number > 0")
    rule_files = document.get("rule_files", []) or []
    if not isinstance(rule_files, list) or not all(isinstance(item, str) and item for item in rule_files):
        raise PolicyFileError(f"policy file {path}: rule_files must be a list of paths")
    figure_only = document.get("figure_only", RestartPolicy.figure_only)
    if figure_only not in ("approve", "restart"):
        raise PolicyFileError(f"policy file {path}: figure_only must be approve or restart")
    base = Path(file).parent
    return RestartPolicy(
        restart_cooldown_s=float(cooldown),
        fleet_restarts_per_hour=limit,
        incident_window_s=float(window),
        rule_files=tuple(str(base / Path(item).expanduser()) for item in rule_files),
        figure_only=str(figure_only),
    )


def check_evidence(spec: ServerSpec | None, diagnosis: Mapping[str, Any]) -> Verdict | None:
    """Inventory, restartability and evidence rules over the code-made diagnosis; None when they all pass."""
    if spec is None:
        return Verdict(False, "inventory", "the server is not in the inventory")
    if not spec.restartable:
        return Verdict(False, "not_restartable", f"{spec.server_id} is marked not restartable in the fleet file")
    blocking = sorted(set(diagnosis.get("categories", [])) & BLOCKING_CATEGORIES)
    if blocking:
        return Verdict(False, "evidence_veto", f"evidence of a cause a restart cannot fix: {', '.join(blocking)}")
    unexplained = diagnosis.get("unexplained")
    if not isinstance(unexplained, list) or unexplained:
        # fail closed: a diagnosis that does not account for its lines (or has lines nothing explains) vetoes
        count = len(unexplained) if isinstance(unexplained, list) else "unaccounted"
        return Verdict(
            False,
            "unexplained_evidence",
            f"abnormal log lines not explained by the finding ({count}); a person should look",
        )
    if diagnosis.get("restart_recommended") is not True:
        return Verdict(
            False,
            "no_recoverable_evidence",
            f"no evidence of a local recoverable fault (finding: {diagnosis.get('category', 'none')})",
        )
    return None


@dataclass(frozen=True)
class RestartFacts:
    """What the rate rules need from the restart ledger, read with two indexed queries whatever its length: when
    this server was last restarted (within the lookback) and how many restarts the fleet had in the last hour."""

    last_restart_at: float | None
    restarts_last_hour: int


History = Sequence[Mapping[str, Any]] | RestartFacts


def restart_facts(server_id: str, history: History, now: float) -> RestartFacts:
    """The facts, from a list of ledger entries (or as given)."""
    if isinstance(history, RestartFacts):
        return history
    own = [float(entry.get("at", 0.0)) for entry in history if entry.get("server_id") == server_id]
    recent = sum(1 for entry in history if now - float(entry.get("at", 0.0)) < HOUR_S)
    return RestartFacts(max(own) if own else None, recent)


def check_rate(server_id: str, history: History, now: float, policy: RestartPolicy) -> Verdict | None:
    """Cooldown, crash-loop and fleet-wide rate rules over the restart ledger; None when they pass."""
    facts = restart_facts(server_id, history, now)
    if facts.last_restart_at is not None:
        age = now - facts.last_restart_at
        if age < policy.restart_cooldown_s:
            minutes = max(1, round(age / 60))
            return Verdict(
                False,
                "cooldown",
                f"{server_id} was already restarted {minutes} min ago (cooldown "
                f"{policy.restart_cooldown_s / 60:.0f} min); failing again points to a crash loop",
            )
    if facts.restarts_last_hour >= policy.fleet_restarts_per_hour:
        return Verdict(
            False,
            "fleet_rate",
            f"{facts.restarts_last_hour} restarts fleet-wide in the last hour (limit {policy.fleet_restarts_per_hour})",
        )
    return None


_NO_RESTART = re.compile(
    r"\b(?:do not|don't|dont|never|must not|mustn't|should not|shouldn't|cannot|can't)\s+(?:\w+\s+){0,2}"
    r"(?:restart|reboot|bounce|recycle|cycle|touch)\w*|\bno restarts?\b|\bnot (?:to )?be restarted\b",
    re.IGNORECASE,
)


def operator_forbids_restart(incident: str) -> bool:
    """The incident text itself asks that nothing be restarted ("do NOT restart it, page the DBA")."""
    return bool(_NO_RESTART.search(incident or ""))


def check_autonomy(autonomy: str) -> Verdict:
    """The last rule: the autonomy mode decides whether the restart runs, waits for a human, or is only reported."""
    if autonomy == "dry-run":
        return Verdict(False, "dry_run", "dry-run mode: the restart would be allowed but is not performed")
    if autonomy == "approve":
        return Verdict(True, "approval_required", "restart allowed once an operator approves", requires_approval=True)
    return Verdict(True, "allowed", "local recoverable fault, no blocking evidence, within restart limits")


UNCORROBORATED_RULES = frozenset({"no_recoverable_evidence", "unexplained_evidence"})
"""Evidence rules a model-proposed restart may go past with an operator's approval: the code found nothing a
restart cannot fix, only too little to call it recoverable. Blocking evidence, inventory and rates never yield."""


def check_model_citations(blocking_lines: Sequence[str]) -> Verdict | None:
    """Log lines the model cited as blocking a restart (already found verbatim in the evidence) veto it."""
    if not blocking_lines:
        return None
    first = str(blocking_lines[0])[:200]
    more = f" and {len(blocking_lines) - 1} more" if len(blocking_lines) > 1 else ""
    return Verdict(False, "model_cited_blocker", f"the model cites a log line that blocks a restart: {first!r}{more}")


def check_uncorroborated(autonomy: str, evidence: Verdict) -> Verdict:
    """A restart the model proposed and the evidence does not corroborate: an operator decides, in any mode."""
    if autonomy == "dry-run":
        return Verdict(
            False,
            "dry_run",
            f"dry-run mode: the model's restart is not corroborated ({evidence.reason}); it would "
            "wait for an operator's approval",
        )
    return Verdict(
        True,
        "uncorroborated",
        f"the model proposed this restart but the evidence does not corroborate it ({evidence.reason}); it waits "
        "for an operator's approval",
        requires_approval=True,
    )


def evaluate_restart(
    spec: ServerSpec | None,
    diagnosis: Mapping[str, Any],
    history: History,
    now: float,
    policy: RestartPolicy,
    autonomy: str,
    *,
    proposed_by_model: bool = False,
    model_blocking_lines: Sequence[str] = (),
) -> Verdict:
    """Every rule in order; the first that vetoes wins. A restart an LLM proposed (`proposed_by_model`) that the
    evidence rules cannot corroborate, though nothing in it blocks one, waits for an operator instead."""
    server_id = spec.server_id if spec else ""
    cited = check_model_citations(model_blocking_lines)
    if cited is not None:
        return cited
    evidence = check_evidence(spec, diagnosis)
    if evidence is not None and proposed_by_model and evidence.rule in UNCORROBORATED_RULES:
        return check_rate(server_id, history, now, policy) or check_uncorroborated(autonomy, evidence)
    return evidence or check_rate(server_id, history, now, policy) or check_basis(diagnosis, autonomy, policy)


def check_basis(diagnosis: Mapping[str, Any], autonomy: str, policy: RestartPolicy) -> Verdict:
    """The autonomy mode, and in auto mode a restart resting on a hot figure alone (no log line showing a fault of
    the service itself, no down status from its supervisor) waits for an operator: the figure may be somebody
    else's doing."""
    if autonomy == "auto" and policy.figure_only == "approve" and diagnosis.get("basis") == "figures":
        return Verdict(
            True,
            "figure_only",
            "only a health figure points to a local fault (no log line shows it in the service itself); restart "
            "once an operator approves",
            requires_approval=True,
        )
    return check_autonomy(autonomy)
