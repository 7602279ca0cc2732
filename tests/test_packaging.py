"""pyproject.toml and environment.yml must describe the same runtime environment."""

import re
import sys
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent
# conda-forge names of PyPI packages where they differ
CONDA_NAMES = {"torch": "pytorch"}


def _split(requirement: str) -> tuple[str, str]:
    name, bound = re.match(r"^\s*([A-Za-z0-9_.-]+)\s*(.*)$", requirement).groups()
    return name.lower(), bound.replace(" ", "")


def _pyproject():
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def _conda_dependencies() -> dict[str, str]:
    deps = {}
    for line in (ROOT / "environment.yml").read_text().splitlines():
        match = re.match(r"^  - ([A-Za-z0-9_.-]+)(.*)$", line)
        if match:
            name, bound = _split(match.group(1) + match.group(2))
            deps[name] = bound
    return deps


def test_environment_yml_lists_the_runtime_dependencies_with_the_same_bounds():
    conda = _conda_dependencies()
    for requirement in _pyproject()["dependencies"]:
        name, bound = _split(requirement)
        conda_name = CONDA_NAMES.get(name, name)
        assert conda_name in conda, f"{conda_name} missing from environment.yml"
        assert conda[conda_name] == bound, f"{name}: pyproject {bound}, conda {conda[conda_name]}"


def test_environment_yml_installs_the_package_itself_with_pip():
    assert "- -e ." in (ROOT / "environment.yml").read_text()


def test_dependencies_have_lower_bounds_only():
    project = _pyproject()
    requirements = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        requirements += extra
    for requirement in requirements:
        name, bound = _split(requirement)
        assert bound.startswith(">="), f"{name} should have a lower bound only, got {bound!r}"
        assert "d2l" != name, "d2lcnn must not depend on the d2l package"
