"""service/ keeps the shape the README's file map describes: each folder imports only the folders below it."""

from __future__ import annotations

import ast
from pathlib import Path

SERVICE = Path(__file__).resolve().parents[2] / "service"

# Modules every part may import: the failures raised anywhere, the settings and metrics passed in.
SHARED = {"errors", "settings", "metrics"}
# For each part (a folder, or a module at the root), the parts of service/ it may import besides SHARED.
ALLOWED: dict[str, set[str]] = {
    "codecs": set(),
    "inputs": set(),
    "engine": set(),
    "inference": set(),
    "catalog": {"engine", "inference"},
    "workers": set(),
    "runtime": {"catalog", "workers"},
    "playground": set(),
    "api": {"catalog", "codecs", "engine", "inputs", "runtime", "playground", "workers"},
    "app": {"api", "catalog", "inference", "runtime", "playground", "workers"},
    "process": {"api", "app", "runtime", "workers"},
    "cli": {"inference", "process"},
    "__init__": {"app", "process"},
    **{name: set() for name in SHARED},
}


def _part(module: str) -> str:
    """`service.api.routes.sample` -> `api`; `service.app` -> `app`."""
    return module.split(".")[1]


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def _service_modules() -> list[tuple[str, Path]]:
    root = SERVICE.parent
    return [(".".join(path.relative_to(root).with_suffix("").parts), path) for path in sorted(SERVICE.rglob("*.py"))]


def test_every_part_imports_only_the_parts_below_it() -> None:
    wrong: list[str] = []
    for module, path in _service_modules():
        part = _part(module) if module != "service.__init__" else "__init__"
        assert part in ALLOWED, f"{module}: service/{part} is not in the file map; add it to the README and here"
        for imported in _imports(path):
            if imported.startswith("training"):
                wrong.append(f"{module} imports {imported}: the service never imports training")
            if imported == "service" or not imported.startswith("service."):
                continue
            target = _part(imported)
            if target != part and target not in SHARED and target not in ALLOWED[part]:
                wrong.append(f"{module} imports {imported}")
    assert wrong == []


def test_the_service_uses_the_public_face_of_models() -> None:
    leaks = [
        f"{module} imports {imported}"
        for module, path in _service_modules()
        for imported in _imports(path)
        if imported.startswith("models.")
    ]
    assert leaks == [], "import these from `models`, or make them public there on purpose"


def test_the_root_holds_only_the_wiring() -> None:
    root_modules = {path.stem for path in SERVICE.glob("*.py")}
    assert root_modules == {"__init__", "app", "cli", "settings", "metrics", "runtime", "errors"}
