"""pyproject's torch range, the versions the docs say it was checked on, and the locks' pins agree."""

import re
import tomllib
from pathlib import Path

import torch
from packaging.requirements import Requirement
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
OPERATIONS = (ROOT / "docs" / "operations.md").read_text()


def _torch_requirement() -> Requirement:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    [torch_req] = [r for r in map(Requirement, project["dependencies"]) if r.name == "torch"]
    return torch_req


def _floor(req: Requirement) -> Version:
    [floor] = [Version(s.version) for s in req.specifier if s.operator == ">="]
    return floor


def test_the_floor_is_the_documented_one_and_the_oldest_version_tested() -> None:
    floor = _floor(_torch_requirement())
    documented = re.search(r"torch \(`>=(\d+\.\d+)`", OPERATIONS)
    assert documented is not None, "docs/operations.md's dependency table names no torch floor"
    assert Version(documented.group(1)) == floor
    tested = re.search(r"Checked on torch ([\d., and]+):", OPERATIONS)
    assert tested is not None, "docs/operations.md#torch-versions names no tested versions"
    versions = [Version(v) for v in re.findall(r"\d+\.\d+\.\d+", tested.group(1))]
    assert min(versions).release[:2] == floor.release[:2]  # the floor itself was run, not only read about


def test_the_locked_and_the_running_torch_are_in_the_range() -> None:
    req = _torch_requirement()
    for lock in ("requirements.lock", "requirements-serve.lock"):
        pinned = re.search(r"^torch==(\S+)", (ROOT / lock).read_text(), re.MULTILINE)
        assert pinned is not None, f"{lock} pins no torch"
        assert req.specifier.contains(Version(pinned.group(1)).public), f"{lock}: {pinned.group(1)} not in {req}"
    assert req.specifier.contains(Version(torch.__version__).public)
