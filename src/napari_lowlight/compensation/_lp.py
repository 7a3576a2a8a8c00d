"""The LAIC linear program for a gain that is constant on the regions of a partition.

With ``labels`` giving each pixel a region, the gain is ``g = h[labels]`` and
the LP is in the region gains ``h``.  Every pixel-level constraint is kept
exactly, so a solution is feasible for the full problem:

- **TV** of a piecewise-constant gain is ``sum_pairs w_ab |h_a - h_b|`` with
  ``w_ab`` the number of pixel edges between regions a and b (one auxiliary
  variable per adjacent pair);
- **contrast** is linear: region cost = sum of the pixels' costs;
- **0 <= Jt <= 1** is a bound: ``h_r <= min over r of 1 / Ja``;
- **rank constraints** ``s_i (Jt_i - mean(Jt)_i) >= 0`` hold by themselves for
  pixels whose window lies in one region (a constant gain scales both sides);
  windows over two regions give a homogeneous constraint in two gains, i.e. a
  bound on their ratio, and only the tightest bound per pair is kept; windows
  over three or more regions are kept as rows.

With every pixel its own region this *is* the exact LP of Eq. 19-23.
"""

from __future__ import annotations

import time

import numpy as np
import scipy.ndimage as ndi
import scipy.sparse as sp

from ._problem import LocalContrast

__all__ = ["LAICSolverError", "adjacent_pairs", "region_extreme", "solve_partition"]


class LAICSolverError(RuntimeError):
    """HiGHS did not reach an optimum (time limit, numerical trouble)."""


def adjacent_pairs(labels: np.ndarray, n_regions: int):
    """Unordered pairs of 4-adjacent regions and the number of pixel edges between them.

    Parameters
    ----------
    labels : ndarray of int, 2-D
        Each pixel's region, in ``0..n_regions - 1``.
    n_regions : int
        The number of regions (larger than every label).

    Returns
    -------
    first, second : ndarray of int64
        The pairs' regions, ``first < second``, each pair once.
    edges : ndarray of float64
        The number of pixel edges between the two regions of each pair (the TV
        weight ``w_ab`` of the module doc).
    """
    keys = []
    for a, b in ((labels[:, :-1], labels[:, 1:]), (labels[:-1, :], labels[1:, :])):
        differ = a != b
        lo = np.minimum(a[differ], b[differ]).astype(np.int64)
        hi = np.maximum(a[differ], b[differ]).astype(np.int64)
        keys.append(lo * n_regions + hi)
    keys = np.concatenate(keys)
    pairs, weights = np.unique(keys, return_counts=True)
    return pairs // n_regions, pairs % n_regions, weights.astype(np.float64)


