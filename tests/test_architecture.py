"""The layout docs/architecture.md describes: verbs (stages and commands) on top, nouns (library modules) below.

A verb imports nouns only; a noun imports no verb; there is no import circle; no module runs as ``__main__``
while others import it; modules stay short enough to read in one sitting; each DVC stage lists as dependencies
exactly the project code it runs, so a change to that code reruns it.
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


STAGES = yaml.safe_load((ROOT / "dvc.yaml").read_text(encoding="utf-8"))["stages"]


def stage_module(stage: dict) -> str:
    return re.search(r"python -m ([\w.]+)", stage["cmd"]).group(1)


def verbs() -> set[str]:
    """Modules run as a stage (dvc.yaml), a console script (pyproject.toml) or ``python -m``."""
    found = {stage_module(stage) for stage in STAGES.values()}
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


def runs(name: str) -> set[str]:
    """The module and every project module it imports, transitively, as paths relative to the repository."""
    seen, todo = set(), [name]
    while todo:
        module = todo.pop()
        if module not in seen:
            seen.add(module)
            todo.extend(imports(module))
    return {MODULES[module].relative_to(ROOT).as_posix() for module in seen}


@pytest.mark.parametrize("name", sorted(STAGES))
def test_each_stage_lists_the_code_it_runs(name):
    stage = STAGES[name]
    listed = {dep for dep in stage["deps"] if dep.startswith("pipeline/") and dep.endswith(".py")}
    code = runs(stage_module(stage))
    unlisted, unused = sorted(code - listed), sorted(listed - code)
    assert not unlisted, f"dvc.yaml, stage {name}: add {unlisted} to deps, or a change there will not rerun it"
    assert not unused, f"dvc.yaml, stage {name}: its deps list {unused}, which it never imports"
