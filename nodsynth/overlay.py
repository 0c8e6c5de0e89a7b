"""PNG overlays of CT slices with mask contours, side-by-side panels with titles (Pillow only).

A panel is ``(title, slice_hu, masks)``: a 2-D HU array indexed ``[row, column]`` (an axial
slice ``[j, i]`` of a ``[k, j, i]`` volume: patient left on the image right, posterior down,
the radiological convention for LPS grids) and a list of 2-D masks of the same shape, each a
0/1 array or ``(array, (r, g, b))``; a fourth item ``(low, high)`` gives that panel its own
display window (e.g. a difference image). :func:`axial_panel` cuts such a panel through an LPS point.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Optional, Sequence, Union

import numpy as np
from scipy import ndimage

from .io.atomic import atomic_path
from .errors import InputError
from .volume import Volume, require_same_grid

DEFAULT_WINDOW_HU = (-1350.0, 150.0)
"""Lung window: level -600 HU, width 1500 HU."""
MASK_COLOURS = ((255, 60, 60), (60, 200, 255), (255, 210, 0), (110, 255, 110), (255, 80, 255),
                (255, 150, 40))
"""Contour colours used in order for masks given without one."""
TITLE_HEIGHT_PX = 18
GAP_PX = 6
BACKGROUND_RGB = (16, 16, 16)
TEXT_RGB = (235, 235, 235)
SCALE_BAR_MARGIN_PX = 6

MaskSpec = Union[np.ndarray, tuple[np.ndarray, tuple[int, int, int]]]
Panel = tuple  # (title, slice_hu, masks) or (title, slice_hu, masks, (low_hu, high_hu))


def window_to_grey(slice_hu: np.ndarray, window_hu: tuple[float, float] = DEFAULT_WINDOW_HU) -> np.ndarray:
    """Map HU in ``window_hu = (low, high)`` linearly to 0..255 (uint8), clipping outside it."""
    low, high = float(window_hu[0]), float(window_hu[1])
    if not high > low:
        raise InputError(f"the display window must have low < high HU, got {window_hu}")
    scaled = (np.asarray(slice_hu, dtype=np.float64) - low) / (high - low)
    return np.rint(np.clip(scaled, 0.0, 1.0) * 255.0).astype(np.uint8)


def contour(mask_2d: np.ndarray) -> np.ndarray:
    """Boundary pixels of a 2-D mask: in the mask with a 4-neighbour outside it (or on the edge)."""
    mask = np.asarray(mask_2d) > 0
    return mask & ~ndimage.binary_erosion(mask, border_value=0)


def _split_mask(item: MaskSpec, index: int) -> tuple[np.ndarray, tuple[int, int, int]]:
    if isinstance(item, tuple):
        return np.asarray(item[0]), tuple(int(c) for c in item[1])  # type: ignore[return-value]
    return np.asarray(item), MASK_COLOURS[index % len(MASK_COLOURS)]


def render_panel(slice_hu: np.ndarray, masks: Sequence[MaskSpec] = (),
                 window_hu: tuple[float, float] = DEFAULT_WINDOW_HU, scale: int = 2,
                 pixel_size_mm: tuple[float, float] = (1.0, 1.0), scale_bar_mm: Optional[float] = None):
    """RGB ``PIL.Image`` of one slice, enlarged ``scale`` times, with each mask's contour drawn.

    ``pixel_size_mm = (row, column)`` spacing stretches the image so that it is shown to scale;
    ``scale_bar_mm`` draws a bar that long, labelled, in the lower left corner.
    """
    from PIL import Image

    slice_hu = np.asarray(slice_hu)
    if slice_hu.ndim != 2 or slice_hu.size == 0:
        raise InputError(f"a panel needs a non-empty 2-D slice, got shape {slice_hu.shape}")
    smallest = min(pixel_size_mm)
    rows = max(1, int(round(slice_hu.shape[0] * scale * pixel_size_mm[0] / smallest)))
    cols = max(1, int(round(slice_hu.shape[1] * scale * pixel_size_mm[1] / smallest)))
    grey = Image.fromarray(window_to_grey(slice_hu, window_hu)).resize((cols, rows), Image.BILINEAR)
    rgb = np.repeat(np.asarray(grey)[:, :, None], 3, axis=2)
    for index, item in enumerate(masks):
        mask, colour = _split_mask(item, index)
        if mask.shape != slice_hu.shape:
            raise InputError(f"mask {index} has shape {mask.shape}, the slice {slice_hu.shape}")
        big = np.asarray(Image.fromarray((mask > 0).astype(np.uint8) * 255).resize((cols, rows), Image.NEAREST))
        rgb[contour(big)] = colour
    image = Image.fromarray(rgb)
    if scale_bar_mm:
        draw_scale_bar(image, scale / smallest, scale_bar_mm)
    return image


def draw_scale_bar(image, pixels_per_mm: float, length_mm: float) -> None:
    """Draw a ``length_mm`` bar with its length written above it in the lower left corner of ``image``."""
    from PIL import ImageDraw, ImageFont

    length_px = int(round(length_mm * pixels_per_mm))
    left, bottom = SCALE_BAR_MARGIN_PX, image.height - SCALE_BAR_MARGIN_PX
    draw = ImageDraw.Draw(image)
    draw.rectangle((left - 1, bottom - 4, left + length_px, bottom + 1), fill=BACKGROUND_RGB)
    draw.rectangle((left, bottom - 3, left + length_px - 1, bottom), fill=TEXT_RGB)
    draw.text((left, bottom - 16), f"{length_mm:g} mm", fill=TEXT_RGB, font=ImageFont.load_default(),
              stroke_width=1, stroke_fill=BACKGROUND_RGB)


def _with_title(image, title: str):
    from PIL import Image, ImageDraw, ImageFont

    framed = Image.new("RGB", (image.width, image.height + TITLE_HEIGHT_PX), BACKGROUND_RGB)
    framed.paste(image, (0, TITLE_HEIGHT_PX))
    ImageDraw.Draw(framed).text((3, 3), title, fill=TEXT_RGB, font=ImageFont.load_default())
    return framed


def compose_panels(panels: Sequence[Panel], window_hu: tuple[float, float] = DEFAULT_WINDOW_HU,
                   scale: int = 2, columns: Optional[int] = None,
                   pixel_size_mm: tuple[float, float] = (1.0, 1.0), scale_bar_mm: Optional[float] = None):
    """One RGB ``PIL.Image`` with the titled panels on a grid (``columns`` wide, default all in a row),
    each with a ``scale_bar_mm`` bar when given."""
    from PIL import Image

    if not panels:
        raise InputError("no panels to draw")
    tiles = [_with_title(render_panel(p[1], p[2], p[3] if len(p) > 3 else window_hu, scale, pixel_size_mm,
                                      scale_bar_mm), str(p[0])) for p in panels]
    columns = len(tiles) if columns is None else max(1, min(int(columns), len(tiles)))
    rows = -(-len(tiles) // columns)
    cell_w = max(t.width for t in tiles) + GAP_PX
    cell_h = max(t.height for t in tiles) + GAP_PX
    sheet = Image.new("RGB", (columns * cell_w - GAP_PX, rows * cell_h - GAP_PX), BACKGROUND_RGB)
    for n, tile in enumerate(tiles):
        sheet.paste(tile, ((n % columns) * cell_w, (n // columns) * cell_h))
    return sheet


def save_panels(path: str | os.PathLike, panels: Sequence[Panel],
                window_hu: tuple[float, float] = DEFAULT_WINDOW_HU, scale: int = 2,
                columns: Optional[int] = None, pixel_size_mm: tuple[float, float] = (1.0, 1.0)) -> Path:
    """Write the panels side by side as a PNG, atomically; returns the path."""
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise InputError(f"{path}: overlays are written as .png")
    return save_image(path, compose_panels(panels, window_hu, scale, columns, pixel_size_mm))


def save_image(path: str | os.PathLike, image, compress_level: Optional[int] = None) -> Path:
    """Write a ``PIL.Image`` as a PNG atomically (no text chunks); ``compress_level`` 0..9 (0 = stored,
    so the file size depends only on the image size), default Pillow's."""
    path = Path(path)
    options = {} if compress_level is None else {"compress_level": int(compress_level)}
    with atomic_path(path) as tmp:
        image.save(tmp, format="PNG", **options)
    return path


