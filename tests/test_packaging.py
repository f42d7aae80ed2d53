"""`pip install .` (not only the editable install) ships everything the pages need, and building
the package raises no warning from our own metadata."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PAGE_FOLDERS = ("api/templates", "api/static")
OUR_METADATA_WARNINGS = ("BuildBackendWarning", "SetuptoolsDeprecationWarning", "is absent from the `packages`")


def tracked_files(folder: str) -> set[str]:
    listed = subprocess.run(["git", "ls-files", folder], cwd=ROOT, capture_output=True, text=True, check=True)
    return {line for line in listed.stdout.splitlines() if line}


def test_the_wheel_ships_every_page_file_and_builds_without_warnings(tmp_path: Path) -> None:
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--wheel-dir", str(tmp_path), str(ROOT)],
        capture_output=True, text=True, timeout=600, check=False,
    )
    output = built.stdout + built.stderr
    assert built.returncode == 0, output
    assert not [warning for warning in OUR_METADATA_WARNINGS if warning in output], output
    (wheel,) = tmp_path.glob("jindou-*.whl")
    shipped = set(zipfile.ZipFile(wheel).namelist())
    needed = set().union(*(tracked_files(folder) for folder in PAGE_FOLDERS)) | tracked_files("tools")
    assert needed and needed <= shipped, sorted(needed - shipped)
    assert not [name for name in shipped if name.startswith("tests/")]
