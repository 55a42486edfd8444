from .dist_utils import reduce_mean
from .misc import multi_apply, select_single_mlvl, unmap

__all__ = ["multi_apply", "unmap", "reduce_mean", "select_single_mlvl"]
