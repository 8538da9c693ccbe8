"""Tag schemes for span labelling: IOB1, IOB2 (BIO), BIOES and BMES.

A tag is ``O`` or ``PREFIX-TYPE``. The prefixes each scheme uses:

=======  ==================  =================================================================
scheme   prefixes            meaning
=======  ==================  =================================================================
IOB1     I, B                I- is inside; B- only starts a span right after one of its type
IOB2     B, I                every span starts with B- (also called BIO)
BIOES    B, I, E, S          begin, inside, end, single-token span
BMES     B, M, E, S          BIOES with M- (middle) for I-, usual for Chinese characters
=======  ==================  =================================================================

Spans are ``(type, start, end)`` with ``end`` exclusive. Decoding follows conlleval (and
seqeval's ``get_entities``): an invalid sequence is read leniently, e.g. an ``I-`` after ``O``
starts a span. Pure Python, no torch.
"""
from __future__ import annotations

import functools
from typing import Iterable, List, Optional, Sequence, Tuple

SCHEMES = ("IOB1", "IOB2", "BIOES", "BMES")
_ALIASES = {"BIO": "IOB2", "IOBES": "BIOES"}
_PREFIXES = {"IOB1": "IB", "IOB2": "BI", "BIOES": "BIES", "BMES": "BMES"}
_PREFIX_ORDER = {p: i for i, p in enumerate("BIMES")}

Span = Tuple[str, int, int]
# A parsed tag: (role, type). The role is the prefix with BMES's M- read as I-; O has type None.
_Parsed = Tuple[str, Optional[str]]


def normalize_scheme(scheme: str) -> str:
    """``"bio"`` -> ``"IOB2"``; raise ValueError for a scheme textrnn does not know."""
    name = str(scheme).upper()
    name = _ALIASES.get(name, name)
    if name not in SCHEMES:
        raise ValueError(f"unknown tag scheme {scheme!r}; expected one of {', '.join(SCHEMES)} (or BIO, IOBES)")
    return name


def scheme_prefixes(scheme: str) -> str:
    """The tag prefixes a scheme uses: ``"IOB2"`` -> ``"BI"``, ``"BMES"`` -> ``"BMES"``."""
    return _PREFIXES[normalize_scheme(scheme)]


def _prefix_list(scheme: Optional[str]) -> str:
    prefixes = _PREFIXES[scheme] if scheme else "BIMES"
    return ", ".join(f"{p}-" for p in prefixes)


@functools.lru_cache(maxsize=4096)
def _parse(tag: str, scheme: Optional[str]) -> _Parsed:
    if tag == "O":
        return ("O", None)
    where = f" in {scheme}" if scheme else ""
    if not isinstance(tag, str) or len(tag) < 2 or tag[1] != "-":
        raise ValueError(
            f"malformed tag {tag!r}: expected O or PREFIX-TYPE with PREFIX one of {_prefix_list(scheme)}{where}"
        )
    prefix, typ = tag[0], tag[2:]
    if prefix not in (_PREFIXES[scheme] if scheme else "BIMES"):
        raise ValueError(
            f"malformed tag {tag!r}: prefix {prefix}- is not one of {_prefix_list(scheme)}{where}"
        )
    if not typ or typ != typ.strip():
        raise ValueError(f"malformed tag {tag!r}: the entity type after {prefix}- is empty or has spaces")
    return ("I" if prefix == "M" else prefix, typ)


def parse_tag(tag: str, scheme: Optional[str] = None) -> Tuple[str, Optional[str]]:
    """``"B-PER"`` -> ``("B", "PER")``, ``"O"`` -> ``("O", None)``.

    With a scheme, a prefix that the scheme does not use (``E-`` in IOB2) raises ValueError.
    """
    role, typ = _parse(tag, normalize_scheme(scheme) if scheme else None)
    return ("O", None) if role == "O" else (tag[0], typ)


def _parse_all(tags: Sequence[str], scheme: str) -> List[_Parsed]:
    return [_parse(t, scheme) for t in tags]


# --- decoding (conlleval's chunk boundaries, as in seqeval.metrics.sequence_labeling) ---------


def _chunk_end(prev_role: str, role: str, prev_type, typ) -> bool:
    if prev_role in ("E", "S"):
        return True
    if prev_role in ("B", "I") and role in ("B", "S", "O"):
        return True
    return prev_role != "O" and prev_type != typ


def _chunk_start(prev_role: str, role: str, prev_type, typ) -> bool:
    if role in ("B", "S"):
        return True
    if prev_role in ("E", "S", "O") and role in ("E", "I"):
        return True
    return role != "O" and prev_type != typ


