"""Every value field of every dock widget explains itself in a tooltip."""

import pytest

pytest.importorskip("napari")  # the core tests run without the napari extra

from magicgui.widgets import Label, ProgressBar, PushButton  # noqa: E402
from magicgui.widgets.bases import ValueWidget  # noqa: E402

from napari_lowlight.plugin._compare_widget import CompareWidget  # noqa: E402
from napari_lowlight.plugin._dequantize_widget import DequantizeWidget  # noqa: E402
from napari_lowlight.plugin._enhance_widget import EnhanceWidget  # noqa: E402
from napari_lowlight.plugin._laic_widget import LAICWidget  # noqa: E402
from napari_lowlight.plugin._simulate_widget import SimulateLowLightWidget  # noqa: E402

WIDGETS = [SimulateLowLightWidget, LAICWidget, DequantizeWidget, EnhanceWidget, CompareWidget]


def value_fields(container):
    """The widgets a user sets: no buttons, labels or progress bars."""
    return [w for w in container
            if isinstance(w, ValueWidget) and not isinstance(w, (PushButton, Label, ProgressBar))]


@pytest.mark.parametrize("widget_class", WIDGETS, ids=lambda c: c.__name__)
def test_every_field_has_a_tooltip(make_napari_viewer, widget_class):
    viewer = make_napari_viewer()
    widget = widget_class(viewer)
    fields = value_fields(widget)
    assert len(fields) >= 2
    missing = [w.label or w.name or type(w).__name__ for w in fields
               if not (w.tooltip or "").strip()]
    assert missing == [], f"{widget_class.__name__}: fields without a tooltip: {missing}"
