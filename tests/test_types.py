"""The type checker as a test, so CI runs it: the packages listed pass `mypy --strict` (the
settings are pyproject.toml's [tool.mypy]); a package joins the list once it passes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STRICT_PACKAGES = ("domain", "projections")


def test_the_listed_packages_pass_mypy_strict() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", *STRICT_PACKAGES],
        cwd=ROOT, capture_output=True, text=True, timeout=600, check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
