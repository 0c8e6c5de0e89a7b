"""A PNG of several FROC curves on one log-scaled axis, as NodMAISI's Fig. 5 (Pillow only).

The x axis is the average number of false positives per scan, log scale from 1/8 to 8; the y axis
the sensitivity, 0 to 1. Each system is one coloured line with its bootstrap band (when it has
one) and its CPM in the legend.
"""
from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Sequence

import numpy as np

from ..overlay import save_image
from .froc import FP_RATE_NAMES, FP_RATES_PER_SCAN
from .froc_report import PlotCurve

SIZE_PX = (900, 640)
MARGINS_PX = (80, 40, 24, 64)
"""Left, top, right, bottom."""
COLOURS = ((31, 119, 180), (214, 39, 40), (44, 160, 44), (148, 103, 189), (255, 127, 14), (23, 190, 207))
BAND_ALPHA = 48


def _font(size: int):
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1 has one bitmap size
        return ImageFont.load_default()


class _Axes:
    """Maps FP/scan (log) and sensitivity to pixels."""

    def __init__(self) -> None:
        left, top, right, bottom = MARGINS_PX
        self.x0, self.y0 = left, top
        self.width, self.height = SIZE_PX[0] - left - right, SIZE_PX[1] - top - bottom
        self.low, self.high = math.log2(FP_RATES_PER_SCAN[0]), math.log2(FP_RATES_PER_SCAN[-1])

    def x(self, fps: float) -> float:
        return self.x0 + (math.log2(fps) - self.low) / (self.high - self.low) * self.width

    def y(self, sensitivity: float) -> float:
        return self.y0 + (1.0 - sensitivity) * self.height

    def points(self, fps: np.ndarray, sensitivity: np.ndarray) -> list[tuple[float, float]]:
        return [(self.x(float(f)), self.y(float(s))) for f, s in zip(fps, sensitivity)]


def _thin(curve: PlotCurve, points: int = 600) -> np.ndarray:
    """Indices of about ``points`` grid points evenly spread on the log axis (enough for a line)."""
    return np.unique(np.searchsorted(curve.fps, np.geomspace(curve.fps[0], curve.fps[-1], points)).clip(0, len(curve.fps) - 1))


def _frame(image, axes: _Axes, font, title: str) -> None:
    from PIL import Image, ImageDraw

    draw = ImageDraw.Draw(image)
    for sensitivity in np.linspace(0.0, 1.0, 11):
        y = axes.y(sensitivity)
        draw.line([(axes.x0, y), (axes.x0 + axes.width, y)], fill=(225, 225, 225))
        draw.text((axes.x0 - 8, y), f"{sensitivity:.1f}", fill=(0, 0, 0), font=font, anchor="rm")
    for rate, label in zip(FP_RATES_PER_SCAN, FP_RATE_NAMES):
        x = axes.x(rate)
        draw.line([(x, axes.y0), (x, axes.y0 + axes.height)], fill=(225, 225, 225))
        draw.text((x, axes.y0 + axes.height + 8), label, fill=(0, 0, 0), font=font, anchor="mt")
    draw.rectangle([axes.x0, axes.y0, axes.x0 + axes.width, axes.y0 + axes.height], outline=(0, 0, 0))
    draw.text((axes.x0 + axes.width / 2, SIZE_PX[1] - 18), "Average number of false positives per scan",
              fill=(0, 0, 0), font=font, anchor="mm")
    draw.text((axes.x0 + axes.width / 2, 18), title, fill=(0, 0, 0), font=font, anchor="mm")
    label = Image.new("RGBA", (200, 24), (255, 255, 255, 0))
    ImageDraw.Draw(label).text((100, 12), "Sensitivity", fill=(0, 0, 0), font=font, anchor="mm")
    label = label.rotate(90, expand=True)
    image.paste(label, (8, int(axes.y0 + axes.height / 2 - 100)), label)


def plot_froc(curves: Sequence[PlotCurve], path: str | os.PathLike, title: str = "FROC") -> Path:
    """Write the curves (one colour each, legend with CPM) to a PNG, atomically."""
    from PIL import Image, ImageDraw

    axes, font = _Axes(), _font(14)
    image = Image.new("RGB", SIZE_PX, (255, 255, 255))
    _frame(image, axes, font, title)
    for index, curve in enumerate(curves):  # bands first, so that no band tints another system's line
        if curve.lower is not None and curve.upper is not None:
            keep = _thin(curve)
            band = Image.new("RGBA", SIZE_PX, (0, 0, 0, 0))
            outline = (axes.points(curve.fps[keep], curve.upper[keep])
                       + axes.points(curve.fps[keep][::-1], curve.lower[keep][::-1]))
            ImageDraw.Draw(band).polygon(outline, fill=COLOURS[index % len(COLOURS)] + (BAND_ALPHA,))
            image.paste(band, (0, 0), band)
    draw = ImageDraw.Draw(image)
    for index, curve in enumerate(curves):
        colour, keep = COLOURS[index % len(COLOURS)], _thin(curve)
        draw.line(axes.points(curve.fps[keep], curve.sensitivity[keep]), fill=colour, width=3)
        y = axes.y0 + axes.height - 22 * (len(curves) - index)
        draw.line([(axes.x0 + axes.width - 250, y), (axes.x0 + axes.width - 220, y)], fill=colour, width=3)
        draw.text((axes.x0 + axes.width - 212, y), f"{curve.label} (CPM {curve.cpm:.3f})", fill=(0, 0, 0),
                  font=font, anchor="lm")
    return save_image(path, image)
