"""AnchorGenerator, valid flags, inside flags and images_to_levels (mmdetection 2.x numerics)."""
from __future__ import annotations

import pytest
import torch

from mmdet.core.anchor import (ANCHOR_GENERATORS, AnchorGenerator, anchor_inside_flags, build_anchor_generator,
                               build_prior_generator, images_to_levels)

RPN_ANCHORS = dict(type="AnchorGenerator", scales=[8], ratios=[0.5, 1.0, 2.0], strides=[4, 8, 16, 32, 64])


def test_registered_and_built():
    assert ANCHOR_GENERATORS.get("AnchorGenerator") is AnchorGenerator
    assert isinstance(build_anchor_generator(RPN_ANCHORS), AnchorGenerator)
    gen = build_prior_generator(RPN_ANCHORS)
    assert gen.num_levels == 5 and gen.num_base_priors == [3] * 5 and gen.num_base_anchors == [3] * 5


def test_base_anchors_match_spec():
    gen = build_prior_generator(RPN_ANCHORS)
    torch.testing.assert_close(gen.base_anchors[0], torch.tensor([[-22.6274, -11.3137, 22.6274, 11.3137],
                                                                  [-16.0, -16.0, 16.0, 16.0],
                                                                  [-11.3137, -22.6274, 11.3137, 22.6274]]),
                               atol=1e-4, rtol=0)
    square_sides = [(b[1, 2] - b[1, 0]).item() for b in gen.base_anchors]
    assert square_sides == [32.0, 64.0, 128.0, 256.0, 512.0]
    # float32 values are computed as w * w_ratio * scale (not rounded)
    w_ratio = 1 / torch.sqrt(torch.tensor(0.5))
    assert gen.base_anchors[0][0, 2].item() == (4 * w_ratio * torch.tensor(8.0) * 0.5).item()


def test_grid_order_is_y_x_anchor():
    gen = build_prior_generator(RPN_ANCHORS)
    h, w = 5, 7
    anchors = gen.grid_priors([(h, w), (3, 4), (2, 2), (1, 1), (1, 1)], device="cpu")
    assert [a.shape[0] for a in anchors] == [h * w * 3, 36, 12, 3, 3]
    for y, x, a in [(0, 0, 0), (2, 3, 1), (4, 6, 2), (1, 0, 2)]:
        expected = gen.base_anchors[0][a] + torch.tensor([x * 4.0, y * 4.0, x * 4.0, y * 4.0])
        assert torch.equal(anchors[0][(y * w + x) * 3 + a], expected)
    # same as the head output layout permute(0, 2, 3, 1).reshape(-1, 4) of an (A*4, H, W) map
    sparse = gen.sparse_priors(torch.arange(h * w * 3), (h, w), 0, device="cpu")
    assert torch.equal(sparse, anchors[0])
    assert torch.equal(gen.grid_anchors([(h, w)] + [(1, 1)] * 4, device="cpu")[0], anchors[0])


def test_octave_scales_centers_and_bad_args():
    gen = AnchorGenerator(strides=[8], ratios=[1.0], octave_base_scale=4, scales_per_octave=3)
    torch.testing.assert_close(gen.scales, torch.tensor([4.0, 4 * 2 ** (1 / 3), 4 * 2 ** (2 / 3)]))
    gen = AnchorGenerator(strides=[8], ratios=[1.0], scales=[1.0], center_offset=0.5)
    assert gen.base_anchors[0].tolist() == [[0.0, 0.0, 8.0, 8.0]]
    with pytest.raises(ValueError, match="either scales or"):
        AnchorGenerator(strides=[8], ratios=[1.0])
    with pytest.raises(ValueError, match="center_offset must be in"):
        AnchorGenerator(strides=[8], ratios=[1.0], scales=[1.0], center_offset=2)
    with pytest.raises(ValueError, match="1 feature map sizes"):
        build_prior_generator(RPN_ANCHORS).grid_priors([(2, 2)], device="cpu")


def test_valid_flags_use_ceil_of_pad_shape():
    gen = build_prior_generator(dict(RPN_ANCHORS, strides=[16]))
    (flags,) = gen.valid_flags([(4, 5)], (33, 40, 3), device="cpu")  # ceil(33/16)=3 rows, ceil(40/16)=3 cols
    grid = flags.view(4, 5, 3)
    assert grid[:3, :3].all() and not grid[3].any() and not grid[:, 3:].any()
    assert flags.dtype == torch.bool and flags.numel() == 60


def test_anchor_inside_flags_border_rule():
    anchors = torch.tensor([[0.0, 0, 10, 10], [-1, 0, 10, 10], [0, 0, 20, 10], [0, 0, 19.5, 10], [-3, -3, 21, 12]])
    valid = torch.tensor([True, True, True, True, False])
    assert anchor_inside_flags(anchors, valid, (12, 20), 0).tolist() == [True, False, False, True, False]
    assert anchor_inside_flags(anchors, valid, (12, 20), 1).tolist() == [True, True, True, True, False]
    assert anchor_inside_flags(anchors, valid, (12, 20), -1).tolist() == valid.tolist()


def test_images_to_levels():
    per_image = [torch.arange(6), torch.arange(6) + 10]
    levels = images_to_levels(per_image, [4, 2])
    assert [lv.tolist() for lv in levels] == [[[0, 1, 2, 3], [10, 11, 12, 13]], [[4, 5], [14, 15]]]
