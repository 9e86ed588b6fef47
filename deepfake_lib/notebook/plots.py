"""Figures for the notebook series (matplotlib). Every function takes data, not paths, and
returns a :class:`matplotlib.figure.Figure` with titles, axis labels with units and legends.

Colours are fixed across the series: bona fide (Real) is always :data:`REAL_COLOR`, spoofed
(Fake) :data:`FAKE_COLOR`, and each attack id gets the same colour from :data:`ATTACK_PALETTE`
in every figure (:func:`attack_colors`).

How a figure reaches the reader, exactly once: figures are detached from pyplot's figure manager
as soon as they are made, so the inline backend never shows them on its own (no double display,
no pile-up in scripts and tests). In a notebook, either end a cell with the figure (IPython shows
a cell's value once), or call :func:`save_figure`, which writes the PNG and, in a Jupyter kernel
(JupyterLab, Colab, papermill), shows that same PNG once where it is called and returns nothing,
so a cell never displays a path.
"""

from __future__ import annotations

import base64
import functools
import io
import logging
import math
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from deepfake_lib import LABEL_NAMES

__all__ = [
    "attack_colors",
    "ATTACK_PALETTE",
    "CLASS_COLORS",
    "compact_png",
    "FAKE_COLOR",
    "FAMILY_PALETTE",
    "inline_png",
    "INLINE_MAX_MEAN_ERROR",
    "RATE_GREYS",
    "REAL_COLOR",
    "save_figure",
    "STYLE",
    "SYSTEM_PALETTE",
]

log = logging.getLogger(__name__)

REAL_COLOR = "#0072B2"
"""Bona fide (Real, label 1): blue (Okabe-Ito)."""
FAKE_COLOR = "#D55E00"
"""Spoofed (Fake, label 0): vermillion (Okabe-Ito)."""
CLASS_COLORS: dict[str, str] = {"Real": REAL_COLOR, "Fake": FAKE_COLOR}
"""Colour of each class name."""
ATTACK_PALETTE: tuple[str, ...] = (
    "#E69F00",
    "#009E73",
    "#CC79A7",
    "#9467BD",
    "#8C564B",
    "#BCBD22",
    "#7F7F7F",
    "#17BECF",
)
"""Colours of attack ids, assigned in sorted order of the ids (see :func:`attack_colors`)."""
FAMILY_PALETTE: tuple[str, ...] = (
    "#4D4D4D",
    "#0072B2",
    "#56B4E9",
    "#009E73",
    "#E69F00",
    "#CC79A7",
    "#D55E00",
    "#9467BD",
    "#8C564B",
)
"""Colours of robustness condition families, in order of appearance."""
SYSTEM_PALETTE: tuple[str, ...] = (
    "#000000",
    "#009E73",
    "#9467BD",
    "#E69F00",
    "#8C564B",
    "#CC79A7",
    "#7F7F7F",
)
"""Colours of compared systems (never the class colours, which mean Real and Fake)."""
RATE_GREYS: tuple[str, ...] = ("#D9D9D9", "#969696", "#525252", "#252525")
"""Neutral shades for sample rates (class and attack colours stay reserved)."""

STYLE: dict[str, Any] = {
    "font.size": 10,
    "axes.titlesize": 11,
    "axes.labelsize": 10,
    "xtick.labelsize": 9,
    "ytick.labelsize": 9,
    "legend.fontsize": 9,
    "legend.title_fontsize": 9,
    "figure.titlesize": 12,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "image.cmap": "magma",
}
"""Matplotlib rc settings applied while each figure is built."""


