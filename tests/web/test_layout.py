"""The web layer's shape (docs/architecture.md, *The web layer*): page modules share code
through public names only, and the page kit depends on no page module."""

from __future__ import annotations

import ast
from pathlib import Path

import smartunion

SRC = Path(smartunion.__file__).parent


def _imports(path: Path) -> list[tuple[str, str]]:
    """(module, name) for every ``from smartunion... import name`` in a file."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("smartunion"):
            found += [(node.module or "", alias.name) for alias in node.names]
    return found


def test_no_web_module_imports_another_modules_private_names() -> None:
    offenders = [
        f"{path.relative_to(SRC)}: {module}.{name}"
        for path in sorted((SRC / "web").rglob("*.py"))
        for module, name in _imports(path)
        if name.startswith("_") and name != "__version__"
    ]
    assert offenders == []


def test_page_kit_and_shared_modules_import_no_page_module() -> None:
    shared = ("pagekit.py", "signin.py", "labels.py", "language.py")
    offenders = [
        f"{name}: {module}"
        for name in shared
        for module, _ in _imports(SRC / "web" / name)
        if module.startswith(("smartunion.web.console", "smartunion.web.portal"))
    ]
    assert offenders == []


def test_every_page_module_is_registered() -> None:
    from smartunion.web import console, portal

    for package in (console, portal):
        folder = Path(package.__file__).parent
        modules = {p.stem for p in folder.glob("*.py")} - {"__init__"}
        assert {m.__name__.rsplit(".", 1)[1] for m in package.MODULES} == modules
