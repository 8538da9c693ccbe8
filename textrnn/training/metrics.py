"""Metrics: entity F1 through seqeval (conlleval and strict modes), accuracy and F1 for labels."""
from __future__ import annotations

from typing import Dict, List, Sequence

from seqeval import metrics as seqeval_metrics
from seqeval.scheme import BILOU, IOB1, IOB2, IOBES

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
    per_type = {k: {m: round(100 * v, 2) if m != "support" else int(v) for m, v in d.items()}
                for k, d in report.items() if not k.endswith(" avg")}
    return {
        "precision": 100 * seqeval_metrics.precision_score(gold, pred, zero_division=0),
        "recall": 100 * seqeval_metrics.recall_score(gold, pred, zero_division=0),
        "f1": 100 * seqeval_metrics.f1_score(gold, pred, zero_division=0),
        "strict_f1": 100 * seqeval_metrics.f1_score(gold, pred, zero_division=0, **strict),
        "accuracy": 100 * seqeval_metrics.accuracy_score(gold, pred),
        "per_type": per_type,
    }


def entity_report(gold: List[List[str]], pred: List[List[str]], scheme: str = "IOB2") -> str:
    """seqeval's per-type table, as conlleval users expect to read it."""
    gold = [to_seqeval_tags(g, scheme) for g in gold]
    pred = [to_seqeval_tags(p, scheme) for p in pred]
    return seqeval_metrics.classification_report(gold, pred, digits=4, zero_division=0)
