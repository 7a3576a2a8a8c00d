"""The one halo rule for local steps on dask arrays (``_lazy.overlap_layout``)."""

import numpy as np
import pytest

da = pytest.importorskip("dask.array")

from napari_lowlight import degrade  # noqa: E402
from napari_lowlight._lazy import overlap_layout  # noqa: E402
from napari_lowlight.dequantizer import smooth_project  # noqa: E402


def test_chunks_sit_on_the_grid_and_hold_the_halo():
    image = da.zeros((1000, 900, 3), chunks=(100, 77, 3))
    out, depth = overlap_layout(image, {0: 37, 1: 37}, multiple=32, min_chunk=256)
    assert depth == {0: 64, 1: 64, 2: 0}  # the reach rounded up to the grid
    for axis in (0, 1):
        chunks = out.chunks[axis]
        assert sum(chunks) == image.shape[axis]
        assert all(c % 32 == 0 for c in chunks[:-1])  # blocks start on the grid
        assert min(chunks) >= depth[axis]
    assert out.chunks[2] == (3,)


def test_short_axes_become_one_chunk_and_good_chunks_stay():
    image = da.zeros((300, 40), chunks=(50, 10))
    out, depth = overlap_layout(image, {0: 5, 1: 5}, min_chunk=64)
    # axis 0: chunks already hold the halo, so they stay; axis 1: shorter than two chunks
    assert out.chunks == ((50,) * 6, (40,)) and depth == {0: 5, 1: 0}
    untouched, depth = overlap_layout(image, {0: 0})
    assert untouched is image and depth == {0: 0, 1: 0}


def test_lazy_smoothing_equals_the_in_memory_one_whatever_the_chunks():
    rng = np.random.default_rng(0)
    scene = rng.random((160, 150))
    capture = degrade(scene, k=1 / 8, sigma=0.0, bits=8)
    expected = smooth_project(capture.reexposed, capture.quantization, sigma=2.0)
    for chunks in ((7, 9), (40, 150), (160, 13)):
        lazy = smooth_project(da.from_array(capture.reexposed, chunks=chunks),
                              capture.quantization, sigma=2.0)
        np.testing.assert_array_equal(np.asarray(lazy), expected)
