"""Dead-leaves images: synthetic "photos" of occluding discs, to vary the training scenes (issue #6).

Twenty training photos are few scenes. A dead-leaves image (Matheron; Lee, Mumford & Huang 2001) stacks
occluding discs whose radii follow a power law, so it has edges at every scale and roughly the
scale-invariant statistics of natural images, with as many scenes as seeds; Achddou, Gousseau & Ladjal
(2021) trained denoising and super-resolution networks on them. Here each disc is filled with a linear
colour gradient (smooth shading, like the held-out `umang` on which the students fail), some with a faint
sinusoidal texture; colours are drawn from pixels of the given photos, so the colour statistics are
theirs. Discs are laid front to back at 2x and the image is area-reduced, which anti-aliases the edges
as a camera's optics would. Each image is written as PNG, for `unblur synth` like any sharp photo
(docs/results.md, "Dead leaves"; scripts/leaves_ab.sh uses them).

`--soft F` gives a fraction F of the discs a soft rim, 2-24 px wide (a linear ramp of coverage, laid
front to back like the hard ones): a photo's soft edges (fur, a dandelion's head, defocus) are not blur,
and a student trained on hard edges alone steepens them (docs/results.md, "Dead leaves"). The default, 0,
draws exactly the images of before.

    source scripts/photos.sh
    .venv/bin/python scripts/dead_leaves.py data/leaves 20 $(training_photos ../shared/photos)
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image

SIZE = (1365, 2048)  # H, W of each image: about the photos' size, enough for 720p frames and camera motion
R_MIN, R_MAX = 4.0, 500.0  # disc radii in output pixels
ALPHA = 2.5  # radius density ∝ r^-ALPHA: below 3 (equal cover per octave) larger discs cover more, so there
# are flat areas as wide as a photo's sky or wall, not only the clutter of the classic r^-3
SOFT_RIM = (2.0, 24.0)  # widths of the soft discs' rims in output pixels


def colour_pool(photos: list[Path], rng: np.random.Generator, per_photo: int = 20000) -> np.ndarray:
    """Random pixels of the photos (encoded RGB in [0, 1]), from a 256 px thumbnail of each."""
    pool = []
    for path in photos:
        with Image.open(path) as im:
            im = im.convert("RGB")
            im.thumbnail((256, 256))
            px = np.asarray(im, dtype=np.float32).reshape(-1, 3) / 255.0
        pool.append(px[rng.integers(0, len(px), per_photo)])
    return np.concatenate(pool)


def radius(rng: np.random.Generator, lo: float, hi: float, alpha: float = ALPHA) -> float:
    """A radius with density ∝ r^-alpha on [lo, hi] (inverse-CDF sampling)."""
    k = 1.0 - alpha
    return float((lo**k - rng.random() * (lo**k - hi**k)) ** (1.0 / k))


def dead_leaves(
    rng: np.random.Generator, colours: np.ndarray, size: tuple[int, int], scale: int = 2, soft: float = 0.0
) -> np.ndarray:
    """One image, ``(H, W, 3)`` encoded RGB in [0, 1]; rendered at ``scale``× and area-reduced.

    Discs are composited front to back: ``clear`` is how much of each pixel no disc covers yet, and each new
    disc takes its coverage (1 inside a hard disc, a ramp across a soft one's rim) of what is left.
    """
    h, w = size[0] * scale, size[1] * scale
    image = np.zeros((h, w, 3), np.float32)
    clear = np.ones((h, w), np.float32)
    remaining = float(h * w)
    while remaining > 0.002 * h * w:
        r = radius(rng, R_MIN, R_MAX) * scale
        cy, cx = rng.uniform(-r, h + r), rng.uniform(-r, w + r)
        rim = rng.uniform(*SOFT_RIM) * scale if soft > 0 and rng.random() < soft else 0.0
        reach = r + rim / 2
        y0, y1 = max(0, int(cy - reach)), min(h, int(cy + reach) + 1)
        x0, x1 = max(0, int(cx - reach)), min(w, int(cx + reach) + 1)
        if y0 >= y1 or x0 >= x1:
            continue
        yy, xx = np.ogrid[y0:y1, x0:x1]
        if rim:
            alpha = np.clip((r - np.sqrt((yy - cy) ** 2 + (xx - cx) ** 2)) / rim + 0.5, 0.0, 1.0)
        else:
            alpha = ((yy - cy) ** 2 + (xx - cx) ** 2 <= r * r).astype(np.float32)
        cover = alpha * clear[y0:y1, x0:x1]
        if not cover.any():
            continue
        # A linear gradient between two colours of the pool across the disc, in a random direction.
        a, b = colours[rng.integers(0, len(colours), 2)]
        theta = rng.uniform(0, 2 * np.pi)
        t = ((yy - cy) * np.sin(theta) + (xx - cx) * np.cos(theta)) / (2 * r) + 0.5
        fill = a + (b - a) * t[..., None] * rng.uniform(0.0, 1.0)
        if rng.random() < 0.3:  # a faint texture: a sinusoid of 4-40 px period
            period = rng.uniform(4, 40) * scale
            phi = rng.uniform(0, 2 * np.pi)
            fill = fill + rng.uniform(0.02, 0.08) * np.sin(
                2 * np.pi * ((yy - cy) * np.cos(theta) - (xx - cx) * np.sin(theta)) / period + phi)[..., None]
        image[y0:y1, x0:x1] += cover[..., None] * np.clip(fill, 0.0, 1.0)
        clear[y0:y1, x0:x1] -= cover
        remaining -= float(cover.sum())
    image += clear[..., None] * colours[rng.integers(0, len(colours))]  # the last specks
    image = image.clip(0.0, 1.0).reshape(size[0], scale, size[1], scale, 3).mean((1, 3))
    return image


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("count", type=int)
    parser.add_argument("photos", type=Path, nargs="+", help="the photos whose colours to use")
    parser.add_argument("--soft", type=float, default=0.0, help="fraction of discs with a soft rim")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    colours = colour_pool(args.photos, np.random.default_rng(0))
    for k in range(args.count):
        image = dead_leaves(np.random.default_rng(1000 + k), colours, SIZE, soft=args.soft)
        path = args.out / f"leaves-{k:02d}.png"
        Image.fromarray((image * 255).round().astype(np.uint8)).save(path)
        print(path, flush=True)


if __name__ == "__main__":
    main()
