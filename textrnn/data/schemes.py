"""Which tag scheme a file is in, learnt while streaming through it, and one scheme for all splits.

A reader that was not told the scheme keeps every scheme whose prefixes the tags use as a
candidate, and notes for each how many sentences are invalid in it and where the first one is.
After the last split is read, :func:`resolve_schemes` picks one scheme that every file is valid
in; when none exists the files are in different schemes, which is an error unless ``convert_to``
asks for one scheme (each file is then converted from its own). Spans do not depend on the
scheme, so entity counts and the tags that repair or conversion produce are known after one pass.
"""
from __future__ import annotations

import logging
from collections import Counter
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple

from .. import tags as T
from ..errors import DataFormatError
from .records import FileScan, LabelNames

logger = logging.getLogger("textrnn.data")

# Shapes of the spans of one type that decide which tags encode them in each scheme.
_SINGLE, _MULTI, _LONG, _ADJACENT, _APART = 1, 2, 4, 8, 16


class _Invalid:
    """Sentences invalid in one candidate scheme: how many, the first, and the tags repair changes."""

    __slots__ = ("count", "line", "message", "removed", "added")

    def __init__(self):
        self.count = 0
        self.line: Optional[int] = None
        self.message = ""
        self.removed: Counter = Counter()  # tags of the invalid sentences, which repair rewrites
        self.added: set = set()            # tags of their repaired versions


class TagStats:
    """Tags, spans and validity of one file, updated sentence by sentence."""

    def __init__(self, path: str, scheme: Optional[str], declared: Optional[Sequence[str]]):
        self.path = path
        self.declared_scheme = T.normalize_scheme(scheme) if scheme else None
        self.declared = set(declared) if declared is not None else None
        self.alive: List[str] = [self.declared_scheme] if scheme else list(T.SCHEMES)
        self.first_seen: Dict[str, int] = {}
        self.tag_counts: Counter = Counter()
        self.types: Counter = Counter()
        self.shapes: Dict[str, int] = {}
        self.has_outside = False
        self.invalid: Dict[str, _Invalid] = {s: _Invalid() for s in self.alive}
        self.sentences = self.tokens = 0

    # --- pass one --------------------------------------------------------------------------

    def add(self, tags: List[str], line: int, token_lines: bool) -> None:
        """One sentence whose first token (or whole record, without ``token_lines``) is on ``line``."""
        self.sentences += 1
        self.tokens += len(tags)
        counts = self.tag_counts
        known = len(counts)
        counts.update(tags)
        if len(counts) != known:
            for k, tag in enumerate(tags):
                if tag not in self.first_seen:
                    self._new_tag(tag, line + k if token_lines else line)
        if tags.count("O") == len(tags):
            return
        spans, errors = T.spans_and_errors(tags, self.alive)
        prev_end, prev_type = -1, None
        for typ, start, end in spans:
            self.types[typ] += 1
            shape = _SINGLE if end - start == 1 else (_MULTI | (_LONG if end - start > 2 else 0))
            shape |= _ADJACENT if start == prev_end and typ == prev_type else _APART
            self.shapes[typ] = self.shapes.get(typ, 0) | shape
            prev_end, prev_type = end, typ
        for scheme, bad in zip(self.alive, errors):
            if bad is not None:
                self._note_invalid(scheme, tags, spans, bad, line + bad if token_lines else line)

    def _new_tag(self, tag: str, line: int) -> None:
        self.first_seen[tag] = line
        try:
            T.parse_tag(tag, self.declared_scheme)
        except ValueError as err:
            raise DataFormatError(self.path, line, str(err)) from None
        if self.declared is not None and tag not in self.declared:
            raise DataFormatError(self.path, line, f"tag {tag!r} is not in the declared label set "
                                  f"{sorted(self.declared)}")
        if tag == "O":
            self.has_outside = True
            return
        alive = [s for s in self.alive if tag[0] in T.scheme_prefixes(s)]
        if not alive:  # tags of no one scheme: name the tag that the likeliest scheme refuses
            scheme = T.infer_scheme(self.first_seen)
            for seen, seen_line in self.first_seen.items():
                try:
                    T.parse_tag(seen, scheme)
                except ValueError as err:
                    raise DataFormatError(self.path, seen_line, f"{err}; the file's tags mix schemes") from None
            raise DataFormatError(self.path, line, f"tag {tag!r}: the file's prefixes fit no one scheme of "
                                  f"{', '.join(T.SCHEMES)}")
        self.alive = alive

    def _note_invalid(self, scheme: str, tags: List[str], spans, bad: int, line: int) -> None:
        inv = self.invalid[scheme]
        if inv.count == 0:
            prev = tags[bad - 1] if bad > 0 else None
            if T.can_follow(prev, tags[bad], scheme):
                inv.message = f"tag {tags[bad]!r} may not end a sentence in {scheme}"
            else:
                where = f"after {prev!r}" if prev else "at the start of a sentence"
                inv.message = f"tag {tags[bad]!r} {where} is invalid in {scheme}"
                if scheme == "IOB2" and tags[bad][0] == "I":
                    inv.message += " (IOB1 starts spans with I-: if the file is IOB1, pass scheme='IOB1')"
            inv.line = line
        inv.count += 1
        inv.removed.update(tags)
        inv.added.update(T.spans_to_tags(spans, len(tags), scheme))

    # --- after the pass --------------------------------------------------------------------

    def valid_in(self) -> List[str]:
        """Candidate schemes in which every sentence is valid."""
        return [s for s in self.alive if self.invalid[s].count == 0]

    def preferred(self, among: Optional[Sequence[str]] = None) -> str:
        """The scheme the tags point at: M- -> BMES, E-/S- -> BIOES, else IOB2 (IOB1 when only that
        is valid), taken from ``among`` when given (the schemes valid in every file)."""
        if self.declared_scheme:
            return self.declared_scheme
        prefixes = {t[0] for t in self.first_seen if t != "O"}
        if "M" in prefixes:
            order = ["BMES"]
        elif prefixes & {"E", "S"}:
            order = ["BIOES", "BMES"]
        else:
            order = ["IOB2", "IOB1", "BIOES", "BMES"]
        for pool in ([among] if among is not None else []) + [self.valid_in(), self.alive]:
            for scheme in order:
                if scheme in pool:
                    return scheme
        return order[0]

    def repaired(self, scheme: str) -> int:
        return self.invalid[scheme].count

    def entity_counts(self) -> Tuple[int, Dict[str, int]]:
        return sum(self.types.values()), dict(sorted(self.types.items()))

    def output_tags(self, scheme: str, target: str) -> set:
        """The tags of the rows: kept as read (less what repair rewrites), or as converted."""
        if target == scheme:
            inv = self.invalid[scheme]
            kept = {t for t, n in self.tag_counts.items() if n > inv.removed.get(t, 0)}
            return kept | inv.added
        out = {"O"} if self.has_outside else set()
        inside = "M" if target == "BMES" else "I"
        for typ, shape in self.shapes.items():
            if target == "IOB2":
                out.add(f"B-{typ}")
                if shape & _MULTI:
                    out.add(f"I-{typ}")
            elif target == "IOB1":
                if shape & (_MULTI | _APART):  # IOB1 starts a span with I- unless one of its type ends there
                    out.add(f"I-{typ}")
                if shape & _ADJACENT:
                    out.add(f"B-{typ}")
            else:
                if shape & _SINGLE:
                    out.add(f"S-{typ}")
                if shape & _MULTI:
                    out.update((f"B-{typ}", f"E-{typ}"))
                if shape & _LONG:
                    out.add(f"{inside}-{typ}")
        return out

    def invalid_error(self, scheme: str) -> DataFormatError:
        inv = self.invalid[scheme]
        return DataFormatError(self.path, inv.line, f"{inv.message}; fix the file, or pass "
                               "on_invalid='repair' to read it as conlleval does")


