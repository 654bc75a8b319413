"""README's Python example runs as written (with its state directory moved to a temporary one)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_readme_python_example_runs(tmp_path: Path) -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Using it from Python", 1)[1]
    example = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert example is not None
    code = example.group(1).replace("/tmp/it-support-state", str(tmp_path / "state"))
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("restart Server payment-server-01")


def test_readme_gives_the_two_newcomer_commands() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert 'pip install -q -e ".[dev]" && .venv/bin/it-support-agent run "The payment-server-01' in readme
    assert ".venv/bin/python -m pytest" in readme
