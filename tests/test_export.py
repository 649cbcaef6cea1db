"""ONNX export: every registered model exports to one file with dynamic batch, height and width, and
onnxruntime agrees with PyTorch within 1e-4 at sizes the export never saw (odd and multiple of 8)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from unblur.bench import bench_model
from unblur.device import onnxruntime_available
from unblur.models import MODELS, save_weights, weights_from_model

pytestmark = pytest.mark.skipif(not onnxruntime_available(), reason="needs unblur[onnx]")


@pytest.fixture(scope="module", params=sorted(MODELS))
def exported(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path, Path]:
    from unblur.export import export_onnx

    name = request.param
    folder = tmp_path_factory.mktemp(f"export-{name}")
    weights = save_weights(folder / "w.pth", weights_from_model(bench_model(name), name))
    out = export_onnx(weights, folder / "onnx" / f"{name}.onnx")
    return name, weights, out


def test_export_is_one_file_with_the_model_recorded(exported: tuple[str, Path, Path]) -> None:
    from unblur.export import onnx_metadata

    name, _, out = exported
    assert out.is_file() and out.stat().st_size > 10_000
    assert sorted(p.name for p in out.parent.iterdir()) == [out.name]  # no external data, no temp file left
    meta = onnx_metadata(out)
    assert meta["unblur.model"] == name
    assert float(meta["unblur.max_abs_diff"]) <= 1e-4


@pytest.mark.parametrize("shape", [(1, 3, 45, 67), (3, 3, 80, 48), (1, 3, 9, 200)])
def test_onnxruntime_matches_pytorch_at_new_sizes(exported: tuple[str, Path, Path], shape: tuple[int, ...]) -> None:
    import onnxruntime as ort

    from unblur.models import load_weights

    _, weights, out = exported
    model = load_weights(weights).build().eval()
    x = torch.rand(shape, generator=torch.Generator().manual_seed(3))
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    got = torch.from_numpy(session.run(None, {session.get_inputs()[0].name: x.numpy()})[0])
    with torch.inference_mode():
        expected = model(x)
    assert got.shape == expected.shape
    assert float((got - expected).abs().max()) <= 1e-4


def test_onnx_sharpener_from_file_and_from_weights_agree_with_torch(exported: tuple[str, Path, Path]) -> None:
    from unblur.device import ExecutionPlan
    from unblur.export import load_onnx_sharpener
    from unblur.infer import Sharpener
    from unblur.models import load_weights

    name, weights, out = exported
    image = torch.rand(3, 50, 70, generator=torch.Generator().manual_seed(4))
    reference = Sharpener(load_weights(weights).build(), ExecutionPlan(torch.device("cpu")))(image)
    for source in (out, weights):
        sharpener, model_name = load_onnx_sharpener(source, device="cpu")
        assert model_name == name
        assert sharpener.plan.backend == "onnxruntime"
        result = sharpener(image)
        assert result.shape == image.shape and result.dtype == torch.float32
        assert float((result - reference).abs().max()) <= 1e-4


def test_a_failed_check_leaves_the_existing_file_untouched(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import unblur.export as export

    weights = save_weights(tmp_path / "w.pth", weights_from_model(bench_model("studentcnn_v3"), "studentcnn_v3"))
    out = tmp_path / "model.onnx"
    out.write_bytes(b"previous export")

    def wrong(*args: object, **kwargs: object) -> float:
        raise RuntimeError("ONNX graph differs from PyTorch by up to 0.5 (> 0.0001); not used")

    monkeypatch.setattr(export, "verify_onnx", wrong)
    with pytest.raises(RuntimeError, match="differs from PyTorch"):
        export.export_onnx(weights, out)
    assert out.read_bytes() == b"previous export"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.onnx", "w.pth"]


def test_verify_rejects_a_graph_of_another_model() -> None:
    from unblur.export import onnx_bytes, verify_onnx

    graph = onnx_bytes(bench_model("studentcnn_v3", seed=1), check=False)
    with pytest.raises(RuntimeError, match="differs from PyTorch"):
        verify_onnx(graph, bench_model("studentcnn_v3", seed=2))


def test_missing_onnx_file_is_one_clear_error(tmp_path: Path) -> None:
    from unblur.export import load_onnx_sharpener

    with pytest.raises(FileNotFoundError, match="ONNX file not found"):
        load_onnx_sharpener(tmp_path / "nope.onnx")


def test_export_strength_is_in_the_graph(tmp_path: Path) -> None:
    """``unblur export --strength 0`` writes a graph that returns its input: the strength is part of the
    model, recorded in the file's settings, not a step the runner has to remember."""
    import json

    from unblur.export import OnnxRunner, export_onnx, onnx_metadata

    torch.manual_seed(0)
    model = bench_model("unblurnet")
    weights = save_weights(tmp_path / "w.pth", weights_from_model(model, "unblurnet"))
    out = export_onnx(weights, tmp_path / "none.onnx", strength=0.0)
    assert json.loads(onnx_metadata(out)["unblur.model_kwargs"]) == {"strength": 0.0}
    x = 0.2 + 0.6 * torch.rand(1, 3, 40, 56)
    torch.testing.assert_close(OnnxRunner(out, torch.device("cpu"))(x), x, atol=1e-5, rtol=0)
    with torch.no_grad():
        assert float((model(x) - x).abs().max()) > 1e-3  # the network itself does change the image


