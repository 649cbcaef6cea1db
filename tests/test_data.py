import pickle
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from unblur.data import (
    DatasetError,
    Pair,
    PairedImages,
    _mix_colors,
    check_pairs,
    find_pairs,
    hold_out_sequences,
    pairs_from_folders,
    to_device_float,
)
from unblur.io import ImageError
from unblur.synth import GAMMA

SIZE = (16, 20)  # (H, W) of the test images: tiny, and not square


def _noise(size: tuple[int, int] = SIZE, seed: int = 0) -> np.ndarray:
    """An RGB image with no symmetry, so any flip, turn or shift shows."""
    return np.random.default_rng(seed).integers(0, 256, (*size, 3), dtype=np.uint8)


def _png(path: Path, img: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(img).save(path)
    return path


def _sequence(folder: Path, n: int = 3, kinds: tuple[str, ...] = ("blur", "blur_gamma", "sharp")) -> Path:
    """A GoPro sequence folder with frames 000001.png.. in each of ``kinds``."""
    for k, kind in enumerate(kinds):
        (folder / kind).mkdir(parents=True, exist_ok=True)
        for i in range(1, n + 1):
            _png(folder / kind / f"{i:06d}.png", _noise(seed=100 * k + i))
    return folder


def _flat(folder: Path, names: list[str], size: tuple[int, int] = SIZE) -> Path:
    for i, name in enumerate(names):
        _png(folder / "input" / name, _noise(size, seed=i))
        _png(folder / "target" / name, _noise(size, seed=1000 + i))
    return folder


def _gopro(root: Path) -> Path:
    _sequence(root / "train" / "GOPR0372_07_00", n=3)
    _sequence(root / "train" / "GOPR0374_11_00", n=2)
    _sequence(root / "test" / "GOPR0384_11_00", n=2)
    return root


def _one_line(exc: pytest.ExceptionInfo[BaseException]) -> str:
    message = str(exc.value)
    assert "\n" not in message
    return message


# Layouts ------------------------------------------------------------------------------------------------


def test_gopro_root_with_a_split(tmp_path):
    root = _gopro(tmp_path / "GOPRO_Large")
    pairs = find_pairs(root, split="train")
    assert [p.name for p in pairs] == [
        "GOPR0372_07_00/000001.png", "GOPR0372_07_00/000002.png", "GOPR0372_07_00/000003.png",
        "GOPR0374_11_00/000001.png", "GOPR0374_11_00/000002.png",
    ]
    assert [p.sequence for p in pairs] == ["GOPR0372_07_00"] * 3 + ["GOPR0374_11_00"] * 2
    first = pairs[0]
    assert first.input == root / "train" / "GOPR0372_07_00" / "blur_gamma" / "000001.png"
    assert first.target == root / "train" / "GOPR0372_07_00" / "sharp" / "000001.png"
    assert [p.sequence for p in find_pairs(root, split="test")] == ["GOPR0384_11_00"] * 2


def test_gopro_root_with_both_splits_asks_for_one(tmp_path):
    root = _gopro(tmp_path / "GOPRO_Large")
    with pytest.raises(DatasetError, match="split") as exc:
        find_pairs(root)
    assert "train" in _one_line(exc) and "test" in str(exc.value)
    with pytest.raises(DatasetError, match="'val'") as exc:
        find_pairs(root, split="val")
    assert "(it has: test, train)" in _one_line(exc)


def test_gopro_root_with_one_split_needs_no_split(tmp_path):
    _sequence(tmp_path / "test" / "GOPR0384_11_00", n=2)
    assert len(find_pairs(tmp_path)) == 2


def test_split_folder(tmp_path):
    root = _gopro(tmp_path / "GOPRO_Large")
    pairs = find_pairs(root / "train")
    assert pairs == find_pairs(root, split="train")
    assert find_pairs(root / "train", split="train") == pairs  # the folder is that split already
    with pytest.raises(DatasetError, match="looks like the 'train' split") as exc:
        find_pairs(root / "train", split="test")  # would silently score training data
    _one_line(exc)


def test_split_folder_ignores_folders_that_are_not_sequences(tmp_path):
    _sequence(tmp_path / "GOPR0001_00_00", n=2)
    (tmp_path / "notes").mkdir()
    (tmp_path / ".cache" / "sharp").mkdir(parents=True)
    assert {p.sequence for p in find_pairs(tmp_path)} == {"GOPR0001_00_00"}


def test_single_sequence_folder_like_the_seed(tmp_path, monkeypatch):
    seq = _sequence(tmp_path / "GOPR0372_07_00", n=3)
    pairs = find_pairs(seq)
    assert [p.name for p in pairs] == [f"GOPR0372_07_00/00000{i}.png" for i in (1, 2, 3)]
    assert find_pairs(seq, split="train") == pairs  # no split folders: the split does not apply
    monkeypatch.chdir(seq)
    assert [p.name for p in find_pairs(".")] == [p.name for p in pairs]


def test_flat_layout_directly_and_under_a_split(tmp_path):
    direct = _flat(tmp_path / "direct", ["a.png", "b.png"])
    pairs = find_pairs(direct)
    assert [(p.name, p.sequence) for p in pairs] == [("a.png", ""), ("b.png", "")]
    assert pairs[0].input == direct / "input" / "a.png" and pairs[0].target == direct / "target" / "a.png"

    nested = tmp_path / "nafnet"
    _flat(nested / "train", ["x.png", "y.png", "z.png"])
    _flat(nested / "test", ["t.png"])
    assert [p.name for p in find_pairs(nested, split="test")] == ["t.png"]
    assert len(find_pairs(nested, split="train")) == 3


def test_flat_layout_missing_half(tmp_path):
    _png(tmp_path / "input" / "a.png", _noise())
    with pytest.raises(DatasetError, match="no target/ folder") as exc:
        find_pairs(tmp_path)
    _one_line(exc)


def test_explicit_folders_pair_by_name_in_natural_order(tmp_path):
    names = ["frame10.png", "frame2.png", "frame1.png"]
    for i, name in enumerate(names):
        _png(tmp_path / "blurry" / name, _noise(seed=i))
        _png(tmp_path / "sharp" / name, _noise(seed=i + 10))
    # neither hidden files (macOS resource forks) nor non-images count
    (tmp_path / "blurry" / "._frame1.png").write_bytes(b"\0\0")
    (tmp_path / "sharp" / "notes.txt").write_text("hi")
    pairs = pairs_from_folders(tmp_path / "blurry", tmp_path / "sharp")
    assert [p.name for p in pairs] == ["frame1.png", "frame2.png", "frame10.png"]
    tagged = pairs_from_folders(str(tmp_path / "blurry"), str(tmp_path / "sharp"), sequence="walk")
    assert tagged[0] == Pair(tmp_path / "blurry" / "frame1.png", tmp_path / "sharp" / "frame1.png",
                             "walk/frame1.png", "walk")


@pytest.mark.parametrize("kind", ["blur", "blur_gamma"])
def test_input_kind_picks_the_folder(tmp_path, kind):
    root = _gopro(tmp_path)
    pairs = find_pairs(root, split="train", input_kind=kind)
    assert {p.input.parent.name for p in pairs} == {kind}
    assert {p.target.parent.name for p in pairs} == {"sharp"}


def test_unknown_input_kind(tmp_path):
    with pytest.raises(DatasetError, match="blur_gamma, blur"):
        find_pairs(_sequence(tmp_path / "s"), input_kind="sharp")


def test_missing_input_kind_names_the_other(tmp_path):
    seq = _sequence(tmp_path / "GOPR0001_00_00", kinds=("blur", "sharp"))
    with pytest.raises(DatasetError, match="no blur_gamma/ folder but has blur/") as exc:
        find_pairs(seq)
    assert "--input blur" in _one_line(exc) and str(seq) in str(exc.value)
    assert len(find_pairs(seq, input_kind="blur")) == 3


def test_missing_sharp_folder(tmp_path):
    _sequence(tmp_path / "GOPR0001_00_00")
    _sequence(tmp_path / "GOPR0002_00_00", kinds=("blur_gamma",))
    with pytest.raises(DatasetError, match="GOPR0002_00_00 has no sharp/"):
        find_pairs(tmp_path)


def test_root_problems(tmp_path):
    with pytest.raises(DatasetError, match="does not exist") as exc:
        find_pairs(tmp_path / "nowhere")
    assert str(tmp_path / "nowhere") in _one_line(exc)
    with pytest.raises(DatasetError, match="not a folder"):
        find_pairs(_png(tmp_path / "photo.png", _noise()))
    (tmp_path / "holiday" / "day1").mkdir(parents=True)
    with pytest.raises(DatasetError, match="no dataset layout recognized") as exc:
        find_pairs(tmp_path / "holiday")
    message = _one_line(exc)
    for layout in ("train/", "sharp/", "blur_gamma/", "input/ + target/"):
        assert layout in message


def test_empty_dataset(tmp_path):
    for kind in ("blur_gamma", "sharp"):
        (tmp_path / "GOPR0001_00_00" / kind).mkdir(parents=True)
    with pytest.raises(DatasetError, match="empty") as exc:
        find_pairs(tmp_path / "GOPR0001_00_00")
    assert "blur_gamma" in _one_line(exc)
    with pytest.raises(DatasetError, match="empty"):
        check_pairs([])
    with pytest.raises(DatasetError, match="empty"):
        PairedImages([])


def test_only_one_side_has_images(tmp_path):
    _png(tmp_path / "target" / "a.png", _noise())
    (tmp_path / "input").mkdir()
    with pytest.raises(DatasetError, match="no input images in"):
        find_pairs(tmp_path)


def test_unmatched_names_are_listed_with_counts(tmp_path):
    for i in range(1, 10):
        _png(tmp_path / "in" / f"{i:06d}.png", _noise())
    for i in [1, 2, 42]:
        _png(tmp_path / "out" / f"{i:06d}.png", _noise())
    with pytest.raises(DatasetError) as exc:
        pairs_from_folders(tmp_path / "in", tmp_path / "out")
    message = _one_line(exc)
    assert "7 input(s) without a target (000003.png, 000004.png, 000005.png, 000006.png, 000007.png, ...)" \
        in message
    assert "000008.png" not in message
    assert "1 target(s) without an input (000042.png)" in message
    assert str(tmp_path / "in") in message and str(tmp_path / "out") in message


def test_names_differing_only_in_suffix_get_a_hint(tmp_path):
    _png(tmp_path / "in" / "a.png", _noise())
    (tmp_path / "out").mkdir()
    Image.fromarray(_noise()).save(tmp_path / "out" / "a.jpg")
    with pytest.raises(DatasetError, match="suffix included"):
        pairs_from_folders(tmp_path / "in", tmp_path / "out")


# Checks -------------------------------------------------------------------------------------------------


def test_size_mismatch_names_both_files_and_sizes(tmp_path):
    _flat(tmp_path, ["a.png", "b.png"])
    _png(tmp_path / "target" / "b.png", _noise((8, 10)))
    pairs = find_pairs(tmp_path)
    with pytest.raises(DatasetError) as exc:
        check_pairs(pairs)
    message = _one_line(exc)
    assert f"input {tmp_path / 'input' / 'b.png'} is 20×16" in message
    assert f"target {tmp_path / 'target' / 'b.png'} is 10×8" in message
    with pytest.raises(DatasetError, match="sizes differ"):
        PairedImages(pairs)
    check_pairs(pairs, check_sizes=False)  # names and files are fine


def test_size_check_follows_exif_orientation(tmp_path):
    """A sideways-stored JPEG with orientation 6 is displayed (and decoded by io) at its rotated size."""
    img = Image.fromarray(_noise((20, 16)))  # stored 16 wide, 20 high
    exif = Image.Exif()
    exif[0x0112] = 6
    img.save(tmp_path / "in.jpg", exif=exif.tobytes())
    _png(tmp_path / "tgt.png", _noise((16, 20)))  # displayed size of the input: 20 wide, 16 high
    pair = Pair(tmp_path / "in.jpg", tmp_path / "tgt.png", "in", "")
    check_pairs([pair])
    inp, tgt, _ = PairedImages([pair], crop=None, augment=False)[0]
    assert inp.shape == tgt.shape == (3, 16, 20)


def test_missing_files_and_duplicate_names(tmp_path):
    pairs = find_pairs(_flat(tmp_path, ["a.png", "b.png"]))
    (tmp_path / "target" / "a.png").unlink()
    with pytest.raises(DatasetError, match="1 image file") as exc:
        check_pairs(pairs)
    assert str(tmp_path / "target" / "a.png") in _one_line(exc)
    with pytest.raises(DatasetError, match=r"share the name 'b\.png'"):
        check_pairs([pairs[1], pairs[1]])


def test_unreadable_header_is_named(tmp_path):
    _flat(tmp_path, ["a.png", "b.png"])
    (tmp_path / "input" / "b.png").write_bytes(b"this is not a png")
    with pytest.raises(ImageError) as exc:
        check_pairs(find_pairs(tmp_path))
    assert str(tmp_path / "input" / "b.png") in _one_line(exc)


def test_undecodable_pixels_are_named_when_loaded(tmp_path):
    _flat(tmp_path, ["a.png"], size=(64, 64))
    broken = tmp_path / "target" / "a.png"
    broken.write_bytes(broken.read_bytes()[: broken.stat().st_size // 2])  # header intact, pixels cut
    dataset = PairedImages(find_pairs(tmp_path), crop=None, augment=False)  # headers pass
    with pytest.raises(ImageError) as exc:
        dataset[0]
    assert str(broken) in _one_line(exc)


# Holding out --------------------------------------------------------------------------------------------


def _fake_pairs(lengths: dict[str, int]) -> list[Pair]:
    return [
        Pair(Path(f"{s}/in/{i:06d}.png"), Path(f"{s}/gt/{i:06d}.png"), f"{s}/{i:06d}.png", s)
        for s, n in lengths.items() for i in range(1, n + 1)
    ]


def test_hold_out_keeps_sequences_whole_and_is_deterministic():
    pairs = _fake_pairs({f"GOPR{k:04d}_00_00": 10 + k for k in range(12)})
    train, val = hold_out_sequences(pairs, fraction=0.2, seed=3)
    assert not {p.sequence for p in train} & {p.sequence for p in val}
    assert sorted(train + val, key=pairs.index) == pairs and train == [p for p in pairs if p in train]
    assert len(val) >= 0.2 * len(pairs)
    assert hold_out_sequences(pairs, fraction=0.2, seed=3) == (train, val)
    shuffled = pairs[::-1]
    assert {p.name for p in hold_out_sequences(shuffled, 0.2, seed=3)[1]} == {p.name for p in val}
    others = {frozenset(p.sequence for p in hold_out_sequences(pairs, 0.2, seed=s)[1]) for s in range(8)}
    assert len(others) > 1  # the seed matters


def test_hold_out_leaves_a_sequence_for_training():
    train, val = hold_out_sequences(_fake_pairs({"a": 1, "b": 1}), fraction=0.99)
    assert len(train) == len(val) == 1


def test_hold_out_of_one_sequence_is_its_trailing_block():
    pairs = _fake_pairs({"GOPR0372_07_00": 20})
    train, val = hold_out_sequences(pairs[::-1], fraction=0.1, seed=5)
    assert {p.name for p in val} == {pairs[18].name, pairs[19].name}
    assert len(train) == 18
    assert hold_out_sequences(pairs, fraction=0.01) == (pairs[:-1], pairs[-1:])  # at least one each side
    assert hold_out_sequences(pairs[:2], fraction=0.9) == (pairs[:1], pairs[1:2])


def test_hold_out_refuses_what_cannot_be_split():
    with pytest.raises(DatasetError, match="at least 2 pairs"):
        hold_out_sequences(_fake_pairs({"a": 1}))
    with pytest.raises(ValueError, match="fraction"):
        hold_out_sequences(_fake_pairs({"a": 5}), fraction=1.0)


# Serving ------------------------------------------------------------------------------------------------

def _flip_turn(a: np.ndarray, turns: int, mirror: bool) -> np.ndarray:
    """One of the 8 flips/turns of the square, on the (rows, columns) axes of ``(..., H, W, 3)``."""
    a = np.rot90(a, turns, axes=(-3, -2))
    return a[..., ::-1, :] if mirror else a


_D4 = [(turns, mirror) for turns in range(4) for mirror in (False, True)]


def _hwc(t: torch.Tensor) -> np.ndarray:
    assert t.dtype == torch.uint8 and t.dim() == 3 and t.shape[0] == 3
    return t.permute(1, 2, 0).numpy()


def _placement(patch: np.ndarray, image: np.ndarray) -> tuple[int, int, int]:
    """(transform index, top, left) of the crop of ``image`` that ``patch`` is a flip/turn of."""
    c = patch.shape[0]
    windows = np.lib.stride_tricks.sliding_window_view(image, (c, c, 3))[:, :, 0]  # (Y, X, c, c, 3)
    found = [
        (t, int(y), int(x))
        for t, (turns, mirror) in enumerate(_D4)
        for y, x in zip(*np.nonzero((_flip_turn(windows, turns, mirror) == patch).all(axis=(2, 3, 4))),
                        strict=True)
    ]
    assert len(found) == 1, found
    return found[0]


def test_augmented_crops_of_identical_images_stay_identical(tmp_path):
    img = _noise(seed=7)
    pair = Pair(_png(tmp_path / "in.png", img), _png(tmp_path / "gt.png", img), "p", "")
    dataset = PairedImages([pair], crop=8)
    torch.manual_seed(0)
    seen = set()
    for _ in range(64):
        inp, tgt, name = dataset[0]
        assert name == "p" and inp.shape == (3, 8, 8) and inp.is_contiguous()
        assert torch.equal(inp, tgt)
        seen.add(_placement(_hwc(inp), img))
    assert {t for t, _, _ in seen} == set(range(8))  # every flip/turn occurs
    assert len({y for _, y, _ in seen}) > 3 and len({x for _, _, x in seen}) > 3  # crops move both ways


def test_augmented_crops_keep_a_pixelwise_relation(tmp_path):
    """With target = f(input) pixel by pixel, any misalignment of the two crops breaks the relation."""
    img = _noise(seed=8)
    pair = Pair(_png(tmp_path / "in.png", img), _png(tmp_path / "gt.png", 255 - img), "p", "")
    dataset = PairedImages([pair], crop=8)
    torch.manual_seed(1)
    for _ in range(64):
        inp, tgt, _ = dataset[0]
        assert torch.equal(tgt, 255 - inp)
        _placement(_hwc(inp), img)


def test_shuffled_colours_permute_input_and_target_alike(tmp_path):
    """``shuffle_colors`` gives each crop one of the 6 channel orders, the same in input and target:
    the target is the input XOR a key per channel, so the key found in channel j names the channel both
    came from. Without it the channels keep their order."""
    img = _noise(seed=10)
    keys = np.array([0x11, 0x22, 0x44], dtype=np.uint8)
    pair = Pair(_png(tmp_path / "in.png", img), _png(tmp_path / "gt.png", img ^ keys), "p", "")
    torch.manual_seed(2)
    shuffled, plain = PairedImages([pair], crop=8, shuffle_colors=True), PairedImages([pair], crop=8)
    orders = set()
    for _ in range(64):
        inp, tgt, _ = shuffled[0]
        found = _hwc(inp) ^ _hwc(tgt)
        order = [int(np.flatnonzero(keys == found[0, 0, j])[0]) for j in range(3)]
        assert sorted(order) == [0, 1, 2] and (found == keys[order]).all()
        orders.add(tuple(order))
        inp, tgt, _ = plain[0]
        assert (_hwc(inp) ^ _hwc(tgt) == keys).all()
    assert len(orders) == 6


def _blur_u8(img: np.ndarray) -> np.ndarray:
    """A horizontal 5-pixel motion blur the way unblur.synth averages sub-frames: in linear light."""
    light = (img.astype(np.float64) / 255.0) ** GAMMA
    mean = np.mean([np.roll(light, s, axis=1) for s in range(-2, 3)], axis=0)
    return np.round(mean ** (1.0 / GAMMA) * 255.0).astype(np.uint8)


def test_mixed_colours_keep_the_pair_a_true_blur():
    """``_mix_colors`` mixes the channels in linear light, so mixing a (sharp, blurred) pair gives the pair
    that blurring the mixed sharp image would: within the 8-bit rounding of the two paths. Mixing the
    encoded values instead misses by many levels on this noise."""
    torch.manual_seed(3)
    sharp = _noise((32, 32), seed=11)
    blurred = _blur_u8(sharp)
    results = set()
    for _ in range(8):
        mixed_blur, mixed_sharp = _mix_colors(blurred, sharp)
        gap = np.abs(mixed_blur.astype(int) - _blur_u8(mixed_sharp).astype(int))
        assert gap.max() <= 2, gap.max()
        assert not np.array_equal(mixed_sharp, sharp)  # it did change the colours
        results.add(mixed_sharp.tobytes())
    assert len(results) == 8  # a new matrix each draw


def test_mixed_colours_change_input_and_target_alike(tmp_path):
    """With ``mix_colors`` a pair whose target is its input stays equal after the mix (one matrix for
    both), and the crop's colours differ from the same crop without the mix."""
    img = _noise(seed=12)
    pair = Pair(_png(tmp_path / "in.png", img), _png(tmp_path / "gt.png", img), "p", "")
    mixed, plain = PairedImages([pair], crop=8, mix_colors=True), PairedImages([pair], crop=8)
    for seed in range(16):
        torch.manual_seed(seed)
        inp, tgt, _ = mixed[0]
        torch.manual_seed(seed)
        unmixed, _, _ = plain[0]  # the same crop: the mix draws after the crop and the flips
        assert torch.equal(inp, tgt) and not torch.equal(inp, unmixed)


def test_evaluation_serves_full_frames(tmp_path):
    pairs = find_pairs(_flat(tmp_path, ["a.png", "b.png"]))
    inp, tgt, name = PairedImages(pairs, crop=None, augment=False)[1]
    assert name == "b.png"
    assert np.array_equal(_hwc(inp), _noise(seed=1)) and np.array_equal(_hwc(tgt), _noise(seed=1001))


def test_crop_without_augment_is_the_centre(tmp_path):
    pairs = find_pairs(_flat(tmp_path, ["a.png"]))
    dataset = PairedImages(pairs, crop=8, augment=False)
    inp, _, _ = dataset[0]
    assert np.array_equal(_hwc(inp), _noise(seed=0)[4:12, 6:14])
    assert torch.equal(dataset[0][0], inp)


def test_full_frame_augment_keeps_the_shape(tmp_path):
    img = _noise(seed=9)
    pair = Pair(_png(tmp_path / "in.png", img), _png(tmp_path / "gt.png", img), "p", "")
    dataset = PairedImages([pair], crop=None, augment=True)
    torch.manual_seed(0)
    outputs = [_hwc(dataset[0][0]) for _ in range(32)]
    assert all(o.shape == (*SIZE, 3) for o in outputs)
    flips = [img, img[::-1], img[:, ::-1], img[::-1, ::-1]]
    assert all(any(np.array_equal(o, f) for f in flips) for o in outputs)
    assert len({o.tobytes() for o in outputs}) == 4


def test_small_images_are_reflect_padded_up_to_the_crop(tmp_path):
    img = _noise((5, 20), seed=11)  # shorter than the crop in height only
    pair = Pair(_png(tmp_path / "in.png", img), _png(tmp_path / "gt.png", 255 - img), "p", "")
    with pytest.warns(UserWarning, match="1 of 1 pairs are smaller than the 8 px crop"):
        dataset = PairedImages([pair], crop=8, augment=False)
    padded = np.pad(img, ((0, 3), (0, 0), (0, 0)), mode="reflect")  # rows 0..4, then 3, 2, 1
    inp, tgt, _ = dataset[0]
    assert inp.shape == (3, 8, 8)
    assert np.array_equal(_hwc(inp), padded[:, 6:14]) and torch.equal(tgt, 255 - inp)

    tiny = _noise((3, 2), seed=12)  # smaller than the crop both ways: mirrored repeatedly
    pair = Pair(_png(tmp_path / "a.png", tiny), _png(tmp_path / "b.png", tiny), "q", "")
    with pytest.warns(UserWarning):
        dataset = PairedImages([pair], crop=8)
    torch.manual_seed(0)
    for _ in range(8):
        inp, tgt, _ = dataset[0]
        assert inp.shape == (3, 8, 8) and torch.equal(inp, tgt)
        _placement(_hwc(inp), np.pad(tiny, ((0, 5), (0, 6), (0, 0)), mode="reflect"))


def test_large_enough_images_do_not_warn(tmp_path):
    pairs = find_pairs(_flat(tmp_path, ["a.png"]))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        PairedImages(pairs, crop=16)


def test_cache_keeps_decoded_images_but_never_hands_them_out(tmp_path):
    pairs = find_pairs(_flat(tmp_path, ["a.png", "b.png"]))
    dataset = PairedImages(pairs, crop=None, augment=False, cache=True)
    dataset.preload([0])
    first, _, _ = dataset[0]
    first.zero_()  # a caller writing into its batch must not corrupt the cache
    (tmp_path / "input" / "a.png").unlink()
    again, _, _ = dataset[0]  # served from memory
    assert np.array_equal(_hwc(again), _noise(seed=0))
    clone = pickle.loads(pickle.dumps(dataset))  # what a spawned worker receives: no pixels
    assert clone._cache == {} and len(pickle.dumps(dataset)) < 2000
    with pytest.raises(ImageError):
        clone[0]
    with pytest.raises(ValueError, match="cache=True"):
        PairedImages(pairs[1:], crop=None).preload()


def test_crop_must_be_positive(tmp_path):
    with pytest.raises(ValueError, match="crop"):
        PairedImages(find_pairs(_flat(tmp_path, ["a.png"])), crop=0)


def test_crops_follow_torch_manual_seed(tmp_path):
    dataset = PairedImages(find_pairs(_flat(tmp_path, ["a.png"])), crop=8)

    def draws(seed: int) -> list[torch.Tensor]:
        torch.manual_seed(seed)
        return [dataset[0][0] for _ in range(4)]

    first, second = draws(0), draws(0)
    assert all(torch.equal(a, b) for a, b in zip(first, second, strict=True))
    assert not all(torch.equal(a, b) for a, b in zip(first, draws(1), strict=True))


def test_dataloader_workers_are_reproducible(tmp_path):
    dataset = PairedImages(find_pairs(_flat(tmp_path, [f"{i}.png" for i in range(6)])), crop=8)

    def epoch(seed: int) -> list[tuple[torch.Tensor, torch.Tensor, list[str]]]:
        torch.manual_seed(seed)
        # no shuffling: any difference between seeds comes from the crops drawn in the workers
        return list(DataLoader(dataset, batch_size=2, num_workers=2))

    first, second, other = epoch(0), epoch(0), epoch(1)
    assert len(first) == 3
    inp, tgt, names = first[0]
    assert inp.dtype == torch.uint8 and inp.shape == tgt.shape == (2, 3, 8, 8) and list(names) == ["0.png", "1.png"]
    for (a_in, a_tgt, a_names), (b_in, b_tgt, b_names) in zip(first, second, strict=True):
        assert a_names == b_names and torch.equal(a_in, b_in) and torch.equal(a_tgt, b_tgt)
    assert not any(torch.equal(a[0], b[0]) for a, b in zip(first, other, strict=True))


def test_to_device_float():
    x = torch.tensor([0, 51, 255], dtype=torch.uint8).view(1, 3, 1, 1).expand(2, 3, 4, 5)
    y = to_device_float(x, "cpu")
    assert y.dtype == torch.float32 and torch.allclose(y[0, :, 0, 0], torch.tensor([0.0, 0.2, 1.0]))
    z = to_device_float(x, torch.device("cpu"), channels_last=True)
    assert z.is_contiguous(memory_format=torch.channels_last) and torch.equal(z, y)
    with pytest.raises(TypeError, match="uint8"):
        to_device_float(y, "cpu")
