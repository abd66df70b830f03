"""Training gives the same weights whatever thread count the process runs with (load, cores, OMP_NUM_THREADS)."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from edgekit.core.config import TrainSettings
from edgekit.model.training import batched_outputs, fit, seed_everything


def _train(process_threads: int) -> tuple[dict[str, torch.Tensor], np.ndarray]:
    saved = torch.get_num_threads()
    torch.set_num_threads(process_threads)  # what OMP_DYNAMIC under load, taskset or another machine changes
    try:
        seed_everything(0)
        model = nn.Sequential(
            nn.Linear(12, 32), nn.BatchNorm1d(32), nn.ReLU(), nn.Linear(32, 32), nn.BatchNorm1d(32), nn.ReLU(),
            nn.Linear(32, 4),
        )  # fmt: skip
        rng = np.random.default_rng(0)
        y = rng.integers(0, 4, 4000)
        x = (rng.normal(0, 1, (4000, 12)) + 0.3 * y[:, None]).astype(np.float32)
        fit(model, x, y, TrainSettings(epochs=3, batch_size=256), desc="train")
        return {k: v.clone() for k, v in model.state_dict().items()}, batched_outputs(model, x)
    finally:
        torch.set_num_threads(saved)


def test_weights_do_not_depend_on_the_process_thread_count() -> None:
    (two, out_two), (one, out_one) = _train(2), _train(1)
    assert torch.get_num_threads() >= 1
    for name in two:
        assert torch.equal(two[name], one[name]), name  # bit for bit, BatchNorm statistics included
    assert np.array_equal(out_two, out_one)


def test_a_softmax_head_is_trained_on_its_logits_with_the_models_own_parameters() -> None:
    from edgekit.model.training import logits_view

    body = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 3))
    model = nn.Sequential(body, nn.Softmax(dim=1))
    view = logits_view(model)
    x = torch.randn(5, 6)
    with torch.no_grad():
        assert torch.equal(view(x), body(x)) and torch.allclose(model(x).sum(1), torch.ones(5))
    assert {id(p) for p in view.parameters()} == {id(p) for p in model.parameters()}
    plain = nn.Sequential(nn.Linear(6, 3))
    assert logits_view(plain) is plain  # no head: the model itself
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 600)
    inputs = (rng.normal(0, 1, (600, 6)) + 3.0 * y[:, None]).astype(np.float32)  # separable classes
    history = fit(model, inputs, y, TrainSettings(epochs=10, batch_size=32, learning_rate=0.01), desc="train")
    # On logits the cross-entropy of separable classes goes towards 0; on a softmax of probabilities it
    # cannot go below -log(e / (e + 2)) = 0.551 for three classes.
    assert history[-1]["loss"] < 0.5 and isinstance(model[1], nn.Softmax)