def axial_index(volume: Volume, point_lps: Sequence[float]) -> int:
    """Index ``k`` of the slice through an LPS point (mm); raises if the point is outside."""
    return volume.world_to_kji(point_lps)[0]


def axial_window(volume: Volume, point_lps: Sequence[float],
                 half_width_mm: Optional[float] = None) -> tuple[int, slice, slice]:
    """``(k, rows, columns)`` of the slice through a point, cropped to ``half_width_mm`` around it."""
    k, j, i = volume.world_to_kji(point_lps)
    if half_width_mm is None:
        return k, slice(None), slice(None)
    if not half_width_mm > 0:
        raise InputError(f"half_width_mm must be positive, got {half_width_mm}")
    hj = int(np.ceil(half_width_mm / volume.spacing[1]))
    hi = int(np.ceil(half_width_mm / volume.spacing[0]))
    return k, slice(max(j - hj, 0), j + hj + 1), slice(max(i - hi, 0), i + hi + 1)


def axial_panel(title: str, ct: Volume, point_lps: Sequence[float], masks: Sequence[Union[Volume, tuple]] = (),
                half_width_mm: Optional[float] = None) -> Panel:
    """A panel of the axial slice of ``ct`` through ``point_lps`` with the masks' contours.

    ``masks`` holds Volumes on the CT grid, or ``(Volume, (r, g, b))``; ``half_width_mm`` crops a
    square around the point.
    """
    k, rows, cols = axial_window(ct, point_lps, half_width_mm)
    cut = []
    for n, item in enumerate(masks):
        volume, colour = item if isinstance(item, tuple) else (item, None)
        require_same_grid(ct, volume, "CT", f"mask {n}")
        plane = volume.array[k, rows, cols]
        cut.append(plane if colour is None else (plane, colour))
    return title, ct.array[k, rows, cols], cut


def axial_pixel_size_mm(volume: Volume) -> tuple[float, float]:
    """(row, column) pixel size of an axial slice, for :func:`save_panels`' ``pixel_size_mm``."""
    return float(volume.spacing[1]), float(volume.spacing[0])
