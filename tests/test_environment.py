"""The conda/Binder environment and the pip path install the same things; CI runs the README command."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent


def _norm(req: str) -> str:
    return re.sub(r"\s+", "", req).lower().replace("_", "-")


def test_environment_yml_matches_pyproject():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    pip_path = {_norm(r) for r in project["dependencies"] + project["optional-dependencies"]["test"]}
    env = yaml.safe_load((REPO / "environment.yml").read_text())
    pip_entries = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    conda_path = {_norm(r) for r in pip_entries if not r.startswith("-e")}
    assert conda_path == pip_path, (conda_path ^ pip_path)
    assert "-e ." in pip_entries


def test_torch_pinned_to_the_local_cpu_build():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert "torch==2.13.0" in project["dependencies"]


def test_build_tools_have_upper_bounds():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    for req in project["dependencies"] + project["optional-dependencies"]["test"]:
        assert "<" in req or "==" in req, f"{req} has no upper bound"


def test_ci_runs_exactly_the_readme_test_command():
    readme = (REPO / "README.md").read_text()
    ci = (REPO / ".ci" / "run").read_text()
    test_cmd = re.search(r"^make test\b", readme, re.M)
    assert test_cmd, "README gives no test command"
    ci_cmds = [line.strip() for line in ci.splitlines() if line.strip() and not line.lstrip().startswith(("#", "set ", "cd "))]
    assert ci_cmds == ["make test"]
