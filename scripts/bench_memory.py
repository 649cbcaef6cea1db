"""Peak memory of sharpening one large photo with tiles, measured from outside the process that does it.

Makes a ``--megapixels`` photo (default 24 MP, 6000×4000) by upscaling a bundled sample, saves random
weights of ``--model``, then runs the library path of ``unblur sharpen`` (``load_sharpener`` +
``sharpen_files``, default inference plan, ``--tile``) in a fresh Python subprocess and reports that
child's peak resident set size (``getrusage(RUSAGE_CHILDREN).ru_maxrss``: the kernel's own high-water
mark, which includes everything the child touched: interpreter, torch, onnxruntime, image buffers).

    .venv/bin/python scripts/bench_memory.py --tile 512            # 24 MP, studentcnn_v3: minutes on 2 cores
    .venv/bin/python scripts/bench_memory.py --megapixels 1 --tile 256   # a quick check
    .venv/bin/python scripts/bench_memory.py --weights src/unblur/weights/default.pth   # the bundled model
    .venv/bin/python scripts/bench_memory.py --model unblurnet --backend onnx  # the AVX2 CPUs' default
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHILD = """
import json, sys, time
import torch
from unblur.infer import load_sharpener, sharpen_files
photo, weights, out, tile, fp32, backend = sys.argv[1:4] + [int(sys.argv[4]), sys.argv[5] == "1", sys.argv[6]]
t0 = time.perf_counter()
sharpener, _ = load_sharpener(weights, device="cpu", fp32=fp32, tile=tile, backend=backend)
report = sharpen_files([photo], sharpener, out, progress=False)
print(json.dumps({"seconds": time.perf_counter() - t0, "plan": sharpener.plan.describe(),
                  "written": [str(p) for p in report.written], "failed": [str(f) for f in report.failed],
                  "threads": torch.get_num_threads()}))
"""


def make_photo(path: Path, megapixels: float) -> tuple[int, int]:
    """Upscale the first bundled sample to about ``megapixels`` at 3:2 and save it as a quality-95 JPEG."""
    from PIL import Image

    from unblur.synth import sample_photos

    w = round(math.sqrt(megapixels * 1e6 * 3 / 2))
    h = round(w * 2 / 3)
    with Image.open(sample_photos()[0]) as im:
        im.convert("RGB").resize((w, h), Image.Resampling.BICUBIC).save(path, quality=95)
    return h, w


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="studentcnn_v3")
    parser.add_argument("--weights", help="run these weights (their settings set the tile overlap) instead of "
                        "random ones of --model")
    parser.add_argument("--megapixels", type=float, default=24.0)
    parser.add_argument("--tile", type=int, default=512)
    parser.add_argument("--fp32", action="store_true", help="the reference path instead of the default plan")
    parser.add_argument("--backend", choices=("auto", "torch", "onnx"), default="auto",
                        help="force an engine, e.g. onnx: what CPUs without native bf16 run by default")
    args = parser.parse_args()

    import torch

    from unblur.models import build_model, save_weights, weights_from_model

    with tempfile.TemporaryDirectory(prefix="unblur-mem-") as tmp:
        folder = Path(tmp)
        photo = folder / "big.jpg"
        h, w = make_photo(photo, args.megapixels)
        torch.manual_seed(0)
        weights = (Path(args.weights) if args.weights else
                   save_weights(folder / "w.pth", weights_from_model(build_model(args.model), args.model)))
        t0 = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-c", CHILD, str(photo), str(weights), str(folder / "out"), str(args.tile),
             "1" if args.fp32 else "0", args.backend],
            capture_output=True, text=True, check=False,
        )
        wall = time.perf_counter() - t0
        peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # KiB on Linux
        if done.returncode != 0:
            print(done.stderr, file=sys.stderr)
            return done.returncode
        child = json.loads(done.stdout.strip().splitlines()[-1])
        result = {"model": args.weights or args.model, "size": f"{h}x{w}", "megapixels": round(h * w / 1e6, 2),
                  "tile": args.tile,
                  "plan": child["plan"], "threads": child["threads"], "peak_rss_mib": round(peak_kib / 1024),
                  "sharpen_seconds": round(child["seconds"], 1), "process_seconds": round(wall, 1),
                  "written": bool(child["written"]), "failed": child["failed"]}
        print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
