"""Run configuration: one keyword-only dataclass, with environment variables filling fields left at default."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Literal

Autonomy = Literal["auto", "approve", "dry-run"]
Interactive = Literal["auto", "always", "never"]
INTERACTIVE_MODES: tuple[Interactive, ...] = ("auto", "always", "never")
AUTONOMY_MODES: tuple[Autonomy, ...] = ("auto", "approve", "dry-run")
Deliveries = Literal["now", "background"]
DELIVERY_MODES: tuple[Deliveries, ...] = ("now", "background")
PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEMO_FLEET = PROJECT_ROOT / "scenarios" / "demo-fleet.yaml"

_ENVIRONMENT = {
    "model": "MODEL_NAME",
    "fleet_file": "FLEET_FILE",
    "state_dir": "IT_SUPPORT_STATE_DIR",
    "autonomy": "AUTONOMY",
    "policy_file": "POLICY_FILE",
    "interactive": "IT_SUPPORT_INTERACTIVE",
}


def default_state_dir() -> Path:
    """$XDG_STATE_HOME/it-support-agent, else ~/.local/state/it-support-agent."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "it-support-agent"


@dataclass(kw_only=True)
class Context:
    """How an incident run is configured (editable in LangGraph Studio)."""

    model: str = field(default="offline")
    """Model: 'offline' (deterministic triage model, no network) or an OpenAI / OpenAI-compatible model name."""

    fleet_file: str = field(default="")
    """Fleet file describing the servers; empty means the bundled demo fleet."""

    state_dir: str = field(default="")
    """Directory for checkpoints, fleet state, tickets, ledger and audit; empty means the default location."""

    autonomy: Autonomy = field(default="auto")
    """auto: restart when policy allows; approve: ask a human first; dry-run: never restart."""

    policy_file: str = field(default="")
    """Optional YAML restart policy (cooldowns, fleet limits); empty means safe defaults."""

    interactive: Interactive = field(default="auto")
    """Ask the operator (interrupt) which server an incident is about when it names none: 'auto' asks when a person
    is there (LangGraph Studio or the API server; the CLI in a terminal), 'always', or 'never' (escalate)."""

    max_diagnose_rounds: int = field(default=4)
    """How many times the model may call diagnosis tools before deciding."""

    log_lines: int = field(default=1_000)
    """How many recent log lines are read for the evidence (the model sees a token-bounded digest of them): enough
    that a busy log does not push a deploy or an error of the incident window out of view."""

    log_budget_tokens: int = field(default=1_200)
    """Token budget for the log digest a model sees (estimated offline)."""

    deliveries: Deliveries = field(default="now")
    """'now': a ticket goes to the outbox and every sink before the run goes on (the CLI says where it went);
    'background': to the outbox at once and into the spool for the sinks, which a delivery worker empties (serve),
    so a slow or hanging sink never holds up diagnosis or a restart."""

    def __post_init__(self) -> None:
        for item in fields(self):
            variable = _ENVIRONMENT.get(item.name)
            if variable and getattr(self, item.name) == item.default and os.environ.get(variable):
                setattr(self, item.name, os.environ[variable].strip())
        legacy = {"true": "always", "1": "always", "yes": "always", "false": "never", "0": "never", "no": "never"}
        self.interactive = legacy.get(str(self.interactive).lower(), self.interactive)  # type: ignore[assignment]
        if self.interactive not in INTERACTIVE_MODES:
            raise ValueError(f"interactive must be one of {', '.join(INTERACTIVE_MODES)}, not {self.interactive!r}")
        if self.deliveries not in DELIVERY_MODES:
            raise ValueError(f"deliveries must be one of {', '.join(DELIVERY_MODES)}, not {self.deliveries!r}")
        if self.autonomy not in AUTONOMY_MODES:
            raise ValueError(f"autonomy must be one of {', '.join(AUTONOMY_MODES)}, not {self.autonomy!r}")

    def settings(self) -> dict[str, str]:
        """The configuration an incident is decided under, files by content; a restart refuses to run under a
        different one (a policy or fleet edited while an approval waited is not obeyed for that approval)."""
        return {
            "fleet": self.fleet_path,
            "state_dir": self.state_path,
            "policy_file": self.policy_file,
            "fleet_sha256": _digest(self.fleet_path),
            "policy_sha256": _digest(self.policy_file) if self.policy_file else "",
        }

    @property
    def fleet_path(self) -> str:
        return str(Path(self.fleet_file).expanduser()) if self.fleet_file else str(DEMO_FLEET)

    @property
    def state_path(self) -> str:
        return str(Path(self.state_dir).expanduser()) if self.state_dir else str(default_state_dir())


def _digest(path: str) -> str:
    """SHA-256 of a file's bytes ('unreadable' when it cannot be read)."""
    try:
        return hashlib.sha256(Path(path).expanduser().read_bytes()).hexdigest()
    except OSError:
        return "unreadable"
