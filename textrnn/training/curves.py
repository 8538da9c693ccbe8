"""Learning curves of a run: training loss, the dev metric and the learning rate, one PNG."""
from __future__ import annotations

import io
import json
from pathlib import Path
from typing import List, Optional

from ..utils import atomic_write_bytes

CURVES_NAME = "learning_curves.png"


def _read_jsonl(path: Path) -> List[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def plot_learning_curves(output_dir, metric: str = "f1", lr_steps: bool = True) -> Optional[Path]:
    """``learning_curves.png`` from the run's metrics.jsonl (evaluations) and steps.jsonl (losses);
    None when the run logged nothing. ``lr_steps``: the schedule changes the rate now and then (per epoch,
    at a plateau), so draw it as steps; False for a rate that changes every step (linear decay)."""
    from .trainer import METRICS_LOG, STEPS_LOG

    out = Path(output_dir)
    evals, steps = _read_jsonl(out / METRICS_LOG), _read_jsonl(out / STEPS_LOG)
    if not evals:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6), dpi=110)
    loss, dev, lr = axes
    # a record holds the rate of its own step, the last of its interval: a stepwise rate is drawn flat over
    # each interval at the rate the interval ended with (a change inside one shows at most one interval early)
    style = dict(lw=1.2, drawstyle="steps-pre" if lr_steps else "default")
    if steps:
        loss.plot([r["step"] for r in steps], [r["train_loss"] for r in steps], lw=0.8, alpha=0.6,
                  label="every log interval")
        lr.plot([r["step"] for r in steps], [r["lr"] for r in steps], **style)
    else:
        lr.plot([r["step"] for r in evals], [r["lr"] for r in evals], marker="o", **style)
    loss.plot([r["step"] for r in evals], [r["train_loss"] for r in evals], marker="o", lw=1.5,
              label="since the last evaluation")
    loss.set(title="training loss (per sentence)", xlabel="step")
    loss.legend(fontsize=8)
    key = f"dev_{metric}"
    points = [(r["step"], r[key]) for r in evals if key in r]
    if points:
        dev.plot(*zip(*points), marker="o", lw=1.5, color="tab:green")
        best = max(points, key=lambda p: p[1])
        dev.annotate(f"best {best[1]:.2f}", best, textcoords="offset points", xytext=(0, -14), ha="center",
                     fontsize=8)
    dev.set(title=f"dev {metric}", xlabel="step")
    lr.set(title="learning rate", xlabel="step")
    for ax in axes:
        ax.grid(alpha=0.3)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    path = out / CURVES_NAME
    atomic_write_bytes(path, buffer.getvalue())
    return path
