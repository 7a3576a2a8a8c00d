"""Running core functions off the GUI thread, with progress, cancel and notifications."""

from __future__ import annotations

from collections.abc import Callable

from napari.qt.threading import create_worker
from napari.utils.notifications import show_error

__all__ = ["JobCancelled", "start_job"]


class JobCancelled(Exception):
    """Raised inside a job's progress report when the user pressed Cancel."""


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

    def returned(result):
        try:
            on_returned(result)
        except Exception as exc:  # noqa: BLE001 - any failure must reach the user, not crash
            show_error(f"{description} failed: {exc}")

    def errored(exc):
        if isinstance(exc, JobCancelled):
            return  # the user asked for it: nothing to report, nothing added
        show_error(f"{description} failed: {exc}")

    # Passing "errored" here keeps napari from also re-raising the exception
    # in the GUI thread (a traceback in the console).
    worker = create_worker(
        func, *args, _progress={"desc": description},
        _connect={"returned": returned, "errored": errored}, _start_thread=False, **kwargs,
    )
    if on_finished is not None:
        worker.finished.connect(on_finished)
    worker.start()
    return worker
