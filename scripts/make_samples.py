"""Regenerate the bundled sample photos in src/unblur/samples/ from ../shared/photos.

The package ships a few small, permissively licensed photos so that `unblur demo` and the tests work
offline. They are picked here by name (CC0 or CC-BY only: the wheel must not carry share-alike or GPL
images), downscaled to a longer side of 960 px with Lanczos and re-encoded as JPEG quality 90 with
4:2:0 chroma (luma keeps full resolution; the six files stay near 1 MB in all). Metadata is dropped.

    .venv/bin/python scripts/make_samples.py [--photos ../shared/photos]

The output is byte-for-byte reproducible with the same Pillow version.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from PIL import Image

from unblur.io import atomic_write, read_rgb_u8

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "src" / "unblur" / "samples"
LONG_SIDE = 960
QUALITY = 90

# file name: (author, licence SPDX id, licence URL). seeding and sunset are the demo's held-out test
# photos; the others are its training photos.
PHOTOS: dict[str, tuple[str, str, str]] = {
    "seeding-by-clements_engelhardt.jpg": (
        "Clemens Engelhardt", "CC0-1.0", "https://creativecommons.org/publicdomain/zero/1.0/"),
    "sunset-by-aitzol_berasategi.jpg": (
        "Aitzol Berasategi", "CC-BY-4.0", "https://creativecommons.org/licenses/by/4.0/"),
    "life-by-aitzol_berasategi.jpg": (
        "Aitzol Berasategi", "CC-BY-4.0", "https://creativecommons.org/licenses/by/4.0/"),
    "picosdeeuropa-by-aitzol_berasategi.jpg": (
        "Aitzol Berasategi", "CC-BY-4.0", "https://creativecommons.org/licenses/by/4.0/"),
    "friends-by-aitzol_berasategi.jpg": (
        "Aitzol Berasategi", "CC-BY-4.0", "https://creativecommons.org/licenses/by/4.0/"),
    "picture_1a-by-freespace.jpg": (
        'Trevor "Freespace"', "CC-BY-4.0", "https://creativecommons.org/licenses/by/4.0/"),
}

CREDITS_HEAD = """# Credits for the bundled sample photos

These photos let `unblur demo` and the tests run offline. Each one was **downscaled** (longer side
{long_side} px, Lanczos) **and re-encoded** (JPEG quality {quality}, metadata removed) by
`scripts/make_samples.py` from the project's shared copy of the wallpaper in the Debian package
`lomiri-wallpapers-16.04` (whose copyright file states the author and licence); no other changes were
made. Licences are CC0 or CC BY only; reusing a CC BY photo requires crediting its author as below.

`seeding-*` and `sunset-*` are the demo's held-out test photos; the others are its training photos.

| file | author | licence | source |
| --- | --- | --- | --- |
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=Path, default=ROOT.parent / "shared" / "photos",
                        help="folder with the full-size photos (default: ../shared/photos)")
    args = parser.parse_args()
    SAMPLES.mkdir(parents=True, exist_ok=True)
    rows = []
    total = 0
    for name, (author, licence, url) in PHOTOS.items():
        image = Image.fromarray(read_rgb_u8(args.photos / name))
        image.thumbnail((LONG_SIDE, LONG_SIDE), Image.Resampling.LANCZOS)
        target = SAMPLES / name
        with atomic_write(target) as tmp:
            image.save(tmp, format="JPEG", quality=QUALITY, optimize=True, subsampling="4:2:0")
        total += target.stat().st_size
        rows.append(f"| {name} | {author} | [{licence}]({url}) | Debian `lomiri-wallpapers-16.04` |\n")
        print(f"{target.relative_to(ROOT)}  {image.width}x{image.height}  {target.stat().st_size / 1e3:.0f} kB")
    with atomic_write(SAMPLES / "CREDITS.md") as tmp:
        tmp.write_text(CREDITS_HEAD.format(long_side=LONG_SIDE, quality=QUALITY) + "".join(rows))
    print(f"{len(PHOTOS)} photos, {total / 1e6:.2f} MB in all")


if __name__ == "__main__":
    main()
