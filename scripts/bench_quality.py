"""How far each fast path's output moves from eager float32, on a real photo: max abs difference and
the change of PSNR against the sharp photo (the 0.05 dB criterion of ``unblur.device.inference_plan``).

The photo is a bundled sample resized to ``--size``, blurred horizontally (a 9 px box: the simplest
motion blur); models have random weights, zero-initialized heads included (see
``unblur.bench.bench_model``). bf16 and fp16 run emulated on a CPU without native support: slower, but
rounding the same values the same way, which is what this measures.

    .venv/bin/python scripts/bench_quality.py --size 256x384
"""

from __future__ import annotations

import argparse
import json
import sys

import torch
import torch.nn.functional as F

from unblur.bench import bench_model
from unblur.device import ExecutionPlan, onnxruntime_available
from unblur.infer import Sharpener
from unblur.io import read_image
from unblur.metrics import psnr
from unblur.models import MODELS
from unblur.synth import sample_photos


def pair(h: int, w: int) -> tuple[torch.Tensor, torch.Tensor]:
    sharp = read_image(sample_photos()[0]).rgb.unsqueeze(0)
    sharp = F.interpolate(sharp, size=(h, w), mode="bilinear", antialias=True, align_corners=False)[0].clamp(0, 1)
    kernel = torch.full((3, 1, 1, 9), 1.0 / 9)
    blurry = F.conv2d(F.pad(sharp.unsqueeze(0), (4, 4, 0, 0), mode="replicate"), kernel, groups=3)[0]
    return blurry, sharp


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="256x384")
    args = parser.parse_args()
    h, w = (int(v) for v in args.size.split("x"))
    blurry, sharp = pair(h, w)
    cpu = torch.device("cpu")
    plans = {"channels_last fp32": ExecutionPlan(cpu, None, True),
             "bf16 autocast channels_last": ExecutionPlan(cpu, torch.bfloat16, True),
             "fp16 autocast channels_last": ExecutionPlan(cpu, torch.float16, True)}
    if onnxruntime_available():
        plans["onnxruntime fp32"] = ExecutionPlan(cpu, backend="onnxruntime")
    results = []
    for name in sorted(MODELS):
        reference = Sharpener(bench_model(name), ExecutionPlan(cpu))(blurry)
        base = float(psnr(reference, sharp))
        for label, plan in plans.items():
            try:
                out = Sharpener(bench_model(name), plan)(blurry)
            except Exception as exc:  # e.g. fp16 autocast unsupported on this CPU build
                results.append({"model": name, "path": label, "error": f"{type(exc).__name__}: {exc}"[:200]})
                continue
            results.append({"model": name, "path": label, "psnr_fp32_db": round(base, 3),
                            "psnr_delta_db": round(float(psnr(out, sharp)) - base, 4),
                            "max_abs_diff": float(f"{float((out - reference).abs().max()):.3g}"),
                            "max_abs_diff_8bit_levels": round(float((out - reference).abs().max()) * 255, 2)})
    print(json.dumps({"size": f"{h}x{w}", "results": results}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
