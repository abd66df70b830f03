"""The recipe's trainer: one seeded, deterministic loop for float training, QAT and pruning fine-tunes."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import numpy as np
import torch
from torch import nn

from edgekit.core.config import TrainSettings
from edgekit.core.progress import bar

__all__ = ["batched_outputs", "fit", "logits_view", "seed_everything", "training_threads"]


def logits_view(model: nn.Module) -> nn.Module:
    """The model without a softmax head, sharing its parameters: what a classifier's cross-entropy takes.

    A model whose ``forward`` ends in a softmax (or log-softmax) over the classes would otherwise be
    trained on a softmax of probabilities, which learns slowly and stalls; the model itself keeps its head.
    A model torch.fx cannot trace, or without such a head, is returned as it is.
    """
    from torch import fx

    from edgekit.model.node_kinds import is_softmax, softmax_head

    try:
        traced = fx.symbolic_trace(model)
    except Exception:  # data-dependent control flow: train the model as it is
        return model
    modules = dict(traced.named_modules())
    output = next(n for n in traced.graph.nodes if n.op == "output")
    head = output.args[0]
    if not isinstance(head, fx.Node) or not is_softmax(head, modules) or not softmax_head(head, modules, {}):
        return model
    output.args = (head.args[0],)
    traced.graph.erase_node(head)
    traced.recompile()
    return traced  # its submodules are the model's own: training it trains the model


@contextlib.contextmanager
def training_threads(threads: int) -> Iterator[None]:
    """torch runs on exactly ``threads`` threads inside the block (see ``TrainSettings.threads``)."""
    saved = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(saved)


def seed_everything(seed: int) -> torch.Generator:
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    torch.use_deterministic_algorithms(True)
    return torch.Generator().manual_seed(seed)


def fit(
    model: nn.Module,
    x: np.ndarray,
    y: np.ndarray,
    cfg: TrainSettings,
    *,
    desc: str,
    epochs: int | None = None,
    learning_rate: float | None = None,
    regularizer: Callable[[], torch.Tensor] | None = None,
) -> list[dict[str, float]]:
    """Train ``model`` in place with the recipe's optimizer, batch size and a cosine schedule.

    ``epochs`` and ``learning_rate`` override the recipe's (QAT and fine-tunes are shorter and gentler);
    ``regularizer`` is added to every batch's loss (learned precision's resource term) and its value recorded
    per epoch. Returns the mean loss per epoch.
    """
    n_epochs = cfg.epochs if epochs is None else epochs
    lr = cfg.learning_rate if learning_rate is None else learning_rate
    generator = seed_everything(cfg.seed)
    params = [p for p in model.parameters() if p.requires_grad]
    opt: torch.optim.Optimizer
    if cfg.optimizer == "adam":
        opt = torch.optim.Adam(params, lr=lr, weight_decay=cfg.weight_decay)
    else:
        opt = torch.optim.SGD(params, lr=lr, momentum=0.9, weight_decay=cfg.weight_decay)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(n_epochs, 1))
    # integer labels: a classifier; float targets (a reconstruction): mean squared error
    targets = np.asarray(y)
    loss_fn: nn.Module = nn.CrossEntropyLoss() if np.issubdtype(targets.dtype, np.integer) else nn.MSELoss()
    xt = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    yt = torch.from_numpy(targets if np.issubdtype(targets.dtype, np.integer) else targets.astype(np.float32))
    history: list[dict[str, float]] = []
    trained = logits_view(model) if isinstance(loss_fn, nn.CrossEntropyLoss) else model
    with training_threads(cfg.threads):
        _epochs(trained, xt, yt, cfg, opt, scheduler, loss_fn, generator, n_epochs, desc, history, regularizer)
    model.eval()
    return history


def _epochs(
    model: nn.Module,
    xt: torch.Tensor,
    yt: torch.Tensor,
    cfg: TrainSettings,
    opt: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    loss_fn: nn.Module,
    generator: torch.Generator,
    n_epochs: int,
    desc: str,
    history: list[dict[str, float]],
    regularizer: Callable[[], torch.Tensor] | None = None,
) -> None:
    for epoch in bar(range(n_epochs), desc=desc, total=n_epochs, unit="epoch"):
        model.train()
        order = torch.randperm(len(xt), generator=generator)
        total, count = 0.0, 0
        for i in range(0, len(order), cfg.batch_size):
            idx = order[i : i + cfg.batch_size]
            opt.zero_grad()
            loss = loss_fn(model(xt[idx]), yt[idx])
            if regularizer is not None:
                loss = loss + regularizer()
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
            count += len(idx)
        scheduler.step()
        history.append({"epoch": epoch + 1, "loss": total / max(count, 1)})
        if regularizer is not None:
            with torch.no_grad():
                history[-1]["regularizer"] = float(regularizer())


def batched_outputs(model: nn.Module, x: np.ndarray, batch_size: int = 4096, threads: int = 1) -> np.ndarray:
    """The model's outputs on ``x`` as float32, in eval mode, without gradients, on ``threads`` threads."""
    model.eval()
    with torch.no_grad(), training_threads(threads):
        parts = [model(torch.from_numpy(x[i : i + batch_size])).numpy() for i in range(0, len(x), batch_size)]
    return np.concatenate(parts).astype(np.float32)
