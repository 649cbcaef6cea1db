"""Write the free sample photos that scikit-image, scikit-learn and matplotlib carry inside their wheels.

Issue #6: every student so far over-corrects photos it has not seen, most on small frames, and its
training sees only 20 photos. These libraries ship 15 more scenes offline (384 to 1,411 px wide,
rendered as 512x288 frames), with their licences in their docstrings or READMEs: CC0 or public domain,
except scikit-learn's china.jpg and flower.jpg (CC BY 2.0, Flickr users danielbuechele and vultilion).
They are training material only: no photo is shipped. The weights bundled since 2026-12-07 learned from
them (their credits are in docs/MODEL_CARD.md; docs/results.md, "More scenes" and "A strength per frame
size"). Grey images are written as RGB with equal channels.

    .venv/bin/pip install scikit-image==0.26.0 scikit-learn==1.9.1   # not a project dependency
    .venv/bin/python scripts/extra_photos.py data/extra-photos
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image

SKIMAGE = ("astronaut", "brick", "camera", "chelsea", "coffee", "coins", "grass", "gravel", "hubble_deep_field",
           "immunohistochemistry", "retina", "rocket")


def photos() -> dict[str, np.ndarray]:
    """Name -> uint8 RGB array of every photo, in a fixed order (their rendering seeds follow it)."""
    import matplotlib.cbook
    import skimage.data
    from sklearn.datasets import load_sample_images

    out: dict[str, np.ndarray] = {name: getattr(skimage.data, name)() for name in SKIMAGE}
    samples = load_sample_images()
    for path, image in zip(samples.filenames, samples.images, strict=True):
        out[Path(path).stem] = image
    with matplotlib.cbook.get_sample_data("grace_hopper.jpg") as f:
        out["grace_hopper"] = np.asarray(Image.open(f).convert("RGB"))
    return {name: np.repeat(a[..., None], 3, axis=2) if a.ndim == 2 else a[..., :3] for name, a in out.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="folder for the PNGs (k-name.png, k from 0)")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for k, (name, rgb) in enumerate(photos().items()):
        path = args.out / f"{k:02d}-{name}.png"
        Image.fromarray(np.ascontiguousarray(rgb)).save(path)
        print(f"{path}  {rgb.shape[1]}x{rgb.shape[0]}")


if __name__ == "__main__":
    main()
