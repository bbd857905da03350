"""Every test file with a ``slow`` test is run by CI (.ci/run), or excused here with the reason.

``make test`` leaves ``slow`` tests out to stay short (pyproject.toml's
``addopts``); CI runs them in its own steps, listing each file. A file
marked slow but missing from those lists would silently be tested nowhere.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
#: Test files whose slow tests CI does not run, and why.
NOT_IN_CI = {
    "tests/fuzz/test_rpc_fuzz.py": "the long fuzzing run (300 examples per RPC, about an hour); the default suite fuzzes "
                                   "every RPC with 25",
    "tests/integration/test_cli_compare.py": "two runs of one build not flagged at p99: a statistical check that a "
                                             "noisy shared CI machine can fail; the delay-regression test runs by default",
}
SLOW_MARK = re.compile(r"^\s*(pytestmark\s*=.*pytest\.mark\.slow|@pytest\.mark\.slow\b)", re.MULTILINE)


def _files_with_slow_tests() -> set[str]:
    return {str(path.relative_to(ROOT)) for path in (ROOT / "tests").rglob("test_*.py") if SLOW_MARK.search(path.read_text())}


def _files_ci_runs_with_slow() -> set[str]:
    text = (ROOT / ".ci" / "run").read_text().replace("\\\n", " ")
    files: set[str] = set()
    for line in text.splitlines():
        if "pytest" in line and "-m slow" in line:
            files.update(re.findall(r"tests/[\w/]+\.py", line))
    return files


def test_every_slow_test_file_is_run_by_ci_or_excused():
    slow = _files_with_slow_tests()
    assert "tests/integration/test_photo_restart.py" in slow  # the scan finds marks
    run = _files_ci_runs_with_slow()
    missing = sorted(slow - run - set(NOT_IN_CI))
    assert not missing, f"slow tests in {missing} run nowhere: add them to a -m slow step of .ci/run (or excuse them here)"
    assert not (set(NOT_IN_CI) & run), "a file excused here is run by CI after all: drop its excuse"
    assert set(NOT_IN_CI) <= slow, "an excused file has no slow test left"
    assert run <= {str(p.relative_to(ROOT)) for p in (ROOT / "tests").rglob("test_*.py")}, "CI names a test file that does not exist"
