"""What the napari hub and the Plugins menu show: the manifest's icon and the hub files."""

from importlib.resources import files
from pathlib import Path

import numpy as np
import yaml
from PIL import Image

REPO = Path(__file__).resolve().parent.parent


def test_manifest_icon_is_a_square_png_shipped_in_the_package():
    manifest = yaml.safe_load(files("napari_lowlight.plugin").joinpath("napari.yaml").read_text())
    package, _, resource = manifest["icon"].partition(":")
    icon = files(package).joinpath(resource)
    assert icon.is_file(), f"{manifest['icon']} is not in the installed package"
    with Image.open(icon) as image:
        assert image.format == "PNG" and image.size[0] == image.size[1] >= 128
        pixels = np.asarray(image.convert("RGBA"))
    assert pixels[..., :3].std() > 20  # a picture, not a flat square
    # package data must list it, or a wheel would lose it
    assert "plugin/icon.png" in (REPO / "pyproject.toml").read_text()


def test_hub_files_are_complete():
    config = yaml.safe_load((REPO / ".napari-hub" / "config.yml").read_text())
    assert config["summary"] and config["project_urls"]
    description = (REPO / ".napari-hub" / "description.md").read_text()
    assert len(description) > 500 and "](" in description
    for link in description.split("](")[1:]:
        target = link.split(")")[0]
        # the hub shows the file outside the repository: every link must be absolute
        assert target.startswith(("http://", "https://", "#")), target
