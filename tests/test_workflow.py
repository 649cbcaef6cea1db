"""The seed's workflow end to end on tiny data: train, resume, eval, sharpen, demo, DDP."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from unblur.cli import main
from unblur.infer import Sharpener, load_sharpener, output_paths
from unblur.models import StudentCNNv3, build_model, load_weights, save_weights, weights_from_model
from unblur.train import TrainConfig, train, training_precision

TINY = ["--crop", "32", "--batch-size", "2", "--workers", "0", "--device", "cpu"]


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_train_writes_every_run_file(tiny_gopro, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "--data", str(tiny_gopro), "--out", str(run), "--max-steps", "2", *TINY]) == 0
    for name in ("sharpen_model.pth", "checkpoint.pt", "metrics.csv", "loss_curve.png", "config.json"):
        assert (run / name).is_file(), name
    payload = torch.load(run / "sharpen_model.pth", weights_only=True)
    assert payload["model"] == "studentcnn_v3"
    StudentCNNv3().load_state_dict(payload["state_dict"])  # a plain state_dict inside
    rows = _rows(run / "metrics.csv")
    assert rows[-1]["step"] == "2"
    for key in ("train_loss", "train_mse", "train_ms_ssim", "train_edge", "val_loss", "val_psnr", "val_ssim",
                "val_input_psnr", "lr"):
        assert float(rows[-1][key]) == float(rows[-1][key])  # present and not NaN
    assert Image.open(run / "loss_curve.png").format == "PNG"
    config = json.loads((run / "config.json").read_text())
    assert config["batch_size"] == 2 and config["lr"] == 1e-4 and config["alpha"] == 0.8
    assert "done: 2 steps" in capsys.readouterr().out


def test_seed_defaults():
    cfg = TrainConfig(data="x")
    assert (cfg.model, cfg.input_kind, cfg.epochs, cfg.batch_size, cfg.lr, cfg.alpha, cfg.edge_weight, cfg.crop) == (
        "studentcnn_v3", "blur_gamma", 30, 2, 1e-4, 0.8, 1.0, 256)
    assert cfg.ema is None and not cfg.cosine and cfg.accum == 1 and cfg.clip is None


def test_resume_continues_the_step_count(tiny_gopro, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "--data", str(tiny_gopro), "--out", str(run), "--max-steps", "2", *TINY]) == 0
    first = torch.load(run / "checkpoint.pt", weights_only=True)
    assert first["step"] == 2
    assert main(["train", "--out", str(run), "--resume", "--max-steps", "5"]) == 0
    err = capsys.readouterr().err
    assert "resuming" in err and "step 2" in err
    second = torch.load(run / "checkpoint.pt", weights_only=True)
    assert second["step"] == 5
    assert [r["step"] for r in _rows(run / "metrics.csv")][-1] == "5"
    assert not torch.equal(first["model"]["conv1.weight"], second["model"]["conv1.weight"])


def test_existing_run_needs_resume(tiny_gopro, tmp_path, capsys):
    run = tmp_path / "run"
    args = ["train", "--data", str(tiny_gopro), "--out", str(run), "--max-steps", "1", *TINY]
    assert main(args) == 0
    assert main(args) == 1
    assert "--resume" in capsys.readouterr().err


def test_config_file_and_flags(tiny_gopro, tmp_path):
    config = tmp_path / "cfg.toml"
    config.write_text('model = "unblurnet"\nlr = 3e-4\nbatch-size = 2\ncrop = 32\nworkers = 0\nmax_steps = 1\n')
    run = tmp_path / "run"
    assert main(["train", "--data", str(tiny_gopro), "--out", str(run), "--config", str(config), "--lr", "2e-4"]) == 0
    resolved = json.loads((run / "config.json").read_text())
    assert resolved["model"] == "unblurnet" and resolved["lr"] == 2e-4 and resolved["crop"] == 32
    assert load_weights(run / "sharpen_model.pth").model == "unblurnet"


def test_cpu_training_runs_bf16_where_the_cpu_has_it_and_fp32_on_request(tiny_gopro, tmp_path, monkeypatch):
    import unblur.train as train_module

    cpu = torch.device("cpu")
    monkeypatch.setattr(train_module, "cpu_has_fast_bf16", lambda: False)
    assert training_precision(cpu) == (None, True)  # emulated bf16 would be slower than float32
    monkeypatch.setattr(train_module, "cpu_has_fast_bf16", lambda: True)
    assert training_precision(cpu) == (torch.bfloat16, True)
    assert training_precision(cpu, fp32=True) == (None, True)
    assert training_precision(torch.device("mps")) == (None, False)
    lines: list[str] = []
    result = train(TrainConfig(data=str(tiny_gopro), out=str(tmp_path / "run"), model="unblurnet", crop=32,
                               workers=0, max_steps=2, pixel_loss="psnr", psnr_knee=30.0, alpha=1.0,
                               edge_weight=0.0, progress=False), log=lines.append)
    assert any("on cpu, bfloat16" in line for line in lines), lines
    assert result.steps == 2 and torch.isfinite(torch.tensor(result.history[-1]["train_loss"]))
    last = result.history[-1]
    # The knee adds 1e-3 to each image's MSE: the loss in dB stays above -30, and on validation frames near
    # 30 dB it lies well above minus their PSNR, which plain -PSNR would match (to the 8-bit rounding).
    assert -30.0 < last["train_loss"] < 0 and last["val_loss"] > -30.0 and last["val_loss"] > 1 - last["val_psnr"]
    assert all(v.dtype == torch.float32 for v in load_weights(result.weights).state_dict.values())


def test_opt_in_training_extras_run(tiny_gopro, tmp_path):
    teacher_run = tmp_path / "teacher"
    train(TrainConfig(data=str(tiny_gopro), out=str(teacher_run), model="unblurnet", crop=32, workers=0,
                      max_steps=1, progress=False), log=lambda _: None)
    cfg = TrainConfig(data=str(tiny_gopro), out=str(tmp_path / "run"), model="studentcnn_v3_residual", crop=32,
                      workers=0, max_steps=2, ema=0.9, cosine=True, accum=2, clip=1.0, batch_size=1,
                      shuffle_colors=True, teacher=str(teacher_run / "sharpen_model.pth"), progress=False)
    result = train(cfg, log=lambda _: None)
    assert result.steps == 2
    assert float(result.history[-1]["train_distill"]) >= 0


def test_distillation_scores_the_student_against_the_teacher(tiny_gopro, tmp_path):
    """The distillation term is the run's loss against the teacher's output: zero when the teacher is the
    student's own starting point (an untrained unblurnet is the identity), while the same student's loss
    against the sharp frames is not."""
    teacher = save_weights(tmp_path / "identity.pth", weights_from_model(build_model("unblurnet"), "unblurnet"))
    cfg = TrainConfig(data=str(tiny_gopro), out=str(tmp_path / "run"), model="unblurnet", crop=48, workers=0,
                      max_steps=1, batch_size=2, teacher=str(teacher), progress=False)
    row = train(cfg, log=lambda _: None).history[-1]
    assert abs(float(row["train_distill"])) < 1e-4
    assert float(row["train_loss"]) > 1e-3


def test_eval_prints_model_and_baselines(tiny_gopro, tmp_path, capsys):
    run = tmp_path / "run"
    train(TrainConfig(data=str(tiny_gopro), out=str(run), crop=32, workers=0, max_steps=1, progress=False),
          log=lambda _: None)
    out = tmp_path / "eval"
    assert main(["eval", "--data", str(tiny_gopro), "--weights", str(run / "sharpen_model.pth"), "--out", str(out),
                 "--device", "cpu", "--save-images"]) == 0
    printed = capsys.readouterr().out
    for label in ("blurry input", "unsharp mask", "model (studentcnn_v3)"):
        assert label in printed
    rows = _rows(out / "per_image.csv")
    assert len(rows) == 2 and {"input_psnr", "unsharp_psnr", "model_psnr", "model_loss", "model_ssim"} <= set(rows[0])
    summary = json.loads((out / "summary.json").read_text())
    assert summary["n_images"] == 2
    means = summary["means"]
    assert summary["gain_psnr_db"] == pytest.approx(means["model"]["psnr"] - means["input"]["psnr"])
    assert len(list((out / "images").glob("*.png"))) == 2


@pytest.fixture()
def weights(tiny_gopro, tmp_path) -> Path:
    run = tmp_path / "run"
    train(TrainConfig(data=str(tiny_gopro), out=str(run), crop=32, workers=0, max_steps=1, progress=False),
          log=lambda _: None)
    return run / "sharpen_model.pth"


def test_sharpen_writes_outputs_and_side_by_sides(tiny_gopro, weights, tmp_path):
    seq = sorted((tiny_gopro / "test").iterdir())[0]
    out = tmp_path / "out"
    args = ["sharpen", str(seq / "blur_gamma"), "--weights", str(weights), "--out", str(out), "--device", "cpu"]
    assert main(args) == 0
    inputs = sorted((seq / "blur_gamma").glob("*.png"))
    for src in inputs:
        result = Image.open(out / src.name)
        assert result.size == Image.open(src).size and result.format == "PNG"
        compare = Image.open(out / f"{src.stem}_compare.png")
        assert compare.width > 3 * result.width and compare.height > result.height  # Input | Output | Target


def test_sharpen_keeps_format_and_name_with_suffix(weights, tmp_path):
    src = tmp_path / "photo.jpg"
    Image.new("RGB", (40, 30), (120, 80, 40)).save(src, quality=95)
    before = src.read_bytes()
    assert main(["sharpen", str(src), "--weights", str(weights), "--out", str(tmp_path), "--suffix", "_sharp"]) == 0
    out = tmp_path / "photo_sharp.jpg"
    assert Image.open(out).format == "JPEG" and Image.open(out).size == (40, 30)
    assert src.read_bytes() == before
    assert not (tmp_path / "photo_sharp_compare.png").exists()  # no target, no --compare


def test_sharpen_refuses_to_overwrite_inputs(weights, tmp_path, capsys):
    src = tmp_path / "photo.png"
    Image.new("RGB", (20, 20), (10, 200, 30)).save(src)
    before = src.read_bytes()
    assert main(["sharpen", str(src), "--weights", str(weights), "--out", str(tmp_path)]) == 1
    assert "overwrite" in capsys.readouterr().err
    assert src.read_bytes() == before
    with pytest.raises(ValueError, match="overwrite"):
        output_paths([src], tmp_path)


def test_sharpen_strength_scales_the_correction(weights, tmp_path, capsys):
    """``--strength 0`` leaves the photo as it is (the correction is scaled away, the sRGB round trip is
    exact to 8 bits), the weights' own strength changes it; models without a strength (also as an ONNX
    file) and values outside [0, 2] are refused with one line."""
    from unblur.export import load_onnx_sharpener

    src = tmp_path / "photo.png"
    pixels = np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(src)
    for strength, out in (("0", tmp_path / "none"), (None, tmp_path / "own")):
        args = ["sharpen", str(src), "--out", str(out), "--device", "cpu"]
        assert main(args + (["--strength", strength] if strength else [])) == 0
    assert np.array_equal(np.asarray(Image.open(tmp_path / "none" / "photo.png")), pixels)
    assert not np.array_equal(np.asarray(Image.open(tmp_path / "own" / "photo.png")), pixels)
    capsys.readouterr()
    assert main(["sharpen", str(src), "--weights", str(weights), "--out", str(tmp_path / "v3"),
                 "--strength", "0.5"]) == 1
    err = capsys.readouterr().err
    assert "studentcnn_v3 has no strength" in err and len(err.strip().splitlines()) == 1
    with pytest.raises(SystemExit):
        main(["sharpen", str(src), "--strength", "3"])
    assert "expected a number from 0 to 2" in capsys.readouterr().err
    onnx = tmp_path / "model.onnx"
    assert main(["export", "--weights", str(weights), "--onnx", str(onnx)]) == 0
    with pytest.raises(ValueError, match="takes no strength"):
        load_onnx_sharpener(onnx, strength=0.5)


def test_sharpen_without_weights_says_how_to_get_some(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr("unblur.infer.default_weights_path", lambda: None)
    src = tmp_path / "p.png"
    Image.new("RGB", (8, 8)).save(src)
    assert main(["sharpen", str(src), "--out", str(tmp_path / "o")]) == 1
    assert "unblur train" in capsys.readouterr().err


def test_tiled_equals_untiled_when_overlap_covers_the_receptive_field(weights):
    sharpener, _ = load_sharpener(weights, device="cpu", fp32=True)
    torch.manual_seed(0)
    image = torch.rand(3, 70, 90)
    whole = sharpener(image)
    tiled = Sharpener(sharpener.model, sharpener.plan, tile=24, overlap=8)(image)
    assert torch.allclose(whole, tiled, atol=1e-5)


def test_demo_runs_end_to_end(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--steps", "2", "--device", "cpu"]) == 0
    assert (out / "loss_curve.png").is_file()
    assert len(list(out.glob("*_compare.png"))) == 4
    printed = capsys.readouterr().out
    assert "blurry input" in printed and "unsharp mask" in printed and "Next:" in printed
    assert "demo-trained (unblurnet)" in printed and "bundled (unblurnet)" in printed
    bundled = json.loads((out / "eval_bundled" / "summary.json").read_text())
    assert bundled["n_images"] == 4 and bundled["gain_psnr_db"] > 0  # the pretrained model sharpens unseen pairs


def test_ddp_two_gloo_processes_train_and_write_once(tiny_gopro, tmp_path):
    run = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "unblur",
           "train", "--data", str(tiny_gopro), "--out", str(run), "--max-steps", "2", *TINY]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("done: 2 steps") == 1  # only rank 0 reports
    assert proc.stderr.count("training studentcnn_v3 on") == 1
    assert "2 process(es)" in proc.stderr
    rows = _rows(run / "metrics.csv")
    epochs = [r["epoch"] for r in rows]
    assert rows[-1]["step"] == "2" and len(epochs) == len(set(epochs))  # one row per epoch: written once
    assert torch.load(run / "checkpoint.pt", weights_only=True)["step"] == 2
    assert not list(run.glob("*.tmp*"))
    shutil.rmtree(run)


def test_warmup_and_cosine_learning_rate_factors():
    from unblur.train import _lr_factor

    assert [_lr_factor(4, 100, False, s) for s in range(6)] == [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]
    assert _lr_factor(0, 100, False, 0) == 1.0  # no warm-up: full rate from the first step
    assert _lr_factor(0, 100, True, 50) == pytest.approx(0.5)
    assert _lr_factor(10, 100, True, 100) == pytest.approx(0.0)
    assert _lr_factor(10, 100, True, 4) == pytest.approx(0.5 * 0.5 * (1 + torch.cos(torch.tensor(0.04 * torch.pi))))


def test_repeat_draws_several_crops_per_pair_each_epoch(tiny_gopro, tmp_path):
    # 6 training pairs, batch 2: 3 steps per epoch, 9 with --repeat 3 (one validation per 9 steps).
    run = tmp_path / "run"
    assert main(["train", "--data", str(tiny_gopro), "--out", str(run), "--epochs", "1", "--repeat", "3",
                 "--warmup", "2", "--lr", "1e-3", "--val-limit", "1", *TINY]) == 0
    rows = _rows(run / "metrics.csv")
    assert [r["step"] for r in rows] == ["9"]
    assert float(rows[0]["lr"]) == pytest.approx(1e-3)  # warm-up over after 2 of the 9 steps
    config = json.loads((run / "config.json").read_text())
    assert (config["repeat"], config["warmup"], config["val_limit"]) == (3, 2, 1)


def test_a_runs_checkpoint_reads_as_its_latest_weights_everywhere(tiny_gopro, tmp_path):
    run = tmp_path / "run"
    assert main(["train", "--data", str(tiny_gopro), "--out", str(run), "--model", "unblurnet", "--ema", "0.5",
                 "--max-steps", "2", "--lr", "1e-3", *TINY]) == 0
    checkpoint = torch.load(run / "checkpoint.pt", weights_only=True)
    ema = {k.removeprefix("module."): v for k, v in checkpoint["ema"].items() if k != "n_averaged"}
    latest = load_weights(run / "checkpoint.pt")
    assert latest.model == "unblurnet" and latest.meta["checkpoint_step"] == 2
    assert latest.state_dict.keys() == ema.keys()
    assert all(torch.equal(latest.state_dict[k], v) for k, v in ema.items())  # the EMA, not the raw model
    assert any(not torch.equal(ema[k], checkpoint["model"][k]) for k in ema)
    with pytest.raises(ValueError, match="holds a 'unblurnet' model, not 'studentcnn_v3'"):
        load_weights(run / "checkpoint.pt", "studentcnn_v3")
    out = tmp_path / "eval"
    assert main(["eval", "--data", str(tiny_gopro), "--weights", str(run / "checkpoint.pt"), "--out", str(out),
                 "--device", "cpu"]) == 0
    assert json.loads((out / "summary.json").read_text())["n_images"] > 0


def test_val_extra_validates_on_a_second_set_and_keeps_the_best_mean_gain(tiny_gopro, tmp_path):
    """``--val-extra D`` scores D's test split beside validation every epoch; the weights kept are those of
    the epoch with the best mean gain over the input across both sets, and record it."""
    extra = tmp_path / "extra"
    extra.mkdir()
    (extra / "test").symlink_to(tiny_gopro / "train")  # other frames than validation's
    run = tmp_path / "run"
    assert main(["train", "--data", str(tiny_gopro), "--out", str(run), "--model", "unblurnet", "--lr", "1e-3",
                 "--epochs", "3", "--val-limit", "2", "--val-extra", str(extra), *TINY]) == 0
    rows = _rows(run / "metrics.csv")
    assert len(rows) == 3
    for row in rows:
        gain = (float(row["val_psnr"]) - float(row["val_input_psnr"]) + float(row["val2_psnr"])
                - float(row["val2_input_psnr"])) / 2
        assert float(row["val_gain"]) == pytest.approx(gain, abs=1e-9)
        assert float(row["val2_input_psnr"]) != float(row["val_input_psnr"])  # really another set
    best = max(rows, key=lambda row: float(row["val_gain"]))
    meta = load_weights(run / "sharpen_model.pth").meta
    assert meta["epoch"] == int(best["epoch"]) and meta["val_gain"] == pytest.approx(float(best["val_gain"]))
    assert json.loads((run / "config.json").read_text())["val_extra"] == str(extra)
    # Added on --resume, it chooses anew: a PSNR kept before is no measure of a mean gain
    plain = tmp_path / "plain"
    args = ["train", "--data", str(tiny_gopro), "--out", str(plain), "--model", "unblurnet", "--val-limit", "2", *TINY]
    assert main([*args, "--epochs", "1"]) == 0
    assert main([*args, "--epochs", "2", "--resume", "--val-extra", str(extra)]) == 0
    meta = load_weights(plain / "sharpen_model.pth").meta
    assert meta["epoch"] == 2 and "val_gain" in meta


def test_init_takes_the_weights_model_settings_unless_the_run_sets_its_own(tiny_gopro, tmp_path, capsys):
    """Fine-tuning weights (``mean_window`` 31, ``strength`` 0.5) with just ``--model unblurnet --init W``
    trains with W's settings and saves them; a run that names other settings is refused; a strength per
    frame size is not taken."""
    kwargs = {"mean_window": 31, "strength": 0.5}
    init = tmp_path / "init.pth"
    save_weights(init, weights_from_model(build_model("unblurnet", **kwargs), "unblurnet", kwargs))
    run = tmp_path / "run"
    assert main(["train", "--data", str(tiny_gopro), "--out", str(run), "--model", "unblurnet", "--init", str(init),
                 "--max-steps", "1", *TINY]) == 0
    assert load_weights(run / "sharpen_model.pth").model_kwargs == kwargs
    assert json.loads((run / "config.json").read_text())["model_kwargs"] == kwargs
    config = tmp_path / "other.toml"
    config.write_text("model = \"unblurnet\"\nmodel_kwargs = { mean_window = 63 }\n")
    assert main(["train", "--data", str(tiny_gopro), "--out", str(tmp_path / "other"), "--config", str(config),
                 "--init", str(init), "--max-steps", "1", *TINY]) == 1
    assert "with settings {'mean_window': 31, 'strength': 0.5}" in capsys.readouterr().err
    # a strength per frame size stays behind: a 32 px crop is not a 32 px photo
    table = {"mean_window": 31, "strength_by_size": ((288, 0.7), (720, 1.0))}
    save_weights(init, weights_from_model(build_model("unblurnet", **table), "unblurnet", table))
    sized = tmp_path / "sized"
    assert main(["train", "--data", str(tiny_gopro), "--out", str(sized), "--model", "unblurnet", "--init", str(init),
                 "--max-steps", "1", *TINY]) == 0
    assert load_weights(sized / "sharpen_model.pth").model_kwargs == {"mean_window": 31}


def test_coarse_trains_through_the_coarse_pass_and_saves_it(tiny_gopro, tmp_path, capsys):
    """``--coarse C`` runs every training crop through UnblurNet's coarse pass at strength C: from weights
    that do correct (a non-zero head), the first step's loss differs from a run without it, and the saved
    weights carry the pass at C for every size. ``--coarse-min C0`` draws each crop's strength from [C0, C]:
    at C0 = C the loss is ``--coarse C``'s, at C0 = 0 it is not. Models without a coarse pass refuse it."""
    kwargs = {"mean_window": 31}
    model = build_model("unblurnet", **kwargs)
    torch.manual_seed(0)
    with torch.no_grad():
        model.head.weight.normal_(0, 0.05)
    init = save_weights(tmp_path / "init.pth", weights_from_model(model, "unblurnet", kwargs))
    runs = {"c0": ["--coarse", "0"], "c1": ["--coarse", "1"], "min1": ["--coarse", "1", "--coarse-min", "1"],
            "min0": ["--coarse", "1", "--coarse-min", "0"]}
    losses = {}
    for name, flags in runs.items():  # one step at lr 1e-9: the loss of the init's weights on the same crops
        assert main(["train", "--data", str(tiny_gopro), "--out", str(tmp_path / name), "--model", "unblurnet",
                     "--init", str(init), *flags, "--lr", "1e-9", "--max-steps", "1", *TINY]) == 0
        losses[name] = float(_rows(tmp_path / name / "metrics.csv")[-1]["train_loss"])
    assert abs(losses["c1"] - losses["c0"]) > 1e-4
    assert abs(losses["min1"] - losses["c1"]) < 1e-6
    assert abs(losses["min0"] - losses["c1"]) > 1e-3
    assert main(["train", "--data", str(tiny_gopro), "--out", str(tmp_path / "bad"), "--model", "unblurnet",
                 "--coarse", "0.5", "--coarse-min", "0.75", "--max-steps", "1", *TINY]) == 1
    assert "coarse_min: 0.75 needs a coarse strength at or above it" in capsys.readouterr().err
    saved = load_weights(tmp_path / "c1" / "sharpen_model.pth")
    assert build_model("unblurnet", **saved.model_kwargs).coarse_by_size == ((1, 1.0),)
    assert "coarse_by_size" not in load_weights(tmp_path / "c0" / "sharpen_model.pth").model_kwargs
    # a resumed run rebuilds the same model from its saved config
    assert main(["train", "--out", str(tmp_path / "c1"), "--resume", "--max-steps", "2", *TINY]) == 0
    assert load_weights(tmp_path / "c1" / "checkpoint.pt").model_kwargs["coarse_by_size"] == [[1, 1.0]]
    assert int(_rows(tmp_path / "c1" / "metrics.csv")[-1]["step"]) == 2
    assert main(["train", "--data", str(tiny_gopro), "--out", str(tmp_path / "v3"), "--coarse", "1",
                 "--max-steps", "1", *TINY]) == 1
    assert "only unblurnet has a coarse pass" in capsys.readouterr().err