def _rank_constraints(problem: LocalContrast, labels: np.ndarray, n_regions: int):
    """Rank constraints of every non-tie pixel whose window spans several regions.

    Returns ``(pairs, multi)``: ``pairs = (r1, r2, a1, a2)`` for windows over two
    regions (``a1 h_r1 + a2 h_r2 >= 0``), and a CSR matrix ``multi`` with one row
    per window over three or more regions (``row @ h >= 0``).
    """
    rad = problem.radius
    size = 2 * rad + 1
    n_rows_img, n_cols_img = labels.shape
    lowest = ndi.minimum_filter(labels, size, mode="nearest")
    highest = ndi.maximum_filter(labels, size, mode="nearest")
    straddle = lowest != highest
    offsets = [(dy, dx) for dy in range(-rad, rad + 1) for dx in range(-rad, rad + 1)]
    pair_parts, multi_r, multi_c, multi_v = [], [], [], []
    n_multi = 0
    for plane, signs in zip(problem.luminance, problem.signs):
        ys, xs = np.nonzero(straddle & (signs != 0))
        if ys.size == 0:
            continue
        s = signs[ys, xs].astype(np.float64)
        counts = problem.counts[ys, xs]
        own = labels[ys, xs]
        lo, hi = lowest[ys, xs], highest[ys, xs]
        other = np.where(own == lo, hi, lo)
        third = (own != lo) & (own != hi)  # own region strictly between: 3+ regions
        other_sum = np.zeros(ys.size)
        for dy, dx in offsets:
            yy, xx = ys + dy, xs + dx
            inside = (yy >= 0) & (yy < n_rows_img) & (xx >= 0) & (xx < n_cols_img)
            yy, xx = np.where(inside, yy, 0), np.where(inside, xx, 0)
            lab = labels[yy, xx]
            third |= inside & (lab != own) & (lab != other)
            other_sum += np.where(inside & (lab == other), plane[yy, xx], 0.0)
        two = ~third
        # Own region's share of the window is the whole window minus the other's.
        own_sum = _window_sum(plane, ys[two], xs[two], rad) - other_sum[two]
        a_own = s[two] * (plane[ys[two], xs[two]] - own_sum / counts[two])
        a_other = -s[two] * other_sum[two] / counts[two]
        pair_parts.append((own[two], other[two], a_own, a_other))
        # Windows over 3+ regions: full rows (few: they sit at region corners).
        ym, xm, sm, cm = ys[third], xs[third], s[third], counts[third]
        if ym.size:
            row_ids = n_multi + np.arange(ym.size)
            n_multi += ym.size
            multi_r.append(row_ids)
            multi_c.append(labels[ym, xm])
            multi_v.append(sm * plane[ym, xm])
            for dy, dx in offsets:
                yy, xx = ym + dy, xm + dx
                inside = (yy >= 0) & (yy < n_rows_img) & (xx >= 0) & (xx < n_cols_img)
                multi_r.append(row_ids[inside])
                multi_c.append(labels[yy[inside], xx[inside]])
                multi_v.append(-sm[inside] / cm[inside] * plane[yy[inside], xx[inside]])
    if pair_parts:
        r1, r2, a1, a2 = (np.concatenate(part) for part in zip(*pair_parts))
    else:
        r1 = r2 = np.empty(0, np.int64)
        a1 = a2 = np.empty(0)
    if n_multi:
        multi = sp.csr_matrix(
            (np.concatenate(multi_v), (np.concatenate(multi_r), np.concatenate(multi_c))),
            shape=(n_multi, n_regions),
        )  # duplicates (several pixels of one region in a window) are summed
    else:
        multi = sp.csr_matrix((0, n_regions))
    return (r1, r2, a1, a2), multi


def _window_sum(plane, ys, xs, rad):
    """Sum of ``plane`` over the clipped windows centred on (ys, xs), via a summed-area table."""
    # Not _backend.box_sum: that filters the whole plane and differs from this in the last
    # bits (about 1e-13), which moves the fast method's gains by as much; it is checked to
    # agree within rounding (tests/test_laic.py), and kept so that results do not change.
    table = np.zeros((plane.shape[0] + 1, plane.shape[1] + 1))
    table[1:, 1:] = plane.cumsum(axis=0).cumsum(axis=1)
    y0 = np.maximum(ys - rad, 0)
    y1 = np.minimum(ys + rad + 1, plane.shape[0])
    x0 = np.maximum(xs - rad, 0)
    x1 = np.minimum(xs + rad + 1, plane.shape[1])
    return table[y1, x1] - table[y0, x1] - table[y1, x0] + table[y0, x0]