def _spans(parsed: List[_Parsed]) -> List[Span]:
    spans: List[Span] = []
    prev_role, prev_type, begin = "O", None, 0
    for i, (role, typ) in enumerate(parsed):
        if prev_role != "O" and _chunk_end(prev_role, role, prev_type, typ):
            spans.append((prev_type, begin, i))
        if role != "O" and _chunk_start(prev_role, role, prev_type, typ):
            begin = i
        prev_role, prev_type = role, typ
    if prev_role != "O":
        spans.append((prev_type, begin, len(parsed)))
    return spans


def get_spans(tags: Sequence[str], scheme: str) -> List[Span]:
    """Spans ``(type, start, end_exclusive)`` of a tag sequence, read as conlleval reads it.

    For IOB2 this equals ``seqeval.metrics.sequence_labeling.get_entities`` with ``end + 1``.
    """
    return _spans(_parse_all(tags, normalize_scheme(scheme)))


def chunk_boundaries(labels: Sequence[str], scheme: str) -> Tuple[List[List[bool]], List[List[bool]]]:
    """``get_spans``'s decisions as tables, to read many tag sequences at once (by array lookups):
    ``ends[p][c]``, a span ends just before tag ``c`` when it follows tag ``p``; ``starts[p][c]``,
    a span starts at that ``c``. Tags are indices into ``labels``; index ``len(labels)`` stands for
    outside the sentence (before its first tag and after its last). The spans of a sequence are then
    its starts and ends paired in order: a span starts wherever one ended on a tag that is not O."""
    parsed = _parse_all(labels, normalize_scheme(scheme)) + [("O", None)]
    ends = [[p[0] != "O" and _chunk_end(p[0], c[0], p[1], c[1]) for c in parsed] for p in parsed]
    starts = [[c[0] != "O" and _chunk_start(p[0], c[0], p[1], c[1]) for c in parsed] for p in parsed]
    return ends, starts


def spans_to_tags(spans: Iterable[Span], length: int, scheme: str) -> List[str]:
    """The one valid tag sequence of ``scheme`` that encodes ``spans`` (non-overlapping)."""
    scheme = normalize_scheme(scheme)
    inside = "M" if scheme == "BMES" else "I"
    tags = ["O"] * length
    prev_end, prev_type = -1, None
    for typ, start, end in sorted(spans, key=lambda s: (s[1], s[2])):
        if not (0 <= start < end <= length) or start < prev_end:
            raise ValueError(f"span {(typ, start, end)} is empty, out of range 0..{length} or overlaps another")
        if scheme == "IOB2":
            first, last = "B", inside
        elif scheme == "IOB1":
            first = "B" if (start == prev_end and typ == prev_type) else "I"
            last = "I"
        else:
            first, last = ("S", "S") if end - start == 1 else ("B", "E")
        for k in range(start, end):
            tags[k] = f"{inside}-{typ}"
        tags[start] = f"{first}-{typ}"
        if scheme in ("BIOES", "BMES"):
            tags[end - 1] = f"{last}-{typ}"
        prev_end, prev_type = end, typ
    return tags


# --- validity and transitions ------------------------------------------------------------------


def _can_follow(prev: Optional[_Parsed], cur: Optional[_Parsed], scheme: str) -> bool:
    """May ``cur`` follow ``prev``? ``None`` stands for the sentence boundary (start or end)."""
    same_type = prev is not None and cur is not None and prev[1] == cur[1]
    prev_open = prev is not None and prev[0] in ("B", "I")
    if scheme == "IOB2":
        return cur is None or cur[0] != "I" or (prev_open and same_type)
    if scheme == "IOB1":
        return cur is None or cur[0] != "B" or (prev_open and same_type)
    # BIOES / BMES: B- and I- open a span that I- or E- of the same type must continue.
    if cur is None or cur[0] in ("O", "B", "S"):
        return not prev_open
    return prev_open and same_type


def can_follow(prev: Optional[str], tag: Optional[str], scheme: str) -> bool:
    """May ``tag`` follow ``prev``? ``None`` is the sentence boundary: ``prev=None`` asks whether a
    sentence may start with ``tag``, ``tag=None`` whether it may end with ``prev``."""
    scheme = normalize_scheme(scheme)
    return _can_follow(None if prev is None else _parse(prev, scheme),
                       None if tag is None else _parse(tag, scheme), scheme)


