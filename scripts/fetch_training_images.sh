#!/usr/bin/env bash
# Fetch the Debian wallpaper packages used as extra dequantizer training images, unpack
# them under data/wallpapers/ (ignored by git) and record the exact package versions.
# Uses only Debian's package registry (apt-get download); needs no root for the download
# itself, but `apt-get update` may need it the first time.
set -euo pipefail
cd "$(dirname "$0")/.."
DEST=${1:-data/wallpapers}
PACKAGES=(mate-backgrounds ukui-wallpapers gnome-backgrounds lxqt-themes palapeli-data)
mkdir -p "$DEST/debs"
if [ "$(id -u)" = 0 ]; then apt-get update -qq; fi
( cd "$DEST/debs" && apt-get download "${PACKAGES[@]}" )
: > "$DEST/VERSIONS.txt"
for deb in "$DEST"/debs/*.deb; do
    dpkg-deb -x "$deb" "$DEST/unpacked"
    dpkg-deb -f "$deb" Package Version >> "$DEST/VERSIONS.txt"
done
find "$DEST/unpacked" -type f \( -iname '*.png' -o -iname '*.jpg' -o -iname '*.jpeg' \) \
    | wc -l | xargs echo "images:" >> "$DEST/VERSIONS.txt"
cat "$DEST/VERSIONS.txt"
echo "train with: napari-lowlight train --data $DEST/unpacked --test-set --out RUN ..."