def resolve_schemes(stats: Mapping[str, TagStats], convert_to: Optional[str],
                    on_invalid: str) -> Dict[str, Tuple[str, str]]:
    """``{split: (scheme, target)}``: one scheme that every file is valid in, or each file's own
    when ``convert_to`` joins them; invalid sentences are an error unless ``on_invalid='repair'``."""
    target = T.normalize_scheme(convert_to) if convert_to else None
    common = None
    for st in stats.values():
        valid = st.valid_in()
        common = valid if common is None else [s for s in common if s in valid]
    if common:
        first = next(iter(stats.values()))
        merged = TagStats(first.path, None, None)
        for st in stats.values():
            merged.first_seen.update(st.first_seen)
        chosen = {split: merged.preferred(common) for split in stats}
    else:
        chosen = {split: st.preferred() for split, st in stats.items()}
    for split, st in stats.items():
        scheme = chosen[split]
        if st.repaired(scheme) and on_invalid != "repair":
            raise st.invalid_error(scheme)
    if target is None and len(set(chosen.values())) > 1:
        raise _mixed_schemes(stats, chosen)
    for split, st in stats.items():
        if st.declared_scheme is None:
            logger.info("%s: no tag scheme given; read the tags as %s", st.path, chosen[split])
    return {split: (scheme, target or scheme) for split, scheme in chosen.items()}


def _mixed_schemes(stats: Mapping[str, TagStats], chosen: Mapping[str, str]) -> DataFormatError:
    splits = list(stats)
    a = splits[0]
    b = next(s for s in splits if chosen[s] != chosen[a])
    sa, sb = chosen[a], chosen[b]
    st = stats[b]
    line = st.invalid[sa].line if sa in st.invalid and st.invalid[sa].count else None
    if line is None:  # a prefix the first file's scheme does not have
        line = min((n for t, n in st.first_seen.items() if t != "O" and t[0] not in T.scheme_prefixes(sa)),
                   default=None)
    return DataFormatError(st.path, line, f"tags in {sb}, but {stats[a].path} is in {sa}: all splits must "
                           f"share one tag scheme; pass convert_to='{sa}' to convert every file to {sa}")


def declared_labels(label_names: LabelNames) -> Optional[List[str]]:
    if label_names is None:
        return None
    return list(label_names)


def tagging_scan(path: str, fmt: str, opts: Dict[str, Any], stats: TagStats, counts: Dict[str, int]) -> FileScan:
    entities, types = stats.entity_counts()
    counts = {"sentences": stats.sentences, "tokens": stats.tokens, "entities": entities, "entity_types": types,
              "docstart_lines": counts.get("docstart_lines", 0), "extra_blank_lines": counts.get("extra_blank_lines", 0)}
    return FileScan(path, fmt, "tagging", opts, counts, tag_stats=stats)


def fix_tags(scan: FileScan, sentences) -> Iterator[Tuple[List[str], List[str]]]:
    """Repair invalid sentences and convert to the target scheme, as the scan decided."""
    scheme, target = scan.scheme, scan.target
    repair = scan.counts.get("repaired_sentences", 0) > 0
    n = 0
    for tokens, tags in sentences:
        n += 1
        if target != scheme or (repair and T.find_invalid(tags, scheme) is not None):
            tags = T.spans_to_tags(T.get_spans(tags, scheme), len(tags), target)
        yield tokens, tags
    if n != scan.counts["sentences"]:
        raise DataFormatError(scan.path, None, f"read {n} sentences, {scan.counts['sentences']} before: "
                              "the file changed while it was being read; load it again")
