"""Corpus statistics (examples, tokens, entities or label counts per split) and a readable table."""
from __future__ import annotations

import json
from collections import Counter
from typing import Any, Dict, List, Mapping

from .. import tags as T


def read_report(dataset) -> Dict[str, Any]:
    """What ``load_corpus`` recorded when reading a split: path, counts (skipped -DOCSTART- and
    blank lines, repaired sentences), tag scheme. Empty for datasets from elsewhere."""
    try:
        return dict(json.loads(dataset.info.description or "{}").get("textrnn") or {})
    except (ValueError, AttributeError):
        return {}


def corpus_statistics(dsdict: Mapping[str, Any]) -> List[Dict[str, Any]]:
    """One row per split: ``split, examples`` and ``tokens, entities, entity_types`` (tagging) or
    ``characters, labels`` (classification; label name -> count)."""
    rows = []
    for split, ds in dsdict.items():
        features = ds.features
        if "tags" in features:
            names = features["tags"].feature.names
            scheme = read_report(ds).get("scheme") or T.infer_scheme(names)
            tags = ds.data.column("tags").to_pylist()
            types = Counter(typ for sent in tags for typ, _, _ in T.get_spans([names[i] for i in sent], scheme))
            rows.append({"split": split, "examples": len(tags), "tokens": sum(map(len, tags)),
                         "entities": sum(types.values()), "entity_types": dict(sorted(types.items()))})
        else:
            multi = "labels" in features
            column = "labels" if multi else "label"
            names = (features[column].feature if multi else features[column]).names
            values = ds.data.column(column).to_pylist()
            counts = Counter(names[i] for v in values for i in (v if multi else [v]))
            chars = sum(len(t) for t in ds.data.column("text").to_pylist())
            rows.append({"split": split, "examples": len(values), "characters": chars,
                         "labels": {n: counts.get(n, 0) for n in names}})
    return rows


def scan_statistics(scans: Mapping[str, Any]) -> List[Dict[str, Any]]:
    """Rows like :func:`corpus_statistics` from the checking pass alone (``scan_corpus``)."""
    rows = []
    for split, scan in scans.items():
        c = scan.counts
        if scan.task == "tagging":
            rows.append({"split": split, "examples": c["sentences"], "tokens": c["tokens"],
                         "entities": c["entities"], "entity_types": c["entity_types"]})
        else:
            rows.append({"split": split, "examples": c["documents"], "characters": c.get("characters", 0),
                         "labels": c["labels"]})
    return rows


def format_statistics(rows: List[Mapping[str, Any]]) -> str:
    """The rows of :func:`corpus_statistics` as an aligned text table."""
    if not rows:
        return "(no splits)"
    tagging = "entities" in rows[0]
    head = ["split", "examples", "tokens", "entities", "by type"] if tagging else \
        ["split", "examples", "characters", "labels"]
    table = [head]
    for row in rows:
        detail = row["entity_types"] if tagging else row["labels"]
        detail = " · ".join(f"{k} {v:,}" for k, v in detail.items())
        nums = [row["examples"], row["tokens"], row["entities"]] if tagging else [row["examples"], row["characters"]]
        table.append([str(row["split"])] + [f"{n:,}" for n in nums] + [detail])
    widths = [max(len(r[i]) for r in table) for i in range(len(head))]
    lines = []
    for r in table:
        cells = [r[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(r[1:-1], widths[1:-1])] + [r[-1]]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)
