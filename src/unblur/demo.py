"""``unblur demo``: the whole workflow, offline, on the photos bundled with the package.

Synthesize a small GoPro-style set, train a student briefly, score it against the blurry input, an
unsharp mask and the bundled pretrained model, and write labelled Input | Output | Target comparisons
(made by the pretrained model when the package has one) and the loss curve. It is sized
to finish in a few minutes on two CPU cores, which is far too little training for a good model: the
point is to show every step working end to end on real files, and the printed table says honestly how
far a few minutes get.
"""

from __future__ import annotations

import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path

from unblur.data import find_pairs
from unblur.evaluate import evaluate, format_table, write_report
from unblur.infer import default_weights_path, load_sharpener, sharpen_files
from unblur.io import atomic_write
from unblur.synth import sample_photos, synthesize
from unblur.train import CURVE_NAME, TrainConfig, train

__all__ = ["DEMO_TEST_PHOTOS", "run_demo"]

# The demo trains the multi-scale residual student: it starts as the identity, so even minutes of CPU
# training move it above the blurry input, where the seed's StudentCNN_v3 would still be rebuilding the
# whole image through its sigmoid.
DEMO_MODEL = "unblurnet"

# Held out of the demo's training set, like the benchmark holds them out of real training.
DEMO_TEST_PHOTOS = ("seeding", "sunset")


def run_demo(out: str | Path = "outputs_sharpen", device: str = "auto", steps: int | None = None,
             log: Callable[[str], None] | None = None) -> dict[str, Path]:
    """Run the demo into ``out``; returns the main files written, by role."""
    say = log or (lambda line: print(line, file=sys.stderr))
    out = Path(out)
    data, run = out / "demo_data", out / "demo_run"
    for folder in (data, run):  # the demo's own scratch folders; re-running starts clean
        if folder.exists():
            shutil.rmtree(folder)
    start = time.perf_counter()
    photos = sample_photos()
    test_photos = [p for p in photos if p.name.startswith(DEMO_TEST_PHOTOS)]
    train_photos = [p for p in photos if p not in test_photos]

    say(f"[1/4] synthesizing GoPro-style pairs from {len(photos)} bundled photos into {data}")
    synthesize(train_photos, out=data, split="train", pairs_per_image=6, size=(192, 320), seed=0, progress=False)
    # Validation (which picks the saved weights) uses other frames of the training photos, so the test
    # photos stay unseen until the final scores.
    synthesize(train_photos, out=data, split="val", pairs_per_image=1, size=(192, 320), seed=2, progress=False)
    report = synthesize(test_photos, out=data, split="test", pairs_per_image=2, size=(288, 512), seed=1,
                        progress=False)
    say(report.format())

    say("[2/4] training (a short CPU-sized run; see the README for real training)")
    cfg = TrainConfig(data=str(data), out=str(run), model=DEMO_MODEL, epochs=1_000, max_steps=steps or 300,
                      batch_size=4, crop=128, lr=5e-4, workers=0, device=device, val_split="val", val_limit=4,
                      checkpoint_seconds=60.0)
    result = train(cfg, log=say)

    say("[3/4] evaluating on the held-out test pairs")
    sharpener, weights = load_sharpener(result.weights, device=device)
    pairs = find_pairs(data, "test")
    scores = evaluate(sharpener, pairs, progress=False)
    scores.info.update(data=str(data), split="test", model=weights.model, weights=str(result.weights))
    table = format_table(scores, model_label=f"demo-trained ({weights.model})")
    csv_path, json_path = write_report(scores, out / "eval")
    # The weights bundled with unblur (37 minutes of CPU training, docs/MODEL_CARD.md) on them:
    # what a real model does, next to what the demo's minutes do. They also make the comparisons.
    bundled = default_weights_path()
    if bundled is not None:
        sharpener, weights = load_sharpener(bundled, device=device)
        pretrained = evaluate(sharpener, pairs, progress=False)
        pretrained.info.update(data=str(data), split="test", model=weights.model, weights=str(bundled))
        table += "\n" + format_table(pretrained, model_label=f"bundled ({weights.model})").split("\n")[-1]
        write_report(pretrained, out / "eval_bundled")
    who = "the bundled pretrained model" if bundled is not None else "the demo-trained model"

    say(f"[4/4] writing Input | Output | Target comparisons ({who})")
    inputs = [p.input for p in pairs]
    sharpened = sharpen_files(inputs, sharpener, out, progress=False, warn=say)
    curve = out / CURVE_NAME
    with atomic_write(curve) as tmp:
        shutil.copyfile(run / CURVE_NAME, tmp)

    minutes = (time.perf_counter() - start) / 60
    print(f"\nunblur demo finished in {minutes:.1f} min. Scores on {len(pairs)} held-out pairs:\n{table}\n")
    print("Written:")
    print(f"  {out}/*_compare.png      Input | Output | Target side by side, by {who} "
          f"({len(sharpened.comparisons)} files)")
    print(f"  {out}/*.png              the sharpened images ({len(sharpened.written)} files)")
    print(f"  {curve}          train/validation loss and PSNR per epoch")
    print(f"  {csv_path}, {json_path}")
    if bundled is not None:
        print(f"  {out}/eval_bundled/         the same scores for the bundled pretrained model")
    print(f"  {run}/               weights (sharpen_model.pth), checkpoint, metrics.csv, config.json")
    print(f"  {data}/              the synthesized GoPro-style pairs")
    print("Next:")
    print("  unblur sharpen photo.jpg                 # the bundled pretrained model")
    print("  unblur sharpen photo.jpg --weights", run / "sharpen_model.pth")
    print("  unblur train --data /path/to/GOPRO_Large --out runs/v3      # the seed's recipe (a GPU helps)")
    print("  torchrun --nproc_per_node=4 -m unblur train --data /path/to/GOPRO_Large --out runs/v3-ddp")
    print("  unblur synth YOUR_SHARP_PHOTOS --out data/mine && unblur train --data data/mine --out runs/mine")
    return {"comparisons": out, "curve": curve, "weights": result.weights, "summary": json_path}
