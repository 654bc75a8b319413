"""The state directory is the user's alone, and nothing is written through a symlink planted in it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from it_support_agent.tools.outbox import TicketDesk
from it_support_agent.tools.statefile import locked_json
from tests.integration.helpers import run_cli as cli

REPO = Path(__file__).resolve().parents[2]


def test_every_file_and_folder_the_agent_makes_is_private(tmp_path: Path) -> None:
    state_dir = tmp_path / "fresh" / "state"
    assert cli(state_dir, "run", "search-index-09 is failing").returncode == 0
    assert cli(state_dir, "run", "payment-server-01 is extremely slow").returncode == 0  # a restart: fleet state
    made = [state_dir, *state_dir.rglob("*")]
    assert {"checkpoints.sqlite", "tickets.jsonl", "fleet-state.json", "reserve"} <= {path.name for path in made}
    for path in made:
        mode = path.stat().st_mode & 0o777
        assert mode == (0o700 if path.is_dir() else 0o600), f"{path} is {oct(mode)}"


@pytest.mark.parametrize("planted", ["tickets.jsonl", "checkpoints.sqlite", "spool"])
def test_a_symlink_in_the_state_directory_is_refused_and_its_target_untouched(
    state_dir: Path, tmp_path: Path, planted: str
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    target = outside / "target"
    if planted == "spool":
        target.mkdir()
    else:
        target.write_text("precious\n")
    state_dir.mkdir(parents=True, exist_ok=True)
    (state_dir / planted).symlink_to(target)

    done = cli(state_dir, "run", "search-index-09 is failing", "--json")
    assert done.returncode == 1 and "Traceback" not in done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "holds a symlink" in errors[0] and planted in errors[0], done.stderr
    if planted == "spool":
        assert list(target.iterdir()) == []
    else:
        assert target.read_text() == "precious\n"
    # the ticket reaches a human all the same: in the spool when it is a real folder, or printed
    ticket = json.loads(done.stdout)["ticket"]
    assert ticket["incident"] == "search-index-09 is failing"
    listed = cli(state_dir, "list")
    assert listed.returncode == 1 and "holds a symlink" in listed.stderr


def test_writers_do_not_follow_a_link_made_after_the_store_was_opened(state_dir: Path, tmp_path: Path) -> None:
    desk = TicketDesk(state_dir, sinks=[])
    assert desk.deliver({"id": "INC-1", "thread_id": "t"})["status"] == "delivered"
    target = tmp_path / "elsewhere.jsonl"
    target.write_text("precious\n")
    (state_dir / "tickets.jsonl").unlink()
    (state_dir / "tickets.jsonl").symlink_to(target)
    assert desk.deliver({"id": "INC-2", "thread_id": "t"})["status"] == "spooled"  # ELOOP: kept for `flush`
    assert target.read_text() == "precious\n"
    lock = state_dir / "fleet-state.json.lock"
    lock.symlink_to(target)
    with pytest.raises(OSError), locked_json(state_dir / "fleet-state.json"):
        pass
    assert target.read_text() == "precious\n"
