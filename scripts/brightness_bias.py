"""How much brighter the blurry input is than its sharp target, in encoded values and in linear light,
and (with --weights) how much a model changes the brightness of each frame.

Motion blur averages light, so in linear light a blurry frame holds as much light as the sharp one;
in encoded (gamma) values it does not (Jensen's inequality), which is the shift a student must not
learn as a uniform darkening (docs/results.md).

    .venv/bin/python scripts/brightness_bias.py data/benchmark --split test
    .venv/bin/python scripts/brightness_bias.py data/synth23 --split train --every 12 --weights W
"""

from __future__ import annotations

import argparse
import sys

import torch

from unblur.data import find_pairs
from unblur.io import read_image
from unblur.metrics import psnr
from unblur.models import load_weights, srgb_to_linear


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data")
    parser.add_argument("--split", default=None)
    parser.add_argument("--input", default="blur_gamma", choices=("blur_gamma", "blur"))
    parser.add_argument("--every", type=int, default=1, help="use every N-th pair")
    parser.add_argument("--weights", help="also run this model and report its mean change per frame")
    args = parser.parse_args()
    model = load_weights(args.weights).build().eval() if args.weights else None
    print("pair                          in-sharp encoded  in-sharp linear   input dB" +
          ("  model dB  model-in encoded" if model else ""))
    enc, lin = [], []
    for pair in find_pairs(args.data, args.split, args.input)[:: args.every]:
        x, y = read_image(pair.input).rgb.double(), read_image(pair.target).rgb.double()
        enc.append(float((x - y).mean()))
        lin.append(float((srgb_to_linear(x) - srgb_to_linear(y)).mean()))
        line = f"{pair.name:<30} {enc[-1]:>+16.4f} {lin[-1]:>+16.5f} {float(psnr(x, y)):>10.2f}"
        if model is not None:
            with torch.inference_mode():
                out = model(x.float()[None])[0].double()
            line += f" {float(psnr(out, y)):>9.2f} {float((out - x).mean()):>+17.4f}"
        print(line)
    print(f"mean over {len(enc)} pairs: encoded {sum(enc) / len(enc):+.4f}, linear light {sum(lin) / len(lin):+.5f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