def _ratio_bounds(r1, r2, a1, a2, n_regions):
    """Tightest bounds ``L <= h_a / h_b <= U`` per region pair from two-region constraints."""
    # Order each pair (a < b) so both constraints on one pair meet under one key.
    swap = r1 > r2
    ra, rb = np.where(swap, r2, r1), np.where(swap, r1, r2)
    ca, cb = np.where(swap, a2, a1), np.where(swap, a1, a2)
    # ca h_a + cb h_b >= 0 with gains > 0 bounds h_a / h_b when the signs differ.
    keys = ra.astype(np.int64) * n_regions + rb
    out = []
    for mask, ratio, reduce, start in (
        ((ca > 0) & (cb < 0), -cb / np.where(ca == 0, 1, ca), np.maximum, -np.inf),
        ((ca < 0) & (cb > 0), cb / np.where(ca == 0, 1, -ca), np.minimum, np.inf),
    ):
        if not np.any(mask):
            out.append((np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0)))
            continue
        uniq, inverse = np.unique(keys[mask], return_inverse=True)
        best = np.full(uniq.size, start)
        reduce.at(best, inverse, ratio[mask])
        out.append((uniq // n_regions, uniq % n_regions, best))
    return out[0], out[1]


def region_extreme(values: np.ndarray, labels: np.ndarray, n_regions: int, reduce) -> np.ndarray:
    """The smallest or largest of ``values`` over each region.

    Parameters
    ----------
    values : ndarray
        A value per pixel, of ``labels``' shape.
    labels : ndarray of int
        Each pixel's region, in ``0..n_regions - 1``.
    n_regions : int
        The number of regions.
    reduce : {numpy.minimum, numpy.maximum}
        Which extreme.

    Returns
    -------
    ndarray of float64, shape (n_regions,)
        Per region, the extreme of its pixels' values; a region without pixels gets
        ``+inf`` for the minimum, ``-inf`` for the maximum.
    """
    out = np.full(n_regions, np.inf if reduce is np.minimum else -np.inf)
    reduce.at(out, labels.ravel(), values.ravel())
    return out


_HIGHS_BANNER_SHOWN = False


def _new_highs(highspy):
    """A Highs object; the first one of the process prints a banner on the C-level stdout,
    which a library must not do, so that one is created with file descriptor 1 muted."""
    global _HIGHS_BANNER_SHOWN
    if _HIGHS_BANNER_SHOWN:
        return highspy.Highs()
    _HIGHS_BANNER_SHOWN = True
    import os
    import sys

    try:
        sys.stdout.flush()
        saved = os.dup(1)
    except (OSError, ValueError):  # no real stdout (embedded interpreters): nothing to mute
        return highspy.Highs()
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 1)
            model = highspy.Highs()
    finally:
        os.dup2(saved, 1)
        os.close(saved)
    return model


class _Highs:
    """A HiGHS model kept between cutting-plane rounds (so re-solves start from its basis)."""

    def __init__(self, cost, bounds, *, solver):
        import highspy

        self._highspy = highspy
        self.model = _new_highs(highspy)
        self.model.setOptionValue("output_flag", False)
        self.model.setOptionValue("solver", "ipm" if solver == "ipm" else "simplex")
        self.model.setOptionValue("primal_feasibility_tolerance", 1e-10)
        n = cost.size
        upper = np.where(np.isfinite(bounds[:, 1]), bounds[:, 1], highspy.kHighsInf)
        self.model.addVars(n, bounds[:, 0].astype(np.float64), upper.astype(np.float64))
        self.model.changeColsCost(n, np.arange(n, dtype=np.int32), cost.astype(np.float64))
        self.n_rows = 0

    def add_rows(self, matrix: sp.csr_matrix):
        """Add rows ``matrix @ x <= 0``."""
        if matrix.shape[0] == 0:
            return
        matrix = matrix.tocsr()
        m = matrix.shape[0]
        self.model.addRows(
            m, np.full(m, -self._highspy.kHighsInf), np.zeros(m), matrix.nnz,
            matrix.indptr[:-1].astype(np.int32), matrix.indices.astype(np.int32),
            matrix.data.astype(np.float64),
        )
        self.n_rows += m

    def solve(self, time_left: float, started: float, n_regions: int) -> np.ndarray:
        self.model.setOptionValue("time_limit", max(float(time_left), 0.1))
        self.model.run()
        status = self.model.getModelStatus()
        if status != self._highspy.HighsModelStatus.kOptimal:
            seconds = time.perf_counter() - started
            raise LAICSolverError(
                f"HiGHS stopped without an optimum after {seconds:.1f} s "
                f"({self.model.modelStatusToString(status)}); the LP had {n_regions} gain "
                f"variables and {self.n_rows} rows"
            )
        # after the first solve, warm-started dual simplex is the fastest re-solve
        self.model.setOptionValue("solver", "simplex")
        return np.asarray(self.model.getSolution().col_value)


def solve_partition(
    problem: LocalContrast,
    labels: np.ndarray,
    *,
    time_limit: float = 60.0,
    solver: str = "ds",
    lazy: bool = True,
):
    """Solve the LAIC LP with the gain constant on each region of ``labels``.

    Parameters
    ----------
    problem : LocalContrast
    labels : ndarray of int, shape (rows, cols)
        Region of every pixel, 0 .. n_regions - 1, every id used.
    time_limit : float
        Seconds HiGHS may spend.
    solver : {"ds", "ipm"}
        The first solve by HiGHS's dual simplex (the default: measured faster on the
        exact per-pixel LP and on the fast method's region LPs,
        benchmarks/bench_laic_solver.py) or its interior-point method with crossover.
    lazy : bool
        Add the rows of windows over three or more regions only when the
        solution violates them (cutting planes; the same optimum, since the LP
        is re-solved until no row is violated).  Most of them sit at region
        corners where gains agree, so few are ever needed.

    Returns
    -------
    gains : ndarray of float64, (n_regions,)
        Region gains, within their bounds.
    info : dict
        ``regions``, ``rows`` (of the last LP), ``columns``, ``rounds`` (LP solves),
        ``seconds``, ``status``.

    Raises
    ------
    LAICSolverError
        If HiGHS stops without an optimum.
    """
    start = time.perf_counter()
    labels = np.asarray(labels, dtype=np.int64)
    n_regions = int(labels.max()) + 1
    cost = np.bincount(labels.ravel(), weights=problem.cost.ravel(), minlength=n_regions)
    upper = region_extreme(problem.upper, labels, n_regions, np.minimum)
    upper = np.maximum(upper, problem.min_gain)  # Ja <= 1 makes this a no-op; guards rounding

    pa, pb, weights = adjacent_pairs(labels, n_regions)
    n_pairs = pa.size
    pairs, multi = _rank_constraints(problem, labels, n_regions)
    base = _base_rows(pa, pb, _ratio_bounds(*pairs, n_regions), n_regions)
    c = np.concatenate([cost, weights])
    bounds = np.column_stack(
        [np.concatenate([np.full(n_regions, problem.min_gain), np.zeros(n_pairs)]),
         np.concatenate([upper, np.full(n_pairs, np.inf)])]
    )
    highs = _Highs(c, bounds, solver=solver)
    highs.add_rows(base)
    x, rounds = _solve_with_cuts(highs, multi, n_pairs, lazy=lazy, time_limit=time_limit,
                                 start=start)
    seconds = time.perf_counter() - start
    n_rows = highs.n_rows
    gains = np.clip(x[:n_regions], problem.min_gain, upper)
    info = {"regions": n_regions, "rows": int(n_rows), "columns": int(c.size),
            "rounds": rounds, "seconds": seconds, "status": "optimal"}
    return gains, info


def _base_rows(pa, pb, ratio_bounds, n_regions: int) -> sp.csr_matrix:
    """The rows ``row @ x <= 0`` over ``x = (h, t)`` every LP has: TV and ratio bounds."""
    (la, lb, low), (ua, ub, high) = ratio_bounds
    n_pairs = pa.size
    pair_ids = np.arange(n_pairs)
    blocks = []
    # TV: +-(h_a - h_b) - t_ab <= 0
    for sign in (1.0, -1.0):
        blocks.append(
            sp.csr_matrix(
                (
                    np.concatenate([np.full(n_pairs, sign), np.full(n_pairs, -sign),
                                    np.full(n_pairs, -1.0)]),
                    (np.tile(pair_ids, 3), np.concatenate([pa, pb, n_regions + pair_ids])),
                ),
                shape=(n_pairs, n_regions + n_pairs),
            )
        )
    # ratio bounds: -h_a + L h_b <= 0 and h_a - U h_b <= 0
    for a, b, ratio, sign in ((la, lb, low, -1.0), (ua, ub, high, 1.0)):
        if a.size:
            ids = np.arange(a.size)
            blocks.append(
                sp.csr_matrix(
                    (np.concatenate([np.full(a.size, sign), -sign * ratio]),
                     (np.tile(ids, 2), np.concatenate([a, b]))),
                    shape=(a.size, n_regions + n_pairs),
                )
            )
    return sp.vstack(blocks, format="csr") if blocks else sp.csr_matrix((0, n_regions + n_pairs))


def _solve_with_cuts(highs: _Highs, multi: sp.csr_matrix, n_pairs: int, *, lazy: bool,
                     time_limit: float, start: float):
    """Solve, adding the violated rows ``multi @ h >= 0`` until none is: ``(x, rounds)``."""
    n_regions = multi.shape[1]
    multi_rows = sp.hstack([-multi, sp.csr_matrix((multi.shape[0], n_pairs))], format="csr")
    active = np.zeros(multi.shape[0], dtype=bool) if lazy else np.ones(multi.shape[0], bool)
    highs.add_rows(multi_rows[active])
    rounds = 0
    while True:
        rounds += 1
        x = highs.solve(time_limit - (time.perf_counter() - start), start, n_regions)
        if active.all():
            break
        violated = (multi @ x[:n_regions] < -1e-12) & ~active
        if not violated.any():
            break
        # Cutting planes: HiGHS re-solves from the last basis with dual simplex.
        highs.add_rows(multi_rows[violated])
        active |= violated
    return x, rounds
