"""The package's layering: the core stays free of napari and Qt (it must run in scripts
and on cluster workers), and no module reaches into another's private names."""

import ast
import subprocess
import sys
from pathlib import Path

CORE_MODULES = [
    "napari_lowlight",
    "napari_lowlight.formation",
    "napari_lowlight.quantization",
    "napari_lowlight.dimming",
    "napari_lowlight.metrics",
    "napari_lowlight.io",
    "napari_lowlight.data",
    "napari_lowlight.demo",
    "napari_lowlight.cli",
]


def test_core_imports_no_gui():
    code = (
        "import sys\n"
        f"for name in {CORE_MODULES!r}: __import__(name)\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in "
        "('napari', 'magicgui', 'qtpy', 'PyQt5', 'PyQt6', 'PySide2', 'PySide6', 'vispy')]\n"
        "print(','.join(sorted(bad)))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "", f"core pulled in GUI modules: {result.stdout}"


def test_public_names():
    import napari_lowlight as nl

    for name in ("degrade", "Quantization", "DegradedImage", "metrics", "dimming"):
        assert hasattr(nl, name)
    assert callable(nl.metrics.interval_consistency)


def _private_imports(package_dir):
    """``from X import _name`` in the package's modules where ``_name`` is not a module.

    A private module (``from ._lp import solve_partition``) is fine: the rule is about
    private *names*, which belong to their module.  Returns "path:line: from X import _name".
    """
    root = Path(package_dir)
    top = root.parent

    def is_module(dotted: str) -> bool:
        path = top.joinpath(*dotted.split("."))
        return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()

    found = []
    for path in sorted(root.rglob("*.py")):
        # a module's package is its folder, for a package's own __init__.py too
        package = list(path.relative_to(top).parts[:-1])
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.ImportFrom):
                continue
            if node.level:  # relative: climb from the module's own package
                base = package[: len(package) - (node.level - 1)]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            for alias in node.names:
                name = alias.name
                if not name.startswith("_") or (name.startswith("__") and name.endswith("__")):
                    continue
                if not is_module(f"{source}.{name}"):
                    found.append(f"{path.relative_to(top)}:{node.lineno}: "
                                 f"from {source} import {name}")
    return found


def test_no_private_names_cross_modules():
    """A leading underscore means "only this module uses it": importing one elsewhere hides
    a dependency from whoever changes it.  Make the name public or move it."""
    import napari_lowlight

    package_dir = Path(napari_lowlight.__file__).parent
    assert _private_imports(package_dir) == []
