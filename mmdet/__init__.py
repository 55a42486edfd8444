"""mmdet: Mask R-CNN / Cascade Mask R-CNN with vision-transformer backbones on current PyTorch.

Configs, type names and checkpoint keys follow mmdetection 2.x; the engine is
plain PyTorch (torch.distributed, torch.amp), with no mmcv, mmengine or apex.
"""
__version__ = "2.30.0"


def _check_torchvision_ops() -> None:
    """Fail at import with one actionable line if torchvision's C++ ops cannot load."""
    try:
        import torch
        import torchvision  # noqa: F401
        torch.ops.torchvision.nms  # raises if the compiled ops did not load
    except Exception as e:  # noqa: BLE001
        raise ImportError(
            f"mmdet needs torchvision's compiled ops (nms, roi_align), which failed to load ({type(e).__name__}: "
            f"{str(e).splitlines()[0] if str(e) else ''}). Install matching wheels from PyPI: "
            f"pip install --force-reinstall torch torchvision") from None


_check_torchvision_ops()
