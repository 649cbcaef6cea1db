"""Shared fixtures: tiny GoPro-style datasets synthesized from the bundled photos, once per session."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch

# CI and developer machines have 2 cores shared with other work: one intra-op thread per test process
# avoids the two threads fighting (tests check correctness, never speed). Subprocesses set their own.
torch.set_num_threads(1)


@pytest.fixture(scope="session")
def tiny_gopro(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``ROOT/{train,test}/GOPRxxxx_00_00/{blur,blur_gamma,sharp}`` with 64×96 frames (3 photos × 2 pairs each)."""
    from unblur.synth import sample_photos, synthesize

    root = tmp_path_factory.mktemp("tiny_gopro")
    photos = sample_photos()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        synthesize(photos[:3], out=root, split="train", pairs_per_image=2, size=(64, 96), seed=0, progress=False)
        synthesize(photos[3:5], out=root, split="test", pairs_per_image=1, size=(64, 96), seed=1, progress=False)
    return root
