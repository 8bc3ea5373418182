"""The core package stands alone: a production install of ``virtplane`` carries no simulator, and the lab
package (``virtplane_lab``) is a tool beside it that uses only the core's public API."""

from __future__ import annotations

import ast
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LAB = ROOT / "lab" / "virtplane_lab"
SIMULATOR_WORDS = ("psrpcore", "fakepve", "vcsim", "hypervsim", "xapisim", "virtplane_lab")
# What the lab may import of the core: its exceptions and the package itself, nothing of its internals.
CORE_PUBLIC_API = {"virtplane", "virtplane.errors"}


def _core_source_dirs() -> list[Path]:
    """The folders pyproject.toml maps into the ``virtplane`` distribution."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return sorted({ROOT / folder for folder in config["tool"]["setuptools"]["package-dir"].values()})


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def _top_level_imports(path: Path) -> set[str]:
    """Modules imported when ``path`` is imported (not inside functions, not under TYPE_CHECKING)."""
    found: set[str] = set()
    for node in ast.parse(path.read_text(), str(path)).body:
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def test_every_module_of_the_core_imports_with_the_lab_and_the_simulators_absent() -> None:
    blocker = """
import importlib, importlib.abc, pkgutil, sys
BLOCKED = ("virtplane_lab", "fakepve", "psrpcore")
class Absent(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r}")
        return None
sys.meta_path.insert(0, Absent())
names = []
for package in PACKAGES:
    module = importlib.import_module(package)
    names += [package] + [m.name for m in pkgutil.iter_modules(module.__path__, package + ".") if not m.ispkg]
for name in names:
    if name.endswith(".__main__"):
        continue
    importlib.import_module(name)
assert not [m for m in sys.modules if m.split(".")[0] in BLOCKED]
print(len(names))
"""
    packages = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    done = subprocess.run([sys.executable, "-c", f"PACKAGES = {packages!r}\n{blocker}"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert int(done.stdout) > 100  # the walk really reached the providers, policies and plugin


def test_no_file_of_the_core_mentions_a_simulator() -> None:
    mentions = [f"{path.relative_to(ROOT)}: {word}"
                for folder in _core_source_dirs() for path in sorted(folder.rglob("*")) if path.is_file()
                and "__pycache__" not in path.parts
                for word in SIMULATOR_WORDS if word in path.read_text(errors="replace").lower()]
    assert mentions == []


def test_the_core_distribution_does_not_depend_on_the_simulators() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = [*project["dependencies"], *(r for extra in project["optional-dependencies"].values()
                                                for r in extra)]
    assert [r for r in requirements if any(word in r.lower() for word in ("fakepve", "psrpcore", "virtplane"))] == []
    lab = tomllib.loads((ROOT / "lab" / "pyproject.toml").read_text())["project"]
    assert {"fakepve[crypto]==0.5.0", "psrpcore==0.3.1", "virtplane"} <= set(lab["dependencies"])


def test_the_lab_imports_only_the_cores_public_api() -> None:
    used = {module for path in LAB.rglob("*.py") for module in _imports(path)
            if module.split(".")[0] == "virtplane"}
    assert used <= CORE_PUBLIC_API, sorted(used - CORE_PUBLIC_API)


def test_the_core_modules_import_each_other_without_cycles() -> None:
    modules: dict[str, Path] = {}
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]
    for package, folder in config.items():
        for path in (ROOT / folder).rglob("*.py"):
            parts = path.relative_to(ROOT / folder).with_suffix("").parts
            name = ".".join((package, *parts)).removesuffix(".__init__")
            modules.setdefault(name, path)
    graph = {name: {m for m in _top_level_imports(path) if m in modules and m != name}
             for name, path in modules.items()}
    for name in list(graph):  # importing a.b.c imports a.b first: an edge to the package, not a cycle
        graph[name] = {m for m in graph[name] if not name.startswith(m + ".")}

    def cycle_from(start: str) -> list[str] | None:
        stack, seen = [(start, [start])], set()
        while stack:
            node, path = stack.pop()
            for nxt in graph[node]:
                if nxt == start:
                    return [*path, nxt]
                if nxt not in seen:
                    seen.add(nxt)
                    stack.append((nxt, [*path, nxt]))
        return None

    cycles = [cycle for name in sorted(graph) if (cycle := cycle_from(name))]
    assert cycles == []


def test_specs_do_not_import_the_kind_registry() -> None:
    assert not {m for m in _imports(ROOT / "virtplane" / "specs.py") if m.startswith("virtplane.kinds")}


def test_a_wheel_of_the_core_holds_no_simulator(tmp_path: Path) -> None:
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                            "-w", str(tmp_path), str(ROOT)], capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stderr
    [wheel] = tmp_path.glob("virtplane-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        assert not [n for n in names if n.startswith("virtplane_lab/") or "/lab/" in n]
        assert "virtplane/providers/vsphere/collector.py" in names  # the mapped folders are in it
        mentions = [n for n in names if n.startswith("virtplane/") and any(
            word in archive.read(n).decode(errors="replace").lower() for word in SIMULATOR_WORDS)]
        assert mentions == []
        metadata = archive.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    requires = [line for line in metadata.splitlines() if line.startswith("Requires-Dist:")]
    assert requires and not [line for line in requires if "fakepve" in line or "psrpcore" in line]
