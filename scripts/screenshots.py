"""Screenshots of the real napari viewer with each dock widget, for docs/usage.md.

Opens a viewer (on a virtual X screen under ``make screenshots``), loads the
plugin's sample data, runs every widget through its Run button the way a user
would, waits for the job, and saves the whole window.  Rerun after any change to
the widgets:  make screenshots   (or:  xvfb-run -a python scripts/screenshots.py docs/images)
"""

from __future__ import annotations

import sys
import time
from pathlib import Path


def wait_for(app, widget, timeout=300.0):
    start = time.monotonic()
    while widget.worker is not None:
        app.processEvents()
        time.sleep(0.02)
        if time.monotonic() - start > timeout:
            raise TimeoutError(f"{widget.title} did not finish in {timeout} s")
    for _ in range(20):  # let the new layers draw
        app.processEvents()
        time.sleep(0.02)


def main(out: Path) -> None:
    import napari
    from qtpy.QtWidgets import QApplication

    from napari_lowlight import data
    from napari_lowlight.plugin._compare_widget import CompareWidget
    from napari_lowlight.plugin._dequantize_widget import DequantizeWidget
    from napari_lowlight.plugin._enhance_widget import EnhanceWidget
    from napari_lowlight.plugin._laic_widget import LAICWidget
    from napari_lowlight.plugin._simulate_widget import SimulateLowLightWidget

    from napari.settings import get_settings

    # only errors pop up: a deprecation toast would cover the canvas in every screenshot
    get_settings().application.gui_notification_level = "error"
    out.mkdir(parents=True, exist_ok=True)
    app = QApplication.instance() or QApplication([])
    viewer = napari.Viewer(show=True, title="napari-lowlight")
    viewer.window._qt_window.resize(1400, 860)
    shots = []

    def shot(name):
        path = out / f"{name}.png"
        viewer.screenshot(str(path), canvas_only=False, flash=False)
        shots.append(path)
        print(f"wrote {path}")

    # 1. Simulate low light on the photograph
    viewer.add_image(data.coffee(), name="coffee", rgb=True)
    simulate = SimulateLowLightWidget(viewer)
    dock = viewer.window.add_dock_widget(simulate, name="Simulate low light")
    simulate.inverse_k.value = 30
    simulate.run()
    wait_for(app, simulate)
    viewer.layers["dark"].visible = False
    viewer.layers["coffee"].visible = False
    shot("simulate")
    viewer.window.remove_dock_widget(dock)

    # 2. Dequantize the re-exposed image (its quantization is in the layer metadata)
    dequantize = DequantizeWidget(viewer)
    dock = viewer.window.add_dock_widget(dequantize, name="Dequantize")
    dequantize.image.value = viewer.layers["re-exposed"]
    dequantize.device.value = "cpu"
    dequantize.run()
    wait_for(app, dequantize)
    viewer.layers["re-exposed"].visible = False
    viewer.camera.zoom *= 2.5  # zoom in where the banding was
    shot("dequantize")
    viewer.window.remove_dock_widget(dock)

    # 3. LAIC on a real dim image (the bundled Hubble deep field crop)
    viewer.layers.clear()
    viewer.reset_view()
    viewer.add_image(data.deep_field(), name="deep field", rgb=True)
    laic_widget = LAICWidget(viewer)
    dock = viewer.window.add_dock_widget(laic_widget, name="Compensate illumination (LAIC)")
    laic_widget.run()
    wait_for(app, laic_widget)
    shot("laic")
    viewer.window.remove_dock_widget(dock)

    # 4. Compare every method, in grid view
    viewer.layers.clear()
    viewer.add_image(data.dark_coffee().dark, name="dark coffee", rgb=True)
    compare = CompareWidget(viewer)
    dock = viewer.window.add_dock_widget(compare, name="Compare methods")
    compare.run()
    wait_for(app, compare)
    viewer.reset_view()
    shot("compare")
    viewer.window.remove_dock_widget(dock)

    # 5. Enhance a dim 12-bit camera frame (the microscopy sample as a camera would store it
    # dimly: 100 counts of black level plus up to 235 counts of signal, in uint16)
    import numpy as np

    viewer.layers.clear()
    viewer.canvas.grid.enabled = False
    frame = (100 + np.rint(data.cell() / 255.0 * 235)).astype(np.uint16)
    viewer.add_image(frame, name="camera frame (uint16)", contrast_limits=(0, 4095))
    enhance = EnhanceWidget(viewer)
    dock = viewer.window.add_dock_widget(enhance, name="Enhance (LAIC + dequantizer)")
    enhance.preset.value = "microscope-12bit"
    enhance.black_level.value = 100
    enhance.device.value = "cpu"
    enhance.run()
    wait_for(app, enhance)
    viewer.layers["camera frame (uint16)"].visible = False
    viewer.reset_view()
    shot("enhance")
    viewer.close()
    print(f"{len(shots)} screenshots in {out}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("docs/images"))
