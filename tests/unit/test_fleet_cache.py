"""A large fleet file's YAML is parsed once per content; every edit is parsed and checked strictly again."""

from __future__ import annotations

from pathlib import Path

import pytest

from it_support_agent.incident.fleet import FleetError
from it_support_agent.tools import infrastructure
from it_support_agent.tools.infrastructure import FLEET_CACHE_DIR, load_fleet_cached


def big_fleet(servers: int, restartable: str = "true") -> str:
    entries = [
        f"  app-{index:05d}:\n    service: app\n    restartable: {restartable}\n"
        f"    health: {{cpu_percent: 50.0, memory_percent: 40.0, status: healthy}}\n"
        f'    logs: ["2026-11-27T09:58:01Z INFO app started, padding {"x" * 80}"]\n'
        for index in range(servers)
    ]
    return "servers:\n" + "".join(entries)


@pytest.fixture(autouse=True)
def _small_threshold(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(infrastructure, "FLEET_CACHE_MIN_CHARS", 10_000)  # the real one is 1 MiB: slow to parse


def test_the_cache_serves_the_same_fleet_and_any_edit_is_read_again(tmp_path: Path) -> None:
    path, state = tmp_path / "fleet.yaml", tmp_path / "state"
    state.mkdir()
    path.write_text(big_fleet(300))
    first = load_fleet_cached(str(path), state)
    assert len(list((state / FLEET_CACHE_DIR).glob("*.json"))) == 1
    again = load_fleet_cached(str(path), state)
    assert again.servers == first.servers and again.servers["app-00042"].restartable

    path.write_text(big_fleet(300, restartable="false"))  # same size, same mtime second: the content decides
    assert not load_fleet_cached(str(path), state).servers["app-00042"].restartable
    assert len(list((state / FLEET_CACHE_DIR).glob("*.json"))) == 1

    path.write_text(big_fleet(300) + "  app-00042:\n    service: other\n")  # a duplicate key: still refused
    with pytest.raises(FleetError, match="app-00042"):
        load_fleet_cached(str(path), state)


def test_a_damaged_cache_entry_is_parsed_again(tmp_path: Path) -> None:
    path, state = tmp_path / "fleet.yaml", tmp_path / "state"
    state.mkdir()
    path.write_text(big_fleet(300))
    load_fleet_cached(str(path), state)
    (entry,) = (state / FLEET_CACHE_DIR).glob("*.json")
    entry.write_bytes(entry.read_bytes()[: entry.stat().st_size // 2])  # a torn write
    assert len(load_fleet_cached(str(path), state).servers) == 300
    (entry,) = (state / FLEET_CACHE_DIR).glob("*.json")
    other = tmp_path / "other.json"  # an entry made for other content, under this content's name
    other.write_text('{"sha256": "0", "document": {"servers": {"app-1": {"service": "evil"}}}}')
    other.replace(entry)
    assert len(load_fleet_cached(str(path), state).servers) == 300
