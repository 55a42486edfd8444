"""Box, anchor, mask and post-processing machinery (mmdetection 2.x ``mmdet.core`` names)."""
from .anchor import *  # noqa: F401,F403
from .bbox import *  # noqa: F401,F403
from .mask import *  # noqa: F401,F403
from .post_processing import *  # noqa: F401,F403
from .utils import *  # noqa: F401,F403
from . import anchor, bbox, mask, post_processing, utils

__all__ = anchor.__all__ + bbox.__all__ + mask.__all__ + post_processing.__all__ + utils.__all__
