"""Every registry of the toolbox, in one place (type names follow mmdetection 2.x).

Models share one registry as in mmdetection >= 2.18 (``BACKBONES``, ``NECKS``,
``HEADS``, ``LOSSES``, ``DETECTORS``, ``ROI_EXTRACTORS``, ``SHARED_HEADS`` are
all ``MODELS``), so a type name is unique across them.
"""
from mmdet.engine.registry import Registry

MODELS = Registry("model")
BACKBONES = NECKS = HEADS = LOSSES = DETECTORS = ROI_EXTRACTORS = SHARED_HEADS = MODELS

# building blocks used inside modules (mmcv.cnn in mmdetection 2.x)
CONV_LAYERS = Registry("conv layer")
NORM_LAYERS = Registry("norm layer")
ACTIVATION_LAYERS = Registry("activation layer")
UPSAMPLE_LAYERS = Registry("upsample layer")

# box machinery (mmdet.core in mmdetection 2.x)
ANCHOR_GENERATORS = PRIOR_GENERATORS = Registry("anchor generator")
BBOX_ASSIGNERS = Registry("bbox assigner")
BBOX_SAMPLERS = Registry("bbox sampler")
BBOX_CODERS = Registry("bbox coder")
IOU_CALCULATORS = Registry("iou calculator")
ROI_LAYERS = Registry("roi layer")

# data
DATASETS = Registry("dataset")
PIPELINES = Registry("pipeline")

# engine
HOOKS = Registry("hook")
RUNNERS = Registry("runner")
OPTIMIZERS = Registry("optimizer")
OPTIMIZER_BUILDERS = Registry("optimizer constructor")
