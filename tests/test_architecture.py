"""The boundaries of the package (issue 19), checked on its source so that they stay kept."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "reptile_rl"
MODULES = {
    ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts).removesuffix(".__init__"): path
    for path in PACKAGE.rglob("*.py")
}


def imports(path: Path, top_level: bool) -> set[str]:
    """``reptile_rl`` modules imported by ``path``: at module level, or inside functions."""
    tree = ast.parse(path.read_text())
    nodes = (
        tree.body if top_level else [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)]
    )
    found: set[str] = set()
    for node in nodes:
        for child in [node] if top_level else ast.walk(node):
            if isinstance(child, ast.ImportFrom) and child.module:
                names = [f"{child.module}.{alias.name}" for alias in child.names]
                found.update(n if n in MODULES else child.module for n in names)
            elif isinstance(child, ast.Import):
                found.update(alias.name for alias in child.names)
    return {name for name in found if name in MODULES}


def test_the_source_is_found():
    assert {"reptile_rl.reptile", "reptile_rl.learners.sb3_hooks", "reptile_rl.envs.base"} <= set(
        MODULES
    )


def test_no_import_cycles():
    graph = {name: imports(path, top_level=True) - {name} for name, path in MODULES.items()}
    # A package imports its own __init__ first: edges into a parent package are not cycles.
    graph = {
        name: {dep for dep in deps if not name.startswith(dep + ".")}
        for name, deps in graph.items()
    }
    done: set[str] = set()

    def visit(name: str, stack: list[str]) -> None:
        if name in stack:
            pytest.fail("import cycle: " + " -> ".join([*stack[stack.index(name) :], name]))
        if name in done:
            return
        for dep in sorted(graph[name]):
            visit(dep, [*stack, name])
        done.add(name)

    for name in sorted(graph):
        visit(name, [])


def test_no_package_imports_inside_functions():
    # Imports inside functions are how cycles were hidden before (config <-> envs_factory,
    # evaluation <-> plotting).
    offenders = {name: imports(path, top_level=False) for name, path in MODULES.items()}
    assert {name: deps for name, deps in offenders.items() if deps} == {}


def test_families_never_import_the_meta_learning_code():
    for name, path in MODULES.items():
        if name.startswith("reptile_rl.envs"):
            assert all(dep.startswith("reptile_rl.envs") for dep in imports(path, True)), name


@pytest.mark.parametrize(
    "internal", ['locals["', "lr_schedule", "rollout_buffer", "name_to_value", "_validate_args"]
)
def test_sb3_internals_are_touched_in_one_module(internal):
    users = sorted(name for name, path in MODULES.items() if internal in path.read_text())
    assert users == ["reptile_rl.learners.sb3_hooks"]


def test_no_module_tests_a_family_by_name():
    for name, path in MODULES.items():
        if not name.startswith("reptile_rl.envs"):
            code = ast.unparse(ast.parse(path.read_text()))  # without comments and docstrings' text
            assert "Navigation2DEnv" not in code and 'Navigation2D-v0" ==' not in code, name


def test_families_install_as_reptile_rl_envs(tmp_path):
    # From outside the repository only the package's own name is importable.
    script = "import reptile_rl.envs as e; print(e.NavigationTask.__module__)"
    found = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, check=True
    )
    assert found.stdout.strip() == "reptile_rl.envs.navigation"
    missing = subprocess.run(
        [sys.executable, "-c", "import envs"], cwd=tmp_path, capture_output=True, text=True
    )
    assert missing.returncode != 0 and "No module named 'envs'" in missing.stderr
