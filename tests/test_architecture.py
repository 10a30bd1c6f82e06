"""The house stays standing (docs/architecture.md): import rules, no import cycle, a light CLI start."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_import_contracts_are_kept():
    """The layers and rules in pyproject.toml's [tool.importlinter], checked by import-linter."""
    pytest.importorskip("importlinter")
    lint = Path(sys.executable).with_name("lint-imports")
    proc = subprocess.run([str(lint) if lint.exists() else "lint-imports", "--config", str(ROOT / "pyproject.toml")],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert "0 broken" in proc.stdout


def test_no_import_cycle_not_even_inside_functions():
    grimp = pytest.importorskip("grimp")
    graph = grimp.build_graph("vigil", exclude_type_checking_imports=True)
    cycles = []
    for importer in sorted(graph.modules):
        for imported in sorted(graph.find_modules_directly_imported_by(importer)):
            if imported.startswith(importer + ".") or importer.startswith(imported + "."):
                continue            # a package and its own modules (``__init__`` re-exports)
            if graph.chain_exists(importer=imported, imported=importer):
                cycles.append(f"{importer} -> {imported}")
    assert not cycles, "import cycles: " + "; ".join(cycles)


def test_the_command_line_starts_without_loading_pytorch_or_opencv():
    """``vigil --help`` and ``--version`` read their arguments before any heavy library loads."""
    code = ("import sys\nfrom vigil.cli import build_parser\nbuild_parser()\n"
            "print(sorted(m for m in ('torch', 'cv2', 'sklearn', 'scipy', 'vigil.models', 'fastapi', 'uvicorn',"
            " 'sqlalchemy', 'paho', 'yaml') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
    version = subprocess.run([sys.executable, "-m", "vigil", "--version"], capture_output=True, text=True, timeout=120)
    assert version.returncode == 0 and version.stdout.startswith("vigil ")
