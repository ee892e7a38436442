"""The package's structure: a library (lrlab's top-level modules), the course built on it (lrlab.course) and
the sources it corrects (lrlab.sources), with every import pointing down.

Read from the code itself (every import statement, also those inside functions), so a new arrow that runs
back up fails here.
"""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "lrlab"


def modules():
    """``{module name: path}`` of every module of the package."""
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def imports(name: str, path: Path) -> set:
    """The lrlab modules that ``name`` imports anywhere in its file (relative imports resolved)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("lrlab")}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.startswith("lrlab"):
                found.add(target)
                found |= {f"{target}.{a.name}" for a in node.names}
    known = modules()
    return {m for m in found if m in known and m != name}


def graph():
    return {name: imports(name, path) for name, path in modules().items()}


def is_library(name: str) -> bool:
    return not (name.startswith("lrlab.course") or name.startswith("lrlab.sources"))


def test_the_library_never_imports_the_course_or_the_sources():
    upward = {(name, target) for name, targets in graph().items() if is_library(name)
              for target in targets if not is_library(target)}
    assert upward == set()


def test_the_sources_do_not_import_the_course():
    assert {(n, t) for n, ts in graph().items() if n.startswith("lrlab.sources")
            for t in ts if t.startswith("lrlab.course")} == set()


def test_there_is_no_import_cycle():
    g = {name: {t for t in targets if t != "lrlab"} for name, targets in graph().items()}  # the package's
    # __init__ re-exports its submodules; importing a name from it is importing that submodule
    state, cycles = {}, []

    def visit(node, stack):
        state[node] = "open"
        for nxt in sorted(g.get(node, ())):
            if nxt.startswith(node + "."):
                continue  # a package importing its own submodules (its __init__) is not a cycle
            if state.get(nxt) == "open":
                cycles.append(stack[stack.index(nxt):] + [nxt] if nxt in stack else [node, nxt])
            elif nxt not in state:
                visit(nxt, stack + [nxt])
        state[node] = "done"

    for name in sorted(g):
        if name not in state:
            visit(name, [name])
    assert cycles == []


def test_schedules_need_only_numpy_at_module_level():
    tree = ast.parse((PACKAGE / "schedules.py").read_text(encoding="utf-8"))
    top = [node for node in tree.body if isinstance(node, (ast.Import, ast.ImportFrom))]
    names = {a.name for node in top if isinstance(node, ast.Import) for a in node.names}
    names |= {node.module for node in top if isinstance(node, ast.ImportFrom) and node.level == 0}
    assert "torch" not in names and not any(n and n.startswith("torch.") for n in names)
    code = "import sys; import lrlab.schedules as s; print(s.CosineScheduler(20, base_lr=0.3)(10), 'torch' in sys.modules)"
    blocked = ("import sys\nclass Block:\n    def find_spec(self, name, *a):\n"
               "        if name == 'torch' or name.startswith('torch.'): raise ImportError('no torch here')\n"
               "sys.meta_path.insert(0, Block())\n")
    # lrlab/__init__ imports the torch adapters; the schedules module itself (and what it imports) must load
    # without torch: an empty package object stands in for lrlab/__init__
    script = blocked + ("import types; pkg = types.ModuleType('lrlab'); pkg.__path__ = [%r]; sys.modules['lrlab'] = pkg\n"
                        % str(PACKAGE)) + code
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    value, torch_loaded = out.stdout.split()
    assert float(value) == pytest.approx(0.15) and torch_loaded == "False"


def test_import_lrlab_gives_the_library_only():
    code = "import sys, lrlab; print(sorted(m for m in sys.modules if m.startswith(('lrlab.course', 'lrlab.sources'))))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
