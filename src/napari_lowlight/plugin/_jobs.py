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
    on_error: Callable[[str], None] | None = None,
    **kwargs,
):
    """Run ``func(*args, **kwargs)`` in a napari thread worker and return the started worker.

    The activity dock shows a progress bar named ``description`` while it runs.
    ``on_returned(result)`` runs on the GUI thread; an exception in ``func`` (or
    in ``on_returned``) becomes an error notification, never a traceback.
    ``worker.quit()`` cancels: the result is then dropped and nothing is added.
    ``on_error(message)`` also receives the full message (a widget's status line shows it:
    napari's notification toast cuts long messages).
    """

    def returned(result):
        try:
            on_returned(result)
        except Exception as exc:  # noqa: BLE001 - any failure must reach the user, not crash
            report(f"{description} failed: {exc}")

    def errored(exc):
        if isinstance(exc, JobCancelled):
            return  # the user asked for it: nothing to report, nothing added
        report(f"{description} failed: {exc}")

    def report(message: str):
        show_error(message)
        if on_error is not None:
            on_error(message)

    # Passing "errored" here keeps napari from also re-raising the exception
    # in the GUI thread (a traceback in the console).
    worker = create_worker(
        func, *args, _progress={"desc": description},
        _connect={"returned": returned, "errored": errored}, _start_thread=False, **kwargs,
    )
    if on_finished is not None:
        worker.finished.connect(on_finished)
    _keep_thread_pool_headroom()
    worker.start()
    return worker


def _keep_thread_pool_headroom() -> None:
    """Leave Qt's global thread pool free threads besides the running jobs.

    Workers run in ``QThreadPool.globalInstance()``, whose size is the number of
    cores (2 here).  Qt itself uses that pool from the GUI thread (scaling the
    activity dock's spinner image) and waits for it while holding Python's GIL; with
    every pool thread busy in a job that needs the GIL, the viewer froze for good
    (seen with two jobs at once on a 2-core machine).  Growing the pool keeps room.
    """
    from qtpy.QtCore import QThread, QThreadPool

    pool = QThreadPool.globalInstance()
    needed = pool.activeThreadCount() + 1 + max(2, QThread.idealThreadCount())
    if pool.maxThreadCount() < needed:
        pool.setMaxThreadCount(needed)
