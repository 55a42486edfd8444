"""Public high-level API (mmdetection 2.x names)."""
from .inference import inference_detector, init_detector, show_result_pyplot
from .test import fuse_conv_bn, multi_gpu_test, single_gpu_test
from .train import collect_env_info, init_random_seed, set_random_seed, train_detector

__all__ = ["init_detector", "inference_detector", "show_result_pyplot", "train_detector", "set_random_seed",
           "init_random_seed", "collect_env_info", "single_gpu_test", "multi_gpu_test", "fuse_conv_bn"]
