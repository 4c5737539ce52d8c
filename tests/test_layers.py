"""The layering rule (SPEC §2, STYLE.md "Layers and rooms"), read from the code's own imports.

Domain modules import only downward: `teams` ← `leadops` ← `audit` ← `escalations`. Interface
modules (admin, views, urls, management commands, the demo, the benchmarks, the API, the Slack
app) may import any domain module; no domain module imports an interface module. Imports are read
with `ast`, at the top of a module and inside functions alike. An import of the project's own
modules inside a function body needs a comment saying why ("Imported here ...")."""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LAYERS = {"teams": 0, "leadops": 1, "audit": 2, "escalations": 3}
CHECKED = (*LAYERS, "tests")
# A module is an interface module when one of its path parts (below the app) is one of these, or
# starts with "admin" / "views" (admin_kit.py, admin_forms.py, views.py, admin/...).
INTERFACE_PARTS = frozenset({"urls", "management", "demo", "bench", "api", "slack"})
INTERFACE_PREFIXES = ("admin", "views")
WHY_MARKER = "imported here"


@dataclass(frozen=True)
class Violation:
    path: str
    line: int
    text: str
    why: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.text}  <- {self.why}"


def is_interface(module: str) -> bool:
    parts = module.split(".")[1:]
    return any(p in INTERFACE_PARTS or p.startswith(INTERFACE_PREFIXES) for p in parts)


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def project_modules(root: Path) -> dict[str, Path]:
    found = {}
    for top in CHECKED:
        for path in sorted((root / top).rglob("*.py")) if (root / top).is_dir() else []:
            if "migrations" in path.relative_to(root).parts:
                continue
            found[module_name(path, root)] = path
    return found


def _targets(node, known: dict[str, Path]) -> list[str]:
    """The project modules an import statement loads (`from a import b` loads a.b when b is a
    module of the project, else a)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if node.level or not node.module:
        return []
    names = [f"{node.module}.{alias.name}" for alias in node.names]
    submodules = [name for name in names if name in known]
    return submodules or [node.module]


def _in_function(tree: ast.AST) -> set[int]:
    """Line numbers of import statements inside a function body."""
    lines = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            for inner in ast.walk(node):
                if isinstance(inner, ast.Import | ast.ImportFrom):
                    lines.add(inner.lineno)
    return lines


def _says_why(source_lines: list[str], lineno: int) -> bool:
    """A "# Imported here ..." comment on the import, or above the block of imports it is in."""
    first = lineno - 1
    while first > 0 and source_lines[first - 1].strip().startswith(("from ", "import ")):
        first -= 1
    nearby = [source_lines[lineno - 1], source_lines[first - 1] if first else ""]
    return any(WHY_MARKER in line.lower() and "#" in line for line in nearby)


def check(root: Path) -> list[Violation]:
    known = project_modules(root)
    violations = []
    for name, path in known.items():
        app = name.split(".")[0]
        source = path.read_text(encoding="utf-8")
        lines = source.splitlines()
        tree = ast.parse(source, filename=str(path))
        nested = _in_function(tree)
        rel = str(path.relative_to(root))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Import | ast.ImportFrom):
                continue
            text = lines[node.lineno - 1].strip()
            for target in _targets(node, known):
                target_app = target.split(".")[0]
                if target_app not in LAYERS:
                    continue
                if node.lineno in nested and not _says_why(lines, node.lineno):
                    violations.append(
                        Violation(rel, node.lineno, text, "a project import inside a function")
                    )
                if app not in LAYERS or is_interface(name):
                    continue
                if is_interface(target):
                    violations.append(
                        Violation(rel, node.lineno, text, f"domain module imports {target}")
                    )
                elif LAYERS[target_app] > LAYERS[app]:
                    violations.append(
                        Violation(rel, node.lineno, text, f"{app} imports upward from {target_app}")
                    )
    return violations


def test_domain_modules_import_only_downward_and_never_an_interface():
    violations = check(ROOT)
    assert not violations, "layering broken:\n" + "\n".join(str(v) for v in violations)


# --- the checker itself, on a small tree with deliberate mistakes --------------------------------


def _tree(root: Path, files: dict[str, str]) -> Path:
    for relpath, text in files.items():
        path = root / relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


@pytest.fixture
def bad_tree(tmp_path):
    return _tree(
        tmp_path,
        {
            "teams/__init__.py": "",
            "teams/models.py": "from escalations.models import SlaTimer\n",
            "leadops/__init__.py": "",
            "leadops/lifecycle.py": (
                "from teams.models import Rep\n\n\n"
                "def announce():\n"
                "    from escalations import timers\n"
                "    timers.go()\n"
            ),
            "leadops/admin.py": "from escalations.models import SlaTimer\n",
            "audit/__init__.py": "",
            "audit/log.py": "from leadops import admin\n",
            "escalations/__init__.py": "",
            "escalations/apps.py": (
                "def ready():\n"
                "    # Imported here: models are not loaded when this module is.\n"
                "    from escalations import timers\n"
            ),
            "escalations/models.py": "from teams.models import Rep\n",
            "escalations/timers.py": "from audit.log import record\n",
            "tests/test_x.py": "def test_x():\n    from leadops import lifecycle\n",
        },
    )


def test_the_checker_names_each_upward_import_with_its_line(bad_tree):
    found = {(v.path, v.line, v.why) for v in check(bad_tree)}

    assert ("teams/models.py", 1, "teams imports upward from escalations") in found
    assert ("leadops/lifecycle.py", 5, "leadops imports upward from escalations") in found
    assert ("leadops/lifecycle.py", 5, "a project import inside a function") in found
    assert ("audit/log.py", 1, "domain module imports leadops.admin") in found
    assert ("tests/test_x.py", 2, "a project import inside a function") in found
    assert len(found) == 5


def test_the_checker_lets_interfaces_import_anything_and_explained_nested_imports_pass(bad_tree):
    paths = {v.path for v in check(bad_tree)}

    assert "leadops/admin.py" not in paths  # an interface module may import escalations
    assert "escalations/apps.py" not in paths  # nested, with the reason in a comment
    assert "escalations/timers.py" not in paths  # downward


def test_the_checker_reads_the_whole_project():
    modules = project_modules(ROOT)

    assert {"leadops.lifecycle", "escalations.notify.delivery", "teams.calendar"} <= set(modules)
    assert not any(".migrations." in name for name in modules)
    assert is_interface("escalations.admin.policies") and is_interface("leadops.admin_kit")
    assert not is_interface("escalations.org_changes")
