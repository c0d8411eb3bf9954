"""constraints.txt pins what `make` installs: every requirement of pyproject.toml, at a version it allows."""

import tomllib

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from tests.conftest import ROOT


def pin_lines() -> list[str]:
    """The lines of constraints.txt that pin a package (not comments or blank lines)."""
    lines = (ROOT / "constraints.txt").read_text(encoding="utf-8").splitlines()
    return [line for line in lines if line.strip() and not line.startswith("#")]


def pins() -> dict[str, Version]:
    return {canonicalize_name(name): Version(version) for name, version in (line.split("==") for line in pin_lines())}


def requirements() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    listed = project["dependencies"] + [r for extra in project["optional-dependencies"].values() for r in extra]
    return [Requirement(r) for r in listed]


def test_every_requirement_is_pinned_within_its_range():
    pinned = pins()
    for requirement in requirements():
        name = canonicalize_name(requirement.name)
        assert name in pinned, f"{requirement.name} is not in constraints.txt (make lock)"
        assert requirement.specifier.contains(pinned[name]), f"{requirement.name}=={pinned[name]} breaks {requirement}"


def test_pins_are_exact_and_unique():
    lines = pin_lines()
    assert all(line.count("==") == 1 and ";" not in line and " " not in line for line in lines)
    assert len(pins()) == len(lines)
