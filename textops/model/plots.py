"""Plots saved as PNG files with a non-interactive backend.

``Agg`` is selected before pyplot is imported so plotting works off the main thread and inside
servers; the original project crashed there with "main thread is not in main loop".
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib import font_manager

# Chinese labels need a CJK font; these are Debian's (fonts-wqy-microhei, fonts-noto-cjk).
CJK_FONT_FILES = (
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
)


def _use_cjk_fonts() -> None:
    """Register installed CJK fonts (the font cache may predate them) as fallbacks."""
    families = []
    for path in CJK_FONT_FILES:
        if Path(path).is_file():
            font_manager.fontManager.addfont(path)
            families.append(font_manager.FontProperties(fname=path).get_name())
    matplotlib.rcParams["font.family"] = ["DejaVu Sans", *families]


_use_cjk_fonts()


def plot_confusion_matrix(
    confusion: list[list[int]], classes: list[str], path: Path, title: str
) -> Path:
    """Counts and row-normalised shares (recall per true class) in one heat map."""
    counts = np.array(confusion, dtype=float)
    shares = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    size = 2.2 + 0.9 * len(classes)
    fig, ax = plt.subplots(figsize=(size, size * 0.85))
    ax.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(classes)), classes, rotation=30, ha="right")
    ax.set_yticks(range(len(classes)), classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    for i in range(len(classes)):
        for j in range(len(classes)):
            colour = "white" if shares[i, j] > 0.5 else "black"
            ax.text(
                j,
                i,
                f"{int(counts[i, j])}\n{shares[i, j]:.0%}",
                ha="center",
                va="center",
                color=colour,
                fontsize=9,
            )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