def test_init_starts_from_another_runs_ema_and_refuses_another_architecture(tiny_gopro, tmp_path, capsys):
    first = tmp_path / "first"
    assert main(["train", "--data", str(tiny_gopro), "--out", str(first), "--model", "unblurnet", "--ema", "0.5",
                 "--max-steps", "2", "--lr", "1e-3", *TINY]) == 0
    checkpoint = torch.load(first / "checkpoint.pt", weights_only=True)
    ema = {k.removeprefix("module."): v for k, v in checkpoint["ema"].items() if k != "n_averaged"}
    second = tmp_path / "second"
    # --max-steps 1 at lr 1e-9: the weights written are the init's, moved by at most ~1e-9
    assert main(["train", "--data", str(tiny_gopro), "--out", str(second), "--model", "unblurnet", "--init",
                 str(first / "checkpoint.pt"), "--pixel-loss", "psnr", "--lr", "1e-9", "--max-steps", "1", *TINY]) == 0
    assert "starting from the weights in" in capsys.readouterr().err
    saved = load_weights(second / "sharpen_model.pth").state_dict
    assert float(ema["head.weight"].abs().max()) > 0  # the first run did move the zero-initialized head
    for key, value in ema.items():
        torch.testing.assert_close(saved[key], value, atol=1e-6, rtol=0)
    assert float(_rows(second / "metrics.csv")[-1]["train_loss"]) < 0  # -PSNR in dB
    third = tmp_path / "third"
    assert main(["train", "--data", str(tiny_gopro), "--out", str(third), "--init", str(first / "sharpen_model.pth"),
                 "--max-steps", "1", *TINY]) == 1
    assert "holds a 'unblurnet' model" in capsys.readouterr().err
