"""The layout docs/architecture.md describes: verbs (stages and commands) on top, nouns (library modules) below.

A verb imports nouns only; a noun imports no verb; there is no import circle; no module runs as ``__main__``
while others import it; modules stay short enough to read in one sitting.
"""

import ast
import re
import tomllib

import pytest
import yaml

from tests.conftest import ROOT

PACKAGE = ROOT / "pipeline"
MAX_LINES = 300


def module_name(path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def verbs() -> set[str]:
    """Modules run as a stage (dvc.yaml), a console script (pyproject.toml) or ``python -m``."""
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text(encoding="utf-8"))["stages"]
    found = {re.search(r"python -m ([\w.]+)", stage["cmd"]).group(1) for stage in stages.values()}
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["scripts"]
    found |= {target.split(":")[0] for target in scripts.values()}
    found |= {name.removesuffix(".__main__") for name, path in MODULES.items()
              if name.endswith("__main__") or 'if __name__ == "__main__"' in path.read_text(encoding="utf-8")}
    return found


def family(name: str, verbs_: set[str]) -> str | None:
    """The verb a module belongs to: the verb itself or a module inside a verb's package."""
    return next((verb for verb in verbs_ if name == verb or name.startswith(verb + ".")), None)


def imports(name: str) -> set[str]:
    """The project modules a module imports, at the top or inside functions."""
    tree = ast.parse(MODULES[name].read_text(encoding="utf-8"))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolved against this module's package
                package = name.split(".")[: len(name.split(".")) - node.level + (MODULES[name].stem == "__init__")]
                base = ".".join(package + ([base] if base else []))
            for alias in node.names:  # `from pipeline import files` imports pipeline.files, not the package's body
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base)
    return {module for module in found if module in MODULES and module != name}


VERBS = verbs()


def test_the_verbs_are_found():
    assert {"pipeline.prepare", "pipeline.train", "pipeline.evaluate", "pipeline.predict"} <= VERBS


@pytest.mark.parametrize("name", sorted(MODULES))
def test_no_module_imports_another_verb(name):
    own = family(name, VERBS)
    other_verbs = {module for module in imports(name) if family(module, VERBS) not in (None, own)}
    assert not other_verbs, f"{name} imports {sorted(other_verbs)}"


def test_there_is_no_import_circle():
    graph = {name: imports(name) for name in MODULES}
    state: dict[str, int] = {}

    def visit(name, path):
        state[name] = 1
        for module in graph[name]:
            if state.get(module) == 1:
                raise AssertionError("import circle: " + " -> ".join(path[path.index(module):] + [module]))
            if module not in state:
                visit(module, path + [module])
        state[name] = 2

    for name in graph:
        if name not in state:
            visit(name, [name])


@pytest.mark.parametrize("name", sorted(MODULES))
def test_modules_are_short(name):
    lines = len(MODULES[name].read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_LINES, f"{name}: {lines} lines"