def _in_jupyter() -> bool:
    """True inside a Jupyter kernel (JupyterLab, Colab, papermill), False in scripts, tests and a terminal IPython."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


def _palette_png(image: Any, colors: int) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    image.quantize(colors=colors, method=Image.Quantize.MEDIANCUT).save(out, format="PNG", optimize=True)
    return out.getvalue()


def compact_png(png: bytes, colors: int = 256, *, max_bytes: int | None = None) -> bytes:
    """``png`` re-encoded with a palette of at most ``colors`` colours (median cut, no dithering):
    lossless for line plots, which use few colours, and about 2.5 times smaller for spectrograms,
    whose smooth colour bars may show faint bands. Keeps notebooks small (under 1 MB each).

    ``max_bytes``: when the result is larger, the palette shrinks to 64 and then 32 colours, and
    then the image is scaled down (box filter, aspect ratio kept) until it fits, in at most six
    steps; images that fit keep their pixels and palette.
    """
    from PIL import Image

    image = Image.open(io.BytesIO(png)).convert("RGB")
    ladder = [colors] + [c for c in (64, 32) if c < colors]
    for palette in ladder:
        data = _palette_png(image, palette)
        if max_bytes is None or len(data) <= max_bytes:
            return data
    shown = image
    for _ in range(6):
        scale = 0.95 * math.sqrt(max_bytes / len(data)) * shown.width / image.width
        size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
        shown = image.resize(size, Image.Resampling.BOX)
        data = _palette_png(shown, ladder[-1])
        if len(data) <= max_bytes:
            break
    return data


INLINE_MAX_MEAN_ERROR = 0.1
"""Largest mean colour error (0-255 per channel) a 256-colour palette may add to an embedded figure."""


def inline_png(png: bytes) -> bytes:
    """The PNG a notebook embeds for ``png``: a 256-colour palette where it changes nothing to the
    eye (mean error per channel at most :data:`INLINE_MAX_MEAN_ERROR`, as in line plots, whose
    extra colours are anti-aliasing) and is smaller; otherwise ``png`` itself, so spectrograms
    keep every colour and every pixel."""
    from PIL import Image

    image = Image.open(io.BytesIO(png)).convert("RGB")
    palette = image.quantize(colors=256, method=Image.Quantize.MEDIANCUT)
    error = np.abs(np.asarray(image, dtype=np.int16) - np.asarray(palette.convert("RGB"), dtype=np.int16))
    if float(error.mean()) > INLINE_MAX_MEAN_ERROR:
        return png
    out = io.BytesIO()
    palette.save(out, format="PNG", optimize=True)
    return out.getvalue() if len(out.getvalue()) < len(png) else png


def save_figure(fig: Any, path: str | os.PathLike[str], *, show: bool | None = None) -> None:
    """Write ``fig`` as a PNG (110 dpi, tight bounding box) to ``path``, creating the folder, and
    show it once in the notebook.

    ``show``: display the figure in the cell's output, as :func:`inline_png` of the file (the same
    pixels and colours: full colour for spectrograms; notebooks stay small through short audio
    excerpts, not through fewer colours);
    ``None`` (default) does so only in a Jupyter kernel, never in
    scripts or tests. Returns ``None``, so a cell that ends with this call shows the figure and
    nothing else (no path of the machine that ran it).
    """
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(p, dpi=110, bbox_inches="tight", format="png")
    if show if show is not None else _in_jupyter():
        from IPython.display import display

        png = base64.b64encode(inline_png(p.read_bytes())).decode("ascii")
        # the text form names the file, never the machine's path
        display({"image/png": png, "text/plain": f"<figure {p.name}>"}, raw=True)


def attack_colors(attacks: Iterable[str]) -> dict[str, str]:
    """Colour of every attack id: ``"bonafide"`` -> :data:`REAL_COLOR`, ``"pooled"`` ->
    :data:`FAKE_COLOR`, the others from :data:`ATTACK_PALETTE` in sorted order."""
    names = sorted({str(a) for a in attacks})
    spoof = [a for a in names if a not in ("bonafide", "pooled")]
    colors = {a: ATTACK_PALETTE[i % len(ATTACK_PALETTE)] for i, a in enumerate(spoof)}
    if "bonafide" in names:
        colors["bonafide"] = REAL_COLOR
    if "pooled" in names:
        colors["pooled"] = FAKE_COLOR
    return colors


_F = TypeVar("_F", bound=Callable[..., Any])


def _styled(fn: _F) -> _F:
    """Build the figure under :data:`STYLE` (fonts are fixed when text is created)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        import matplotlib.pyplot as plt

        with plt.rc_context(STYLE):
            return fn(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def _new_figure(figsize: tuple[float, float]) -> Any:
    """A constrained-layout figure, already closed in pyplot (no pile-up, no double display)."""
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=figsize, layout="constrained")
    plt.close(fig)
    return fig


def _pct(values: Any) -> np.ndarray:
    return 100.0 * np.asarray(values, dtype=float)


def _known_bounds(low: Any, high: Any) -> np.ndarray:
    """[n] bool: where both interval bounds are known (NaN when the bootstrap gave none)."""
    return np.isfinite(np.asarray(low, dtype=float)) & np.isfinite(np.asarray(high, dtype=float))


def _eer_axis_top(*values: Any) -> float:
    """Upper y limit (%) for EER bars: at least 55, above every value and bound shown."""
    finite = np.concatenate([np.asarray(v, dtype=float).ravel() for v in values])
    finite = finite[np.isfinite(finite)]
    return min(105.0, max(55.0, float(100 * finite.max()) + 5 if finite.size else 55.0))


def _error(center: Any, low: Any, high: Any) -> np.ndarray:
    """Asymmetric error bars [2, n] from interval bounds (NaN bounds -> no bar)."""
    c, lo, hi = (np.asarray(v, dtype=float) for v in (center, low, high))
    return np.nan_to_num(np.vstack([c - lo, hi - c]), nan=0.0).clip(min=0.0)


def _class_name(label: Any) -> str:
    if isinstance(label, str):
        return label
    return LABEL_NAMES[int(label)]


def _class_hist(ax: Any, values: np.ndarray, name: str, edges: np.ndarray, label: str | None = None) -> None:
    """One class's histogram as a thick outline (Real solid, Fake dashed) over a faint fill, so
    identical distributions stay readable."""
    color = CLASS_COLORS[name]
    ax.hist(values, bins=edges, histtype="stepfilled", color=color, alpha=0.12)
    ax.hist(
        values,
        bins=edges,
        histtype="step",
        color=color,
        linewidth=2,
        linestyle="-" if name == "Real" else "--",
        label=label or name,
    )
