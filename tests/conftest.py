import numpy as np
import pytest


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


@pytest.fixture
def smooth_rgb(rng):
    """A smooth 64x80 RGB float image in [0, 1] (gradients, where banding appears)."""
    yy, xx = np.mgrid[0:64, 0:80] / 80.0
    channels = [0.5 + 0.45 * np.sin(2.0 * xx + c) * np.cos(1.5 * yy - c) for c in (0.0, 1.0, 2.0)]
    return np.stack(channels, axis=-1)


@pytest.fixture
def errors():
    """Messages shown to the user as napari error notifications (napari tests only)."""
    from napari.utils.notifications import NotificationSeverity, notification_manager

    shown = []

    def record(notification):
        if notification.severity >= NotificationSeverity.ERROR:
            shown.append(notification.message)

    notification_manager.notification_ready.connect(record)
    yield shown
    notification_manager.notification_ready.disconnect(record)


try:  # property-based fuzzing profiles (tests/test_fuzz.py); `make fuzz` runs "fuzz"
    import os

    from hypothesis import settings

    settings.register_profile("ci", max_examples=40, derandomize=True)
    settings.register_profile("fuzz", max_examples=1000)
    settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
except ImportError:  # hypothesis is a test extra; the other tests run without it
    pass
