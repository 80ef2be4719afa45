"""Class probabilities of whole frames: exact window blending for any frame size and window,
overlaps as configured, and a refusal of a network output that is not finite."""

import numpy as np
import pytest
import torch
from torch import nn

from pipeline.calibration import calibrate
from pipeline.core.errors import NonFiniteOutput
from pipeline.inference.predictor import Predictor, gaussian_importance, window_starts


class Pointwise(nn.Module):
    """A 1x1 convolution: its output at a pixel depends on that pixel only."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(2, 6, 1)  # the two channels of charge_significance

    def forward(self, x):
        return self.conv(x)


def test_gaussian_weights_peak_in_the_centre_and_never_vanish():
    w = gaussian_importance(64, 0.125)
    assert w.max() == pytest.approx(w[31:33, 31:33].max()) and w.min() > 0
    np.testing.assert_allclose(w, w.T)
    np.testing.assert_allclose(w, w[::-1, ::-1])
    rect = gaussian_importance(32, 0.125, 96)
    assert rect.shape == (32, 96) and rect.min() > 0
    np.testing.assert_allclose(rect, rect[::-1, ::-1])


@pytest.mark.parametrize("shape", [(70, 45), (64, 64), (20, 100), (33, 129)])
@pytest.mark.parametrize("tta", [False, True])
# square windows; windows shortened along the frame's short axis; one padded window
@pytest.mark.parametrize("window", [32, 64, 1024])
def test_blending_reproduces_a_pointwise_model_for_any_frame_size(tiny, shape, tta, window):
    cfg = tiny.infer.model_copy(update={"overlap": 0.5, "batch_size": 3, "tta": tta})
    predictor = Predictor(Pointwise(), window, tiny.normalise, cfg, torch.device("cpu"))
    charge = np.random.default_rng(1).normal(0, 50, shape).astype(np.float32)
    probs = predictor.probabilities(charge, 2.0)
    x = torch.from_numpy(calibrate.normalise(charge, 2.0, tiny.normalise))[None]
    expected = Pointwise()(x).softmax(dim=1)[0].detach().numpy()
    assert probs.shape == (6, *shape)
    np.testing.assert_allclose(probs, expected, atol=1e-5)


def test_windows_overlap_as_configured():
    assert window_starts(128, 64, 0.5) == [0, 32, 64]
    assert window_starts(100, 64, 0.5) == [0, 32, 36]
    assert window_starts(40, 64, 0.5) == [0]


class Overflowing(Pointwise):
    """Finite weights whose output overflows: what a diverged or fp16-overflowing model gives."""

    def forward(self, x):
        return self.conv(x) * float("inf")


def test_a_network_output_that_is_not_finite_is_an_error_not_a_background_map(tiny):
    predictor = Predictor(Overflowing(), 64, tiny.normalise, tiny.infer, torch.device("cpu"))
    charge = np.random.default_rng(1).normal(0, 5, (64, 64)).astype(np.float32)
    with pytest.raises(NonFiniteOutput, match="the network output is not finite"):
        predictor.probabilities(charge, 2.0)
