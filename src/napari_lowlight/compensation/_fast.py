"""The fast LAIC method: a multilevel piecewise-constant gain.

The gain starts constant on square blocks; the block LP (``_lp.solve_partition``)
is solved, then the blocks where the solution is still too coarse are split in
four and the LP is solved again, until blocks are single pixels, no block asks
to be split, or the region budget is spent.  A block asks to be split when

- its gain differs from a neighbour's (the boundary of a gain step is only
  known to within a block), or
- its gain sits on its upper bound ``1 / max(Ja)`` (one bright pixel caps the
  whole block; split, the rest of the block may take more gain).

Every level keeps every pixel-level constraint exactly, so each level's result
is feasible, and each level's objective is at most the previous one's (a finer
partition contains the coarser gain).  The cost of a level is linear in the
pixels near region boundaries plus an LP whose size the budget bounds.
"""

from __future__ import annotations

import time

import numpy as np

from ._lp import LAICSolverError, adjacent_pairs, region_extreme, solve_partition
from ._problem import LocalContrast

__all__ = ["solve_fast"]


#: A sub-block is split off when |its summed contrast cost| exceeds this times its perimeter.
REFINE_RATIO = 0.25


def _block_labels(shape, block: int) -> np.ndarray:
    """Each pixel's square block of side ``block``, numbered row by row."""
    rows, cols = shape
    per_row = -(-cols // block)
    return (np.arange(rows)[:, None] // block) * per_row + (np.arange(cols)[None, :] // block)


#: HiGHS's method for each level's first solve ("ds": dual simplex, or "ipm": interior point
#: with crossover); re-solves after cutting planes are warm-started dual simplex either way.
#: Dual simplex measured 1.0-6.1x faster, 2.8x over all cases (levels of 1,024-9,420
#: regions; highspy 1.16, 2-core CPU): benchmarks/bench_laic_solver.py, docs/laic.md.
LEVEL_SOLVER = "ds"


def solve_fast(
    problem: LocalContrast,
    *,
    initial_block: int | None = None,
    max_regions: int = 20_000,
    time_limit: float = 60.0,
    progress=None,
    prioritise: bool = False,
):
    """Multilevel solve; returns ``(gain map, info)``.

    Parameters
    ----------
    problem : LocalContrast
    initial_block : int, optional
        Side of the first blocks, pixels; by default about 1/32 of the image side,
        at least the window size.
    max_regions : int
        Stop refining when the next level would have more regions than this.
    time_limit : float
        Seconds for the whole solve; refinement stops when the next level would
        probably not fit (the coarser, feasible result is kept).
    progress : callable, optional
        Called as ``progress(level, info)`` after each level.
    prioritise : bool
        When the next level would exceed ``max_regions``, split the marked regions in
        order of priority (held down by a bright pixel, then the largest gain step to a
        neighbour) while they fit, instead of stopping.
    """
    start = time.perf_counter()
    rows, cols = problem.shape
    if initial_block is None:
        initial_block = max(2 * problem.radius + 1, int(np.ceil(max(rows, cols) / 32)))
    block = int(initial_block)
    labels = _block_labels((rows, cols), block)
    levels = []
    gains = None
    solved_labels = labels  # the partition the current gains belong to
    while True:
        remaining = time_limit - (time.perf_counter() - start)
        try:
            new_gains, info = solve_partition(problem, labels, time_limit=max(remaining, 1.0),
                                              solver=LEVEL_SOLVER)
        except LAICSolverError as exc:
            if gains is None:
                raise
            # A finer level that does not finish in time: keep the last feasible level.
            levels.append({"block": block, "status": f"stopped: {exc}"})
            break
        gains, solved_labels = new_gains, labels
        info = {**info, "block": block}
        levels.append(info)
        if progress is not None:
            progress(len(levels), info)
        if block == 1:
            break
        block = max(1, block // 2)
        sub = _block_labels((rows, cols), block)  # the next level's blocks
        marked = _regions_to_split(problem, labels, gains, sub, block=block,
                                   max_regions=max_regions, prioritise=prioritise)
        if not marked.any():
            break
        elapsed = time.perf_counter() - start
        # each level costs at least as much as the last; stop before the budget runs out
        if elapsed + 2 * info["seconds"] > time_limit:
            break
        key = np.where(marked[labels], gains.size + sub, labels)
        _, labels = np.unique(key, return_inverse=True)
        labels = labels.reshape(rows, cols)
    gain = gains[solved_labels]
    return gain, {"levels": levels, "regions": int(gains.size),
                  "seconds": time.perf_counter() - start}


def _regions_to_split(problem: LocalContrast, labels, gains, sub, *, block: int,
                      max_regions: int, prioritise: bool) -> np.ndarray:
    """Which regions the next level splits into their sub-blocks ``sub`` (none: stop)."""
    n_regions = gains.size
    marked, priority, capped, sizes = _marked_by_gain(problem, labels, gains,
                                                      prioritise=prioritise)
    # A sub-block whose pixels together reward a gain change more than the
    # total variation its boundary would cost is worth solving for on its own.
    sub_key = labels * (sub.max() + 1) + sub
    sub_ids, sub_inverse = np.unique(sub_key, return_inverse=True)
    sub_cost = np.bincount(sub_inverse.ravel(), weights=problem.cost.ravel())
    sub_size = np.bincount(sub_inverse.ravel())
    sub_region = sub_ids // (sub.max() + 1)
    promising = np.abs(sub_cost) > REFINE_RATIO * 4 * np.sqrt(sub_size)
    promising &= sizes[sub_region] > sub_size  # the region really splits
    marked[sub_region[promising]] = True
    if not marked.any():
        return marked
    # regions each marked region adds when split into its sub-blocks
    added = np.bincount(sub_region, minlength=n_regions) - 1
    if not prioritise:
        # the original rule: an estimate of the next level's regions from the marked
        # pixels (kept so that results without prioritising do not change)
        n_marked_pixels = int(np.count_nonzero(marked[labels]))
        if n_regions + n_marked_pixels // (block * block) > max_regions:
            return np.zeros(n_regions, dtype=bool)
    elif n_regions + int(added[marked].sum()) > max_regions:
        # Over budget: split the marked regions in order (capped ones, then the
        # largest steps) while they fit, instead of stopping the refinement everywhere.
        order = np.flatnonzero(marked)
        order = order[np.lexsort((~capped[order], -priority[order]))]
        fits = n_regions + np.cumsum(added[order]) <= max_regions
        marked = np.zeros(n_regions, dtype=bool)
        marked[order[fits]] = True
    return marked


def _marked_by_gain(problem: LocalContrast, labels, gains, *, prioritise: bool):
    """Regions a gain step or a bright pixel marks: ``(marked, priority, capped, sizes)``."""
    n_regions = gains.size
    pa, pb, _ = adjacent_pairs(labels, n_regions)
    scale = max(float(gains.max()), 1e-12)
    # A region's priority is its largest relative gain step to a neighbour: where a
    # bright object's capped gain meets a lifted background, a coarse block carries
    # the object's gain into the background (a dark ring), so those are split first.
    step = np.abs(gains[pa] - gains[pb])
    priority = np.zeros(n_regions)
    np.maximum.at(priority, pa, step / scale)
    np.maximum.at(priority, pb, step / scale)
    jump = step > 1e-6 * scale
    marked = np.zeros(n_regions, dtype=bool)
    marked[pa[jump]] = True
    marked[pb[jump]] = True
    upper = region_extreme(problem.upper, labels, n_regions, np.minimum)
    sizes = np.bincount(labels.ravel(), minlength=n_regions)
    # held down by its brightest pixel (not by the max_gain ceiling, which splitting
    # cannot lift): split, the rest of the block may take more gain
    capped = (gains >= upper * (1 - 1e-9)) & (sizes > 1)
    if prioritise:
        # a block at the max_gain ceiling is not held down by a bright pixel: splitting
        # cannot lift it, so it does not spend the budget (without prioritising, the
        # original marking rule is kept: same results and time as before)
        capped &= upper < problem.max_gain * (1 - 1e-9)
    marked |= capped
    return marked, priority, capped, sizes