def test_a_strength_table_reaches_the_onnx_graph(tmp_path: Path) -> None:
    """Weights with a ``strength_by_size`` table export a graph whose ``strength`` input is optional: left
    out, it is the table's strength at 1280×720 (the stored default, so ``image`` in, ``sharp`` out works
    in any runtime); ``unblur sharpen`` with the ``.onnx`` file feeds each photo's strength from the table
    in the metadata, whole photo or in tiles, as PyTorch runs the weights; ``--strength`` feeds one."""
    from unblur.device import ExecutionPlan
    from unblur.export import OnnxRunner, export_onnx, load_onnx_sharpener, onnx_metadata
    from unblur.infer import Sharpener
    from unblur.models import load_weights

    torch.manual_seed(0)
    table = ((48, 0.3), (96, 0.6), (720, 1.2))
    model = bench_model("unblurnet", strength_by_size=table)
    weights = save_weights(tmp_path / "w.pth", weights_from_model(model, "unblurnet", {"strength_by_size": table}))
    out = export_onnx(weights, tmp_path / "table.onnx")
    assert onnx_metadata(out)["unblur.default_strength"] == "1.2"
    x = 0.2 + 0.6 * torch.rand(1, 3, 40, 56)
    with torch.inference_mode():
        torch.testing.assert_close(OnnxRunner(out)(x), model(x, 1.2), atol=1e-4, rtol=0)
    torch_model = load_weights(weights).build()
    image = 0.2 + 0.6 * torch.rand(3, 72, 100)
    assert torch_model.strength_for(72, 100) != pytest.approx(0.3)  # so a tile's own strength would be wrong
    for tile in (0, 40):
        expected = Sharpener(torch_model, ExecutionPlan(torch.device("cpu")), tile=tile)(image)
        sharpener, _ = load_onnx_sharpener(out, device="cpu", tile=tile)
        assert float((sharpener(image) - expected).abs().max()) <= 1e-4
    sharpener, _ = load_onnx_sharpener(out, device="cpu", strength=0.0)
    assert float((sharpener(image) - image).abs().max()) <= 1e-5


def test_two_models_differing_only_in_strength_get_their_own_graphs() -> None:
    """The in-memory export cache keys a model by its tensors and its settings: a model at another
    strength (no tensor changes) must not reuse the first one's graph and its stored default."""
    from unblur.export import OnnxRunner, cached_onnx_bytes

    torch.manual_seed(0)
    first = bench_model("unblurnet")
    second = bench_model("unblurnet", strength=0.0)
    second.load_state_dict(first.state_dict())
    x = 0.2 + 0.6 * torch.rand(1, 3, 40, 56)
    assert float((OnnxRunner(cached_onnx_bytes(first))(x) - x).abs().max()) > 1e-3
    torch.testing.assert_close(OnnxRunner(cached_onnx_bytes(second))(x), x, atol=1e-5, rtol=0)


def test_a_coarse_pass_reaches_the_onnx_graph(tmp_path: Path) -> None:
    """Weights with a coarse pass (``coarse_by_size``) export a graph with an optional ``coarse`` input (its
    default the table's at 1280×720); the ``.onnx`` file's Sharpener feeds each photo's from the table in
    the metadata, whole or in tiles, as PyTorch runs the weights. In memory, a photo whose coarse
    strength is 0 runs the graph of the model without the pass, with the same result."""
    from unblur.device import ExecutionPlan
    from unblur.export import OnnxRunner, export_onnx, load_onnx_sharpener, onnx_metadata
    from unblur.infer import Sharpener
    from unblur.models import load_weights

    table = ((48, 0.0), (96, 0.4), (720, 0.6))
    model = bench_model("unblurnet", coarse_by_size=table, mean_window=31)
    weights = save_weights(tmp_path / "w.pth", weights_from_model(model, "unblurnet",
                                                                  {"coarse_by_size": table, "mean_window": 31}))
    out = export_onnx(weights, tmp_path / "coarse.onnx")
    assert onnx_metadata(out)["unblur.default_coarse"] == "0.6"
    runner = OnnxRunner(out)
    assert runner.takes_strength and runner.takes_coarse
    x = 0.2 + 0.6 * torch.rand(1, 3, 41, 57)
    with torch.inference_mode():
        torch.testing.assert_close(runner(x), model(x, 1.0, 0.6), atol=1e-4, rtol=0)
        torch.testing.assert_close(runner(x, 0.8, 0.2), model(x, 0.8, 0.2), atol=1e-4, rtol=0)
    torch_model = load_weights(weights).build()
    cpu = torch.device("cpu")
    for size in ((40, 60), (150, 210)):  # coarse strength 0, then 0.4 and more
        image = 0.2 + 0.6 * torch.rand(3, *size)
        for tile in (0, 64):
            expected = Sharpener(torch_model, ExecutionPlan(cpu), tile=tile)(image)
            sharpener, _ = load_onnx_sharpener(out, device="cpu", tile=tile)
            assert float((sharpener(image) - expected).abs().max()) <= 1e-4
        in_memory = Sharpener(torch_model, ExecutionPlan(cpu, backend="onnxruntime"))
        assert float((in_memory(image) - Sharpener(torch_model, ExecutionPlan(cpu))(image)).abs().max()) <= 1e-4
        assert (in_memory._plain_runner is not None) == (size == (40, 60))
    sharpener, _ = load_onnx_sharpener(out, device="cpu", strength=0.0)  # --strength 0: both passes off
    assert float((sharpener(image) - image).abs().max()) <= 1e-5
