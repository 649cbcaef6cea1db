"""unblur: sharpen motion-blurred photos with a small, fast CNN.

>>> from unblur import StudentCNNv3, CombinedLoss, psnr, ssim
"""

from importlib.metadata import PackageNotFoundError, version

from unblur.losses import CombinedLoss
from unblur.metrics import psnr, ssim
from unblur.models import MODELS, StudentCNNv3, build_model

try:
    __version__ = version("unblur")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0+unknown"

__all__ = ["MODELS", "CombinedLoss", "StudentCNNv3", "__version__", "build_model", "psnr", "ssim"]
