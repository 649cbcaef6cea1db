"""`unblur bench --quick` logic on the CPU: the rows exist, carry the keys the JSON promises, and a path
that cannot run becomes a row with a note. Correctness only: no assertion here is about speed."""

from __future__ import annotations

import json

import pytest

import unblur.bench as bench
from unblur.bench import BenchRow, format_rows, machine_info, rows_to_json, run_bench


@pytest.fixture(scope="module")
def rows() -> list[BenchRow]:
    return run_bench("studentcnn_v3", device="cpu", quick=True)


def by_path(rows: list[BenchRow]) -> dict[str, BenchRow]:
    return {r.path: r for r in rows}


def test_quick_bench_times_each_cpu_path_and_the_training_steps(rows: list[BenchRow]) -> None:
    paths = by_path(rows)
    for name in ("eager fp32", "channels_last fp32", "bf16 autocast channels_last",
                 "train step, model only (random tensors, MSE)", "train step, DataLoader + CombinedLoss"):
        row = paths[name]
        assert row.ok, f"{name}: {row.note}"
        assert row.ms_per_frame > 0 and row.fps == pytest.approx(1000 / row.ms_per_frame, rel=1e-2)
        assert row.tflops > 0 and row.peak_mem_mb > 0 and row.mem_kind
    assert paths["eager fp32"].size == "128x128"
    assert paths["eager fp32"].max_abs_diff == 0.0
    assert paths["channels_last fp32"].max_abs_diff <= 1e-4
    assert "skipped with --quick" in paths["torch.compile fp32 channels_last"].note
    assert paths["train step, DataLoader + CombinedLoss"].ratio > 0
    assert paths["train step, random tensors + CombinedLoss"].ratio > 0
    assert any(r.kind == "ceiling" and r.dtype == "fp32" and r.tflops > 0 for r in rows)
    assert sum(r.default for r in rows) == 1  # the path inference_plan() picks is marked


def test_json_rows_have_the_promised_keys(rows: list[BenchRow]) -> None:
    decoded = json.loads(json.dumps(rows_to_json(rows), allow_nan=False))
    assert isinstance(decoded, list) and decoded
    for row in decoded:
        assert {"path", "ms_per_frame", "fps", "tflops", "pct_of_ceiling", "peak_mem_mb", "note"} <= row.keys()


def test_table_lists_every_path_and_the_machine(rows: list[BenchRow]) -> None:
    text = format_rows(rows, machine_info("cpu"))
    for row in rows:
        assert row.path in text
    assert "torch:" in text and "ms/frame" in text and "peak memory" in text


def test_a_failing_path_is_a_row_with_a_note(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken_setup() -> None:
        raise RuntimeError("no C++ compiler found")

    real = bench.inference_paths

    def with_a_broken_path(*args: object, **kwargs: object) -> list[bench._Path]:
        return [*real(*args, **kwargs), bench._Path("broken path", "fp32", broken_setup)]

    monkeypatch.setattr(bench, "inference_paths", with_a_broken_path)
    rows = run_bench("unblurnet", device="cpu", quick=True, size=(24, 40), train=False, repeats=1)
    broken = by_path(rows)["broken path"]
    assert not broken.ok and broken.ms_per_frame is None
    assert "failed: RuntimeError: no C++ compiler found" in broken.note
    assert by_path(rows)["eager fp32"].ok
    assert not any(r.kind == "train" for r in rows)
    json.dumps(rows_to_json(rows), allow_nan=False)


def test_bench_weights_times_the_architecture_stored_in_the_file(tmp_path, capsys, monkeypatch) -> None:
    """`--weights` builds the file's model with its settings (here a quarter-width unblurnet), for
    inference and training: the FLOPs behind the TFLOP/s are that architecture's, not the default's."""
    from unblur.cli import main
    from unblur.models import build_model, count_macs_per_pixel, save_weights, weights_from_model

    kwargs = {"widths": [8, 16, 24]}
    small = build_model("unblurnet", **kwargs)
    path = save_weights(tmp_path / "small.pth", weights_from_model(small, "unblurnet", kwargs))
    built: list[tuple[str, dict]] = []

    def recording_build(name: str, **kw):
        built.append((name, kw))
        return build_model(name, **kw)

    monkeypatch.setattr(bench, "build_model", recording_build)
    assert main(["bench", "--quick", "--json", "--device", "cpu", "--weights", str(path)]) == 0
    rows = {r["path"]: r for r in json.loads(capsys.readouterr().out)}
    assert len(built) >= 2 and all(b == ("unblurnet", kwargs) for b in built)  # inference and training models
    h, w = (int(v) for v in rows["eager fp32"]["size"].split("x"))
    macs = rows["eager fp32"]["tflops"] * 1e12 * rows["eager fp32"]["ms_per_frame"] / 1e3 / (2 * h * w)
    assert macs == pytest.approx(count_macs_per_pixel(small, (h, w)), rel=1e-3)
    assert macs < count_macs_per_pixel(build_model("unblurnet"), (h, w)) / 4
