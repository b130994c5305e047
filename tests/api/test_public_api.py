"""The public API a reader can trust: complete ``__all__`` lists, feature packages that
use each other only through their public modules, no import cycle, every public
package in the API docs."""

import ast
import importlib
import importlib.util
import inspect
import pkgutil
from pathlib import Path

import pytest

import msma_sklearn

ROOT = Path(msma_sklearn.__file__).parent
#: shared infrastructure whose private modules every package may use (as scikit-learn's
#: ``sklearn.utils._*``); the command line is the shell over the public API
INFRASTRUCTURE = {"utils"}
SHELL = {"cli"}


def public_packages():
    names = ["msma_sklearn"]
    for info in pkgutil.walk_packages([str(ROOT)], "msma_sklearn."):
        parts = info.name.split(".")
        if not any(p.startswith("_") for p in parts[1:]) and parts[1] not in SHELL:
            names.append(info.name)
    return names


@pytest.mark.parametrize("name", public_packages())
def test_all_is_complete_and_resolves(name):
    module = importlib.import_module(name)
    assert hasattr(module, "__all__"), f"{name} has no __all__"
    listed = list(module.__all__)
    assert len(listed) == len(set(listed)), f"{name}.__all__ repeats a name"
    for item in listed:
        assert getattr(module, item, None) is not None or item == "__version__", (name, item)
    # every class or function of ours that the module exposes is listed
    exposed = {
        k
        for k, v in vars(module).items()
        if not k.startswith("_")
        and (inspect.isclass(v) or inspect.isfunction(v))
        and getattr(v, "__module__", "").startswith("msma_sklearn")
    }
    assert exposed <= set(listed), f"{name} exposes {sorted(exposed - set(listed))} unlisted"


def _imports(path: Path):
    """(module the file belongs to, imported msma_sklearn module) for every import,
    at module level or inside functions."""
    rel = path.relative_to(ROOT.parent).with_suffix("")
    parts = list(rel.parts)
    package = parts[:-1]  # a module's package; for __init__.py, the package itself
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)]
                target = base + (node.module.split(".") if node.module else [])
            else:
                target = (node.module or "").split(".")
            if target[0] == "msma_sklearn":
                yield ".".join(target), [a.name for a in node.names]
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("msma_sklearn"):
                    yield alias.name, []


def test_no_feature_package_reaches_into_another_ones_private_modules():
    offences = []
    for path in ROOT.rglob("*.py"):
        own = path.relative_to(ROOT).parts[0] if path.parent != ROOT else None
        if own in SHELL:
            continue
        for target, _ in _imports(path):
            parts = target.split(".")
            if len(parts) < 3 or parts[1] in INFRASTRUCTURE or parts[1] == own:
                continue
            if any(p.startswith("_") for p in parts[2:]):
                offences.append(f"{path.relative_to(ROOT)} imports {target}")
    assert not offences, "\n".join(offences)


def _module_graph():
    graph = {}
    for path in ROOT.rglob("*.py"):
        rel = path.relative_to(ROOT.parent).with_suffix("")
        name = ".".join(rel.parts[:-1] if path.name == "__init__.py" else rel.parts)
        edges = set()
        for target, names in _imports(path):
            # "from .pkg import module" imports a submodule when one has that name
            for candidate in [target] + [f"{target}.{n}" for n in names]:
                file = ROOT.parent.joinpath(*candidate.split("."))
                exists = file.with_suffix(".py").is_file() or (file / "__init__.py").is_file()
                if exists and candidate != name:
                    edges.add(candidate)
        graph[name] = edges
    return graph


def test_no_import_cycle_between_private_modules():
    """Cycles through a package's ``__init__`` are how packages re-export; a cycle between
    two private modules (even one hidden inside a function) is a design knot."""
    graph = {
        k: {t for t in v if t.rsplit(".", 1)[-1].startswith("_")}
        for k, v in _module_graph().items()
        if k.rsplit(".", 1)[-1].startswith("_") and not k.endswith("__main__")
    }
    cycles = [(a, b) for a, targets in graph.items() for b in targets if a in graph.get(b, ())]
    assert not cycles, cycles


def test_every_public_package_is_in_the_api_docs():
    spec = importlib.util.spec_from_file_location(
        "build_api", ROOT.parent / "docs" / "build_api.py"
    )
    build_api = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build_api)
    assert set(public_packages()) <= set(build_api.MODULES), set(public_packages()) - set(
        build_api.MODULES
    )
