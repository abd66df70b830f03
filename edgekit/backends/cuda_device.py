"""Whether torch sees a CUDA device: shared by the GPU backends (AOTInductor, TensorRT), neither importing the other."""

from __future__ import annotations

__all__ = ["cuda_missing_reason"]


def cuda_missing_reason() -> str | None:
    """Why CUDA cannot be used from torch here, or None."""
    import torch

    if torch.cuda.is_available():
        return None
    build_kind = f"CUDA {torch.version.cuda}" if torch.version.cuda else "a CPU-only build"
    return f"no CUDA device: torch {torch.__version__} ({build_kind}) sees no GPU"
