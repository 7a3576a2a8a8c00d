"""The core stays free of napari and Qt (it must run in scripts and on cluster workers)."""

import subprocess
import sys

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
