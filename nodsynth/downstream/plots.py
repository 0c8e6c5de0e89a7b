"""Small line plots drawn with Pillow (no plotting library): series of points on linear axes, optional
vertical error bars; used for the ROC curves and AUC vs training fraction of the downstream report."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

SIZE_PX = (720, 540)
MARGINS_PX = (70, 40, 190, 60)
"""Left, top, right (legend), bottom."""
COLOURS = ((31, 119, 180), (214, 39, 40), (44, 160, 44), (148, 103, 189), (255, 127, 14), (23, 190, 207))


@dataclass(frozen=True)
class Series:
    label: str
    x: Sequence[float]
    y: Sequence[float]
    low: Optional[Sequence[float]] = None
    high: Optional[Sequence[float]] = None


def line_plot(series: Sequence[Series], x_range: tuple[float, float], y_range: tuple[float, float], title: str,
              x_label: str, y_label: str, diagonal: bool = False):
    """A ``PIL.Image`` of the series (points joined by lines, error bars where given) with a legend."""
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.load_default()
    image = Image.new("RGB", SIZE_PX, (255, 255, 255))
    draw = ImageDraw.Draw(image)
    left, top, right, bottom = MARGINS_PX
    width, height = SIZE_PX[0] - left - right, SIZE_PX[1] - top - bottom

    def px(x: float, y: float) -> tuple[float, float]:
        return (left + (x - x_range[0]) / (x_range[1] - x_range[0]) * width,
                top + (1 - (y - y_range[0]) / (y_range[1] - y_range[0])) * height)

    for t in range(6):
        gx = x_range[0] + t * (x_range[1] - x_range[0]) / 5
        gy = y_range[0] + t * (y_range[1] - y_range[0]) / 5
        draw.line([px(gx, y_range[0]), px(gx, y_range[1])], fill=(230, 230, 230))
        draw.line([px(x_range[0], gy), px(x_range[1], gy)], fill=(230, 230, 230))
        draw.text((px(gx, y_range[0])[0], top + height + 6), f"{gx:g}", fill=(0, 0, 0), font=font, anchor="mt")
        draw.text((left - 6, px(x_range[0], gy)[1]), f"{gy:.2g}", fill=(0, 0, 0), font=font, anchor="rm")
    if diagonal:
        draw.line([px(x_range[0], y_range[0]), px(x_range[1], y_range[1])], fill=(160, 160, 160))
    for n, s in enumerate(series):
        colour = COLOURS[n % len(COLOURS)]
        points = [px(x, y) for x, y in zip(s.x, s.y)]
        if len(points) > 1:
            draw.line(points, fill=colour, width=2)
        for i, (x, y) in enumerate(points):
            draw.ellipse([x - 3, y - 3, x + 3, y + 3], fill=colour)
            if s.low is not None and s.high is not None:
                draw.line([px(s.x[i], s.low[i]), px(s.x[i], s.high[i])], fill=colour, width=1)
        draw.line([(left + width + 12, top + 10 + 16 * n), (left + width + 32, top + 10 + 16 * n)], fill=colour, width=3)
        draw.text((left + width + 38, top + 10 + 16 * n), s.label, fill=(0, 0, 0), font=font, anchor="lm")
    draw.rectangle([left, top, left + width, top + height], outline=(0, 0, 0))
    draw.text((left + width / 2, 16), title, fill=(0, 0, 0), font=font, anchor="mm")
    draw.text((left + width / 2, SIZE_PX[1] - 20), x_label, fill=(0, 0, 0), font=font, anchor="mm")
    draw.text((8, top - 20), y_label, fill=(0, 0, 0), font=font, anchor="lm")
    return image
