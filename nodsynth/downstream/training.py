"""Training a patch classifier and scoring patches with it; seeded, so the same seed gives the same
predictions on a CPU.

Each epoch visits the training patches in a seeded random order in mini-batches, every patch flipped along
each axis with probability 1/2 (seeded); cross-entropy, Adam. With validation patches, the network kept is
the one of the epoch with the lowest validation loss, and training stops after ``patience`` epochs without a
lower one (early stopping). Scores are the softmax class probabilities.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np


@dataclass(frozen=True)
class TrainSettings:
    epochs: int
    batch_size: int
    learning_rate: float
    device: str = "cpu"
    patience: int = 0

    def as_dict(self) -> dict:
        return {"epochs": self.epochs, "batch_size": self.batch_size, "learning_rate": self.learning_rate,
                "optimiser": "Adam", "loss": "cross-entropy", "augmentation": "random flips x, y, z",
                "early_stopping_patience_epochs": self.patience or None}


def _flipped(batch: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    out = batch.copy()
    for b in range(len(out)):
        axes = [a for a in range(3) if rng.random() < 0.5]
        if axes:
            out[b] = np.flip(out[b], axis=axes)
    return out


def _validation_loss(model, patches: np.ndarray, labels: np.ndarray, settings: TrainSettings) -> float:
    probabilities = predict(model, patches, settings.device, settings.batch_size)
    picked = probabilities[np.arange(len(labels)), labels.astype(int)]
    model.train()
    return float(-np.log(np.clip(picked, 1e-12, None)).mean())


def train(model, patches: np.ndarray, labels: np.ndarray, settings: TrainSettings, seed: int,
          progress: Optional[Callable[[float, str], None]] = None,
          validation: Optional[tuple[np.ndarray, np.ndarray]] = None) -> dict:
    """Train ``model`` in place on ``patches`` ``[N, x, y, z]`` with class ``labels`` ``[N]`` (with early stopping
    on ``validation`` = ``(patches, labels)`` when given); returns ``{"epochs_run", "best_epoch", ...}``."""
    import copy

    import torch

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model.to(settings.device).train()
    optimiser = torch.optim.Adam(model.parameters(), lr=settings.learning_rate)
    loss_fn = torch.nn.CrossEntropyLoss()
    best = {"loss": np.inf, "epoch": None, "state": None}
    epoch = 0
    for epoch in range(1, settings.epochs + 1):
        order = rng.permutation(len(patches))
        for start in range(0, len(order), settings.batch_size):
            index = order[start:start + settings.batch_size]
            if len(index) < 2 and len(order) > 1:  # batch norm needs two samples
                continue
            x = torch.from_numpy(_flipped(patches[index], rng)[:, None]).to(settings.device)
            y = torch.from_numpy(labels[index].astype(np.int64)).to(settings.device)
            optimiser.zero_grad()
            loss = loss_fn(model(x), y)
            loss.backward()
            optimiser.step()
        message = f"epoch {epoch}/{settings.epochs}"
        if validation is not None:
            val_loss = _validation_loss(model, *validation, settings)
            message += f" validation loss {val_loss:.4f}"
            if val_loss < best["loss"]:
                best = {"loss": val_loss, "epoch": epoch, "state": copy.deepcopy(model.state_dict())}
            elif settings.patience and epoch - best["epoch"] >= settings.patience:
                break
        if progress:
            progress(epoch / settings.epochs, message)
    if best["state"] is not None:
        model.load_state_dict(best["state"])
    return {"epochs_run": epoch, "best_epoch": best["epoch"],
            "validation_loss": None if best["state"] is None else best["loss"]}


def predict(model, patches: np.ndarray, device: str = "cpu", batch_size: int = 8) -> np.ndarray:
    """Softmax class probabilities ``[N, classes]`` (float64) of ``patches`` ``[N, x, y, z]``."""
    import torch

    model.to(device).eval()
    out = []
    with torch.no_grad():
        for start in range(0, len(patches), batch_size):
            x = torch.from_numpy(np.ascontiguousarray(patches[start:start + batch_size])[:, None]).to(device)
            out.append(torch.softmax(model(x).double(), dim=1).cpu().numpy())
    return np.concatenate(out)
