"""Running core functions off the GUI thread, with progress, cancel and notifications."""

from __future__ import annotations

from collections.abc import Callable

from napari.qt.threading import create_worker
from napari.utils.notifications import show_error

__all__ = ["start_job"]


def start_job(
    func: Callable,
    *args,
    description: str,
    on_returned: Callable,
    on_finished: Callable | None = None,
    **kwargs,
):
    """Run ``func(*args, **kwargs)`` in a napari thread worker and return the started worker.

    The activity dock shows a progress bar named ``description`` while it runs.
    ``on_returned(result)`` runs on the GUI thread; an exception in ``func`` (or
    in ``on_returned``) becomes an error notification, never a traceback.
    ``worker.quit()`` cancels: the result is then dropped and nothing is added.
    """
    worker = create_worker(func, *args, _progress={"desc": description}, **kwargs)

    def returned(result):
        try:
            on_returned(result)
        except Exception as exc:  # noqa: BLE001 - any failure must reach the user, not crash
            show_error(f"{description} failed: {exc}")

    worker.returned.connect(returned)
    worker.errored.connect(lambda exc: show_error(f"{description} failed: {exc}"))
    if on_finished is not None:
        worker.finished.connect(on_finished)
    worker.start()
    return worker