def find_invalid(tags: Sequence[str], scheme: str) -> Optional[int]:
    """Index of the first tag that may not stand where it is, or None when the sequence is valid.

    When only the sentence end is wrong (BIOES ``... B-PER``), this is the last index.
    """
    scheme = normalize_scheme(scheme)
    prev: Optional[_Parsed] = None
    for i, tag in enumerate(tags):
        cur = _parse(tag, scheme)
        if not _can_follow(prev, cur, scheme):
            return i
        prev = cur
    if not _can_follow(prev, None, scheme):
        return len(tags) - 1
    return None


def is_valid(tags: Sequence[str], scheme: str) -> bool:
    """True when ``tags`` obeys ``scheme`` (malformed tags raise ValueError)."""
    return find_invalid(tags, scheme) is None


def repair(tags: Sequence[str], scheme: str) -> List[str]:
    """The valid sequence that encodes the spans conlleval reads from ``tags``."""
    return spans_to_tags(get_spans(tags, scheme), len(tags), scheme)


def convert(tags: Sequence[str], source: str, target: str) -> List[str]:
    """Re-encode ``tags`` from scheme ``source`` to ``target`` (through spans).

    BIOES <-> BMES is a prefix rename (I- <-> M-). An invalid input is read leniently, so the
    output of a conversion between different schemes is always valid.
    """
    source, target = normalize_scheme(source), normalize_scheme(target)
    parsed = _parse_all(tags, source)
    if source == target:
        return list(tags)
    if {source, target} == {"BIOES", "BMES"}:
        inside = "M" if target == "BMES" else "I"
        return [t if role == "O" else f"{inside if role == 'I' else role}-{typ}" for t, (role, typ) in zip(tags, parsed)]
    return spans_to_tags(_spans(parsed), len(tags), target)


def allowed_transitions(labels: Sequence[str], scheme: str) -> Tuple[List[List[bool]], List[bool], List[bool]]:
    """Constraints for a CRF over ``labels`` (tag strings, in the model's label order).

    Returns ``(allowed, start, end)``: ``allowed[i][j]`` says tag ``j`` may follow tag ``i``;
    ``start[j]`` that a sentence may begin with ``j``; ``end[i]`` that it may end with ``i``.
    """
    scheme = normalize_scheme(scheme)
    parsed = _parse_all(labels, scheme)
    allowed = [[_can_follow(p, q, scheme) for q in parsed] for p in parsed]
    start = [_can_follow(None, q, scheme) for q in parsed]
    end = [_can_follow(p, None, scheme) for p in parsed]
    return allowed, start, end


# --- label sets -------------------------------------------------------------------------------


def sort_labels(labels: Iterable[str]) -> List[str]:
    """Unique tags ordered ``O`` first, then by entity type, then by prefix (B, I, M, E, S)."""

    def key(tag: str):
        if tag == "O":
            return (0, "", 0)
        _parse(tag, None)  # raises a clear ValueError for a malformed tag
        return (1, tag[2:], _PREFIX_ORDER[tag[0]])

    return sorted(set(labels), key=key)


def entity_types(labels: Iterable[str]) -> List[str]:
    """Sorted entity types named by a set of tags (``["B-PER", "I-LOC", "O"]`` -> LOC, PER)."""
    return sorted({_parse(t, None)[1] for t in labels} - {None})


def infer_scheme(labels: Iterable[str]) -> str:
    """The scheme a label set points at: M- -> BMES, E-/S- -> BIOES, otherwise IOB2.

    IOB1 and IOB2 use the same prefixes; tell them apart with :func:`is_valid` on the data.
    """
    prefixes = {t[0] for t in labels if t != "O" and _parse(t, None)}
    if "M" in prefixes:
        return "BMES"
    if prefixes & {"E", "S"}:
        return "BIOES"
    return "IOB2"


def spans_and_errors(tags: Sequence[str], schemes: Sequence[str]) -> Tuple[List[Span], List[Optional[int]]]:
    """The spans of ``tags`` and, for each scheme, :func:`find_invalid`'s answer, parsing once.

    Spans do not depend on the scheme (conlleval's reading), so one pass serves a reader that
    has not decided yet between the schemes whose prefixes the tags use. Every tag must be
    well-formed in every scheme given (the caller rules out schemes by prefix first).
    """
    parsed = [_parse(t, None) for t in tags]
    errors: List[Optional[int]] = []
    for scheme in schemes:
        scheme = normalize_scheme(scheme)
        prev: Optional[_Parsed] = None
        bad = None
        for i, cur in enumerate(parsed):
            if not _can_follow(prev, cur, scheme):
                bad = i
                break
            prev = cur
        if bad is None and not _can_follow(prev, None, scheme):
            bad = len(parsed) - 1
        errors.append(bad)
    return _spans(parsed), errors
