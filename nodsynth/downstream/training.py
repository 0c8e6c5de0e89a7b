"""Training a patch classifier and scoring patches with it; seeded, so the same seed gives the same
predictions on a CPU.

Each epoch visits the training patches in a seeded random order in mini-batches, every patch flipped along
each axis with probability 1/2 (seeded); cross-entropy, Adam. Scores are the softmax class probabilities.
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

    def as_dict(self) -> dict:
        return {"epochs": self.epochs, "batch_size": self.batch_size, "learning_rate": self.learning_rate,
                "optimiser": "Adam", "loss": "cross-entropy", "augmentation": "random flips x, y, z"}


def _flipped(batch: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    out = batch.copy()
    for b in range(len(out)):
        axes = [a for a in range(3) if rng.random() < 0.5]
        if axes:
            out[b] = np.flip(out[b], axis=axes)
    return out


def train(model, patches: np.ndarray, labels: np.ndarray, settings: TrainSettings, seed: int,
          progress: Optional[Callable[[float, str], None]] = None):
    """Train ``model`` in place on ``patches`` ``[N, x, y, z]`` with class ``labels`` ``[N]``; returns it."""
    import torch

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model.to(settings.device).train()
    optimiser = torch.optim.Adam(model.parameters(), lr=settings.learning_rate)
    loss_fn = torch.nn.CrossEntropyLoss()
    for epoch in range(settings.epochs):
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
        if progress:
            progress((epoch + 1) / settings.epochs, f"epoch {epoch + 1}/{settings.epochs} loss {loss.item():.4f}")
    return model


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
