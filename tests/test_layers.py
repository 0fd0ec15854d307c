"""The house rules of DESIGN.md section 2, checked on the source: imports only go down the
layers, no circle of imports, no private name reached across packages, no oversized file."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "neural_sk"

# Bottom to top (DESIGN.md section 2). A module may import from its own layer or lower ones.
LAYERS = [
    {"utils", "_version"},
    {"graphs"},
    {"patches", "codecs"},
    {"text"},
    {"datasets"},
    {"models"},
    {"studies", "io", "metrics"},
    {"attention", "pruning", "report_graph", "fusion", "gnn", "baselines"},
    {"pipeline", "compress", "demo", "plotting", "testing", "cli", "__main__", "__init__"},
]
LEVEL = {room: level for level, rooms in enumerate(LAYERS) for room in rooms}
MAX_LINES = 500


def _modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


MODULES = _modules()


def _room(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _resolve(module: str, path: Path, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".")
    if path.name != "__init__.py":
        base = base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _imports(module: str, path: Path) -> list[tuple[str, str | None, int]]:
    """(imported module, imported name or None, line) for every import in the file."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out += [(alias.name, None, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            target = _resolve(module, path, node)
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                if sub in MODULES:  # `from . import x` names a module, not an attribute
                    out.append((sub, None, node.lineno))
                else:
                    out.append((target, alias.name, node.lineno))
    return [(m, name, line) for m, name, line in out if m.split(".")[0] == "neural_sk"]


EDGES = {module: _imports(module, path) for module, path in MODULES.items()}


def test_every_module_has_a_layer():
    missing = sorted({_room(m) for m in MODULES} - set(LEVEL))
    assert not missing, f"modules outside the layer plan (add them to DESIGN.md and LAYERS): {missing}"


def test_imports_only_go_down():
    upward = [
        f"{MODULES[m].relative_to(PACKAGE.parent)}:{line} imports {target} "
        f"({_room(m)} is below {_room(target)})"
        for m, edges in EDGES.items() for target, _, line in edges
        if LEVEL.get(_room(target), -1) > LEVEL.get(_room(m), 99)
    ]
    assert not upward, "\n".join(upward)


def test_no_private_name_across_packages():
    reached = [
        f"{MODULES[m].relative_to(PACKAGE.parent)}:{line} imports {target}.{name}"
        for m, edges in EDGES.items() for target, name, line in edges
        if name and name.startswith("_") and not name.startswith("__")
        and _room(target) != _room(m)
    ]
    assert not reached, "\n".join(reached)


def test_no_circle_of_imports():
    graph = {m: {t for t, _, _ in edges if t in MODULES and t != m} for m, edges in EDGES.items()}
    # a package's __init__ re-exporting its own modules is not a circle worth reporting
    for m in graph:
        graph[m] = {t for t in graph[m] if not (MODULES[t].name == "__init__.py" and m.startswith(t + "."))}
    state: dict[str, int] = {}
    cycles = []

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append(" -> ".join(stack[stack.index(nxt):] + [node, nxt]) if nxt in stack
                              else f"{node} -> {nxt}")
            elif nxt not in state:
                visit(nxt, stack + [node])
        state[node] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [])
    assert not cycles, "\n".join(cycles)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_file_fits_in_a_reader_s_head(module):
    n = len(MODULES[module].read_text().splitlines())
    assert n <= MAX_LINES, f"{MODULES[module].relative_to(PACKAGE.parent)} has {n} lines (at most {MAX_LINES})"


MAX_FUNCTION_CODE_LINES = 120


def _code_lines(node: ast.AST, lines: list[str]) -> int:
    """Lines of code in a function: no docstring, blank lines or comment-only lines."""
    body = node.body
    start = body[0].lineno
    if (isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
            and isinstance(body[0].value.value, str)):
        start = body[1].lineno if len(body) > 1 else node.end_lineno + 1
    return sum(1 for text in lines[start - 1: node.end_lineno]
               if text.strip() and not text.strip().startswith("#"))


def test_functions_do_one_job():
    long = []
    for module, path in MODULES.items():
        lines = path.read_text().splitlines()
        for node in ast.walk(ast.parse("\n".join(lines))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = _code_lines(node, lines)
                if n > MAX_FUNCTION_CODE_LINES:
                    long.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno} {node.name} ({n} lines of code)")
    assert not long, "\n".join(long)
