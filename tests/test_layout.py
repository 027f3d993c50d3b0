"""The import contract of the house: gui/ uses only realtime's public API, realtime/ never imports gui/, and
realtime's modules import each other without cycles (at module level: what runs at import time)."""

from __future__ import annotations

import ast
from pathlib import Path

import realtime

ROOT = Path(__file__).resolve().parent.parent


def _module(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, top_level_only: bool) -> list[tuple[str, list[str], int]]:
    """(module imported, names, line) for each import in `path`, relative ones resolved."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    pkg = _module(path) if path.name == "__init__.py" else _module(path).rsplit(".", 1)[0]
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    out = []
    for node in nodes:
        if isinstance(node, ast.Import):
            out += [(a.name, [], node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = pkg.split(".")[: len(pkg.split(".")) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            out.append((mod, [a.name for a in node.names], node.lineno))
    return out


def test_every_public_name_resolves_and_is_listed() -> None:
    for name in realtime.API:
        assert getattr(realtime, name) is not None, name
    assert set(realtime.__all__) == set(realtime.API)
    # the type checkers' view (the `if TYPE_CHECKING:` imports) names the same things from the same modules
    tree = ast.parse((ROOT / "realtime" / "__init__.py").read_text(encoding="utf-8"))
    block = next(n for n in tree.body if isinstance(n, ast.If) and getattr(n.test, "id", "") == "TYPE_CHECKING")
    typed = {a.name: node.module for node in block.body if isinstance(node, ast.ImportFrom) for a in node.names}
    assert typed == realtime.API


def test_gui_uses_only_the_public_api() -> None:
    bad = []
    for path in sorted((ROOT / "gui").glob("*.py")):
        for mod, names, line in _imports(path, top_level_only=False):
            if mod == "realtime":
                bad += [f"{path.name}:{line} realtime.{n} is not in the public API" for n in names if n not in realtime.API and n != "__version__"]
            elif mod.startswith("realtime."):
                bad.append(f"{path.name}:{line} imports {mod}: use `from realtime import ...` (add the name to realtime.API)")
            elif mod == "torch" or mod.startswith("torch."):  # the nets and devices are the engine's business
                bad.append(f"{path.name}:{line} imports {mod}: ask realtime's API instead")
    assert not bad, "\n".join(bad)


def test_realtime_never_imports_gui() -> None:
    bad = []
    for path in sorted((ROOT / "realtime").rglob("*.py")):
        for mod, _, line in _imports(path, top_level_only=False):
            if mod == "gui" or mod.startswith("gui."):
                bad.append(f"{path.relative_to(ROOT)}:{line} imports {mod}")
        if '"gui.' in path.read_text(encoding="utf-8"):
            bad.append(f"{path.relative_to(ROOT)} names a gui module (the app registers its command through an entry point)")
    assert not bad, "\n".join(bad)


def test_no_import_cycles_inside_realtime() -> None:
    graph: dict[str, set[str]] = {}
    files = {_module(p): p for p in (ROOT / "realtime").rglob("*.py")}
    for mod, path in files.items():
        deps = set()
        for target, names, _ in _imports(path, top_level_only=True):
            for cand in [f"{target}.{n}" for n in names] + [target]:
                if cand in files and cand != mod:
                    deps.add(cand)
                    break
        graph[mod] = {d for d in deps if d != "realtime"}  # the package itself loads names lazily
    seen: dict[str, int] = {}
    stack: list[str] = []
    cycles = []

    def visit(m: str) -> None:
        seen[m] = 1
        stack.append(m)
        for d in sorted(graph.get(m, ())):
            if seen.get(d) == 1:
                cycles.append(" -> ".join(stack[stack.index(d) :] + [d]))
            elif d not in seen:
                visit(d)
        stack.pop()
        seen[m] = 2

    for m in sorted(graph):
        if m not in seen:
            visit(m)
    assert not cycles, "import cycles at module level:\n" + "\n".join(cycles)


def test_sources_open_other_kinds_through_the_registry_without_importing_them() -> None:
    """realtime.io.sources names the modules of other source kinds only as data (SOURCE_KINDS): it imports none of them, at any level."""
    from realtime.io.sources import SOURCE_KINDS, FrameSource, open_source, parse_source

    path = ROOT / "realtime" / "io" / "sources.py"
    imported = {target for target, _, _ in _imports(path, top_level_only=False)}
    for kind, where in SOURCE_KINDS.items():
        module = where.partition(":")[0]
        assert module not in imported and not any(t.startswith(module) for t in imported), f"sources.py imports {module}"
        src = open_source(parse_source(f"{kind}:demo?frames=3"))
        try:
            assert isinstance(src, FrameSource) and src.read() is not None and src.truth() is not None
        finally:
            src.close()


def test_the_command_line_lives_in_realtime_cli_and_the_library_never_imports_it() -> None:
    """One module per command under realtime/cli/; the library below it (io, nets, stream, train) parses no arguments
    and never imports the command line (the public API names `main` and `add_model_options` lazily, as data)."""
    from realtime.cli import COMMAND_MODULES, build_parser, COMMANDS

    bad = []
    for path in sorted((ROOT / "realtime").rglob("*.py")):
        rel = path.relative_to(ROOT)
        if rel.parts[1] == "cli" or rel == Path("realtime/__init__.py"):
            continue
        for mod, _, line in _imports(path, top_level_only=False):
            if mod == "argparse" or mod == "realtime.cli" or mod.startswith("realtime.cli."):
                bad.append(f"{rel}:{line} imports {mod}")
    assert not bad, "\n".join(bad)
    build_parser()
    for name in COMMAND_MODULES:
        assert (ROOT / Path(*name.split("."))).with_suffix(".py").is_file(), name
    assert {"run", "serve", "train", "evaluate", "export", "record", "bench", "quantize", "info", "make-dataset", "imagenet"} <= set(COMMANDS)


def test_the_command_line_starts_without_torch() -> None:
    """Building every command's parser and refusing a missing file import no torch: `twostream --help`
    and a mistyped path answer in well under a second instead of after torch's seconds-long import."""
    import subprocess
    import sys

    probe = (
        "import sys\nfrom realtime.cli import build_parser, main\nbuild_parser()\nrc = main(['run', '/no/such/clip.mp4'])\nprint(rc, 'torch' in sys.modules)\n"
    )
    r = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.stdout.split() == ["2", "False"], r.stdout + r.stderr
    assert "/no/such/clip.mp4: no such file" in r.stderr


def test_every_engine_name_has_exactly_one_engine_class() -> None:
    """The names the command line, the GUI and the checkpoints accept (realtime.options) are the engines that exist."""
    from realtime.nets.engines import ENGINE_CLASSES
    from realtime.options import ENGINES

    assert ENGINES[0] == "auto" and set(ENGINES[1:]) == set(ENGINE_CLASSES) and len(set(ENGINES)) == len(ENGINES)
