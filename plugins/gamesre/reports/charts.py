"""What the reports' matplotlib charts share: a figure as PNG bytes, and text that matplotlib shows as it is.

Charts use a matplotlib Figure with the Agg canvas directly, never pyplot: no global figure state is left behind
in a worker that renders many reports.
"""
from __future__ import annotations

import io
from typing import Any

from gamesre.reports.text import one_line


def chart_text(value: object, limit: int = 120) -> str:
    """Text for matplotlib: `$` would start mathtext (and a stray one raises), so it is escaped."""
    return one_line(value, limit).replace("$", r"\$")


def figure_png(fig: Any) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()
