"""Metrics: entity F1 through seqeval (conlleval and strict modes), accuracy and F1 for labels."""
from __future__ import annotations

import io
from typing import Dict, List, Sequence

from seqeval import metrics as seqeval_metrics
from seqeval.scheme import BILOU, IOB1, IOB2, IOBES

from ..utils import atomic_write_bytes

# seqeval knows no BMES: B-M-E-S is IOBES with M for I, so we rename before scoring.
_STRICT = {"IOB1": IOB1, "IOB2": IOB2, "BIOES": IOBES, "BMES": IOBES, "BILOU": BILOU}


def to_seqeval_tags(tags: Sequence[str], scheme: str) -> List[str]:
    """BMES tags as IOBES (M- -> I-); other schemes unchanged."""
    if scheme != "BMES":
        return list(tags)
    return ["I-" + t[2:] if t.startswith("M-") else t for t in tags]


def entity_scores(gold: List[List[str]], pred: List[List[str]], scheme: str = "IOB2") -> Dict:
    """Micro P/R/F1 in percent: conlleval mode (lenient, the published numbers) and strict mode."""
    if len(gold) != len(pred) or any(len(g) != len(p) for g, p in zip(gold, pred)):
        raise ValueError("gold and predicted tag sequences must have the same number and lengths")
    gold = [to_seqeval_tags(g, scheme) for g in gold]
    pred = [to_seqeval_tags(p, scheme) for p in pred]
    strict = dict(mode="strict", scheme=_STRICT[scheme])
    report = seqeval_metrics.classification_report(gold, pred, output_dict=True, zero_division=0,
                                                   digits=4)
    per_type = {k: {m: round(100 * float(v), 2) if m != "support" else int(v) for m, v in d.items()}
                for k, d in report.items() if not k.endswith(" avg")}
    return {
        "precision": 100 * float(seqeval_metrics.precision_score(gold, pred, zero_division=0)),
        "recall": 100 * float(seqeval_metrics.recall_score(gold, pred, zero_division=0)),
        "f1": 100 * float(seqeval_metrics.f1_score(gold, pred, zero_division=0)),
        "strict_f1": 100 * float(seqeval_metrics.f1_score(gold, pred, zero_division=0, **strict)),
        "accuracy": 100 * float(seqeval_metrics.accuracy_score(gold, pred)),
        "per_type": per_type,
    }


def entity_report(gold: List[List[str]], pred: List[List[str]], scheme: str = "IOB2") -> str:
    """seqeval's per-type table, as conlleval users expect to read it."""
    gold = [to_seqeval_tags(g, scheme) for g in gold]
    pred = [to_seqeval_tags(p, scheme) for p in pred]
    return seqeval_metrics.classification_report(gold, pred, digits=4, zero_division=0)


def _prf(tp: int, fp: int, fn: int) -> Dict[str, float]:
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return {"precision": 100 * p, "recall": 100 * r, "f1": 100 * f}


def classification_scores(gold: Sequence[str], pred: Sequence[str], labels: Sequence[str]) -> Dict:
    """Accuracy, macro-F1, per-class P/R/F1 and support, and the confusion matrix (rows = gold)."""
    if len(gold) != len(pred):
        raise ValueError(f"{len(gold)} gold labels but {len(pred)} predictions")
    labels = list(labels) + sorted(set(gold) - set(labels))  # gold labels the model never saw count too
    index = {label: i for i, label in enumerate(labels)}
    matrix = [[0] * len(labels) for _ in labels]
    for g, p in zip(gold, pred):
        matrix[index[g]][index[p]] += 1
    per_class = {}
    for i, label in enumerate(labels):
        tp = matrix[i][i]
        fp = sum(matrix[j][i] for j in range(len(labels))) - tp
        fn = sum(matrix[i]) - tp
        per_class[label] = dict(_prf(tp, fp, fn), support=sum(matrix[i]))
    correct = sum(matrix[i][i] for i in range(len(labels)))
    return {
        "accuracy": 100 * correct / max(len(gold), 1),
        "macro_f1": sum(c["f1"] for c in per_class.values()) / len(per_class),
        "per_class": per_class,
        "confusion_matrix": {"labels": labels, "matrix": matrix},
    }


def multilabel_scores(gold: Sequence[set], pred: Sequence[set], labels: Sequence[str]) -> Dict:
    """Micro and macro F1 over labels, and exact-match (subset) accuracy."""
    per_class, totals = {}, [0, 0, 0]
    for label in labels:
        tp = sum(label in g and label in p for g, p in zip(gold, pred))
        fp = sum(label not in g and label in p for g, p in zip(gold, pred))
        fn = sum(label in g and label not in p for g, p in zip(gold, pred))
        per_class[label] = dict(_prf(tp, fp, fn), support=sum(label in g for g in gold))
        totals = [totals[0] + tp, totals[1] + fp, totals[2] + fn]
    return {
        "accuracy": 100 * sum(g == p for g, p in zip(gold, pred)) / max(len(gold), 1),
        "micro_f1": _prf(*totals)["f1"],
        "macro_f1": sum(c["f1"] for c in per_class.values()) / max(len(per_class), 1),
        "per_class": per_class,
    }


def plot_confusion_matrix(confusion: Dict, path, title: str = "Confusion matrix") -> None:
    """Save the confusion matrix as a PNG (headless), counts and row percentages in each cell."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    labels, matrix = confusion["labels"], np.array(confusion["matrix"], dtype=float)
    rows = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    size = max(4.0, 0.9 * len(labels) + 2)
    fig, ax = plt.subplots(figsize=(size, size * 0.85), dpi=120)
    image = ax.imshow(rows, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(labels)), labels=labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels=labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("gold")
    ax.set_title(title)
    for i in range(len(labels)):
        for j in range(len(labels)):
            ax.text(j, i, f"{int(matrix[i, j])}\n{100 * rows[i, j]:.1f}%", ha="center", va="center",
                    color="white" if rows[i, j] > 0.5 else "black", fontsize=8)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="share of gold row")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    atomic_write_bytes(path, buffer.getvalue())
