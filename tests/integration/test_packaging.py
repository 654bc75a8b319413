"""The wheel: one top-level package, with the demo fleet, the scenario library, the prompts and py.typed inside."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_the_wheel_installs_only_the_it_support_agent_namespace(tmp_path: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            str(REPO),
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    wheel = next(tmp_path.glob("it_support_agent-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert {name.split("/")[0] for name in names} == {"it_support_agent", wheel.name.split("-py3")[0] + ".dist-info"}
    assert "it_support_agent/py.typed" in names
    assert "it_support_agent/scenarios/demo-fleet.yaml" in names
    assert "it_support_agent/scenarios/library/red-team.yaml" in names
    assert any(name.startswith("it_support_agent/prompts/") and name.endswith(".md") for name in names)
    assert "it_support_agent/incident/diagnosis.py" in names
    assert "it_support_agent/tools/backends/supervisor.py" in names
