"""The boundaries of the package, checked on its source so that they stay kept."""

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


def sb3_private_names() -> set[str]:
    """Private attributes of SB3's algorithms, policies, rollout buffers, VecEnvs, callbacks."""
    import gymnasium as gym
    from stable_baselines3 import A2C, PPO
    from stable_baselines3.common.callbacks import BaseCallback

    objects: list[object] = [BaseCallback]
    for algorithm in (PPO, A2C):
        model = algorithm("MlpPolicy", gym.make("CartPole-v1"), n_steps=64, device="cpu")
        objects += [model, model.policy, model.rollout_buffer, model.get_env()]
    names = set()
    for obj in objects:
        for name in [*dir(obj), *getattr(obj, "__dict__", {})]:
            if name.startswith("_") and not name.startswith("__"):
                names.add(name)
    return names


def private_sb3_accesses(path: Path, private: set[str]) -> list[str]:
    """``x._name`` in ``path`` where ``_name`` is SB3's and ``x`` is not the object itself."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if not isinstance(node, ast.Attribute) or node.attr not in private:
            continue
        if not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls")):
            found.append(f"{path.name}:{node.lineno}: {ast.unparse(node)}")
    return found


def test_sb3_private_attributes_are_touched_only_by_learners(tmp_path):
    private = sb3_private_names()
    assert {"_last_obs", "_setup_model", "_update_learning_rate"} <= private
    offenders = [
        access
        for name, path in MODULES.items()
        if not name.startswith("reptile_rl.learners")
        for access in private_sb3_accesses(path, private)
    ]
    assert offenders == []
    # The check finds such an access where it is written.
    probe = tmp_path / "probe.py"
    probe.write_text("def peek(model):\n    return model._last_obs\n")
    assert private_sb3_accesses(probe, private) == ["probe.py:2: model._last_obs"]


def sb3_imports_beyond_vec_envs(path: Path) -> list[str]:
    """Modules of SB3 that ``path`` imports other than its VecEnv types."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            modules = [node.module]
        else:
            continue
        for module in modules:
            if module.split(".")[0] == "stable_baselines3" and not module.startswith(
                "stable_baselines3.common.vec_env"
            ):
                found.append(f"{path.name}:{node.lineno}: {module}")
    return found


def test_only_learners_import_sb3_algorithms_policies_and_callbacks(tmp_path):
    offenders = [
        found
        for name, path in MODULES.items()
        if not name.startswith("reptile_rl.learners")
        for found in sb3_imports_beyond_vec_envs(path)
    ]
    assert offenders == []
    probe = tmp_path / "probe.py"
    probe.write_text(
        "import stable_baselines3.ppo\n"
        "from stable_baselines3 import PPO\n"
        "from stable_baselines3.common.vec_env import VecEnv\n"
    )
    assert sb3_imports_beyond_vec_envs(probe) == [
        "probe.py:1: stable_baselines3.ppo",
        "probe.py:2: stable_baselines3",
    ]


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
