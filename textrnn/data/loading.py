"""``load_corpus``: a named corpus, a file, a folder of splits, a dict of splits or a hub id ->
a ``datasets.DatasetDict`` with ``tokens``/``tags`` or ``text``/``label`` and label names in the
features.
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import re
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

from .. import tags as T
from ..errors import ConfigError, DataCardMismatch, DataFormatError, TextrnnError
from . import cards as C
from .readers import FORMATS, finish_tagging_scan, iter_rows, scan_file
from .records import FileScan
from .schemes import resolve_schemes

logger = logging.getLogger("textrnn.data")

# Bump when parsing changes what a file yields, so cached Arrow files are not served stale.
PARSER_VERSION = 2
_SPLIT_NAMES = {"train": "train", "training": "train", "valid": "validation", "validation": "validation",
                "dev": "validation", "val": "validation", "test": "test", "testing": "test",
                "testa": "validation", "testb": "test"}  # eng.testa / eng.testb: CoNLL-2003's own names
_HUB_ID = re.compile(r"^[\w.-]+/[\w.-]+$")
Source = Union[str, os.PathLike, Mapping[str, Union[str, os.PathLike]]]


def load_corpus(
    name_or_path: Source,
    *,
    format: Optional[str] = None,
    data_dir: Union[str, os.PathLike, None] = None,
    splits: Union[str, Sequence[str], None] = None,
    token_column: Union[int, str, None] = None,
    tag_column: Union[int, str, None] = None,
    scheme: Optional[str] = None,
    convert_to: Optional[str] = None,
    on_invalid: Optional[str] = None,
    text_column: Union[str, int, None] = None,
    label_column: Union[str, int, None] = None,
    header: Optional[bool] = None,
    delimiter: Optional[str] = None,
    multi_label: bool = False,
    label_sep: Optional[str] = None,
    label_names: Union[Sequence[str], Mapping[str, str], None] = None,
    multiline: Optional[bool] = None,
    verify: bool = True,
    cache_dir: Optional[str] = None,
):
    """Read a corpus into a ``datasets.DatasetDict``.

    ``name_or_path``: a named corpus (``conll2003``, ``conllpp``, ``sst2``, ``chnsenticorp``,
    ``resume_ner``; files under ``data_dir`` / ``$TEXTRNN_DATA_DIR``, checked against the data
    card when ``verify``), a file (split ``train``), a folder of ``train``/``valid|dev``/``test``
    files, a dict ``{split: path}``, or a hub id ``owner/name``. Options left None take the card's
    value for a named corpus, otherwise: the format from the extension or the content,
    token_column 0, tag_column -1, text_column "text", label_column "label", on_invalid "error"
    (or "repair": fix invalid tag sequences, with a warning). ``label_names`` declares the label
    set (a list, or a mapping raw label -> name). Without ``scheme``, the tag scheme is the one
    every split is valid in; splits in different schemes are an error unless ``convert_to``
    names one. ``multiline=True`` trusts CSV fields that span lines even where their lines read
    as records of their own. Files are read twice, streaming: a check that counts and collects
    the labels, then the rows into Arrow, so memory does not grow with the corpus.
    """
    if isinstance(name_or_path, (str, os.PathLike)) and not isinstance(name_or_path, Mapping):
        key = str(name_or_path)
        if not C.has_card(key) and not os.path.exists(key) and _HUB_ID.match(key):
            return _load_hub(key, splits, token_column, tag_column, text_column, label_column, cache_dir)
    user = dict(format=format, token_column=token_column, tag_column=tag_column, scheme=scheme,
                convert_to=convert_to, on_invalid=on_invalid, text_column=text_column, label_column=label_column,
                header=header, delimiter=delimiter, multi_label=multi_label or None, label_sep=label_sep,
                label_names=label_names, multiline=multiline)
    scans, options, card = _scan(name_or_path, data_dir, splits, user, verify)
    return _build(scans, options, card, cache_dir)


def scan_corpus(name_or_path: Source, *, data_dir=None, splits=None, verify: bool = True,
                **options) -> Dict[str, FileScan]:
    """The checking pass of :func:`load_corpus` alone: ``{split: FileScan}`` with each file's
    format, tag scheme, counts and labels, without writing any Arrow (what ``textrnn check`` shows)."""
    unknown = sorted(set(options) - set(_OPTIONS))
    if unknown:
        raise TypeError(f"scan_corpus() got unexpected options {unknown}; expected some of {list(_OPTIONS)}")
    return _scan(name_or_path, data_dir, splits, options, verify)[0]


_OPTIONS = ("format", "token_column", "tag_column", "scheme", "convert_to", "on_invalid", "text_column", "label_column",
            "header", "delimiter", "multi_label", "label_sep", "label_names", "multiline")


def _scan(name_or_path, data_dir, splits, user: Mapping[str, Any], verify: bool):
    card, sources = _resolve(name_or_path, data_dir, splits)
    options = {**(_card_options(card) if card else {}), **{k: v for k, v in user.items() if v is not None}}
    _check_options(options)
    checked = card if verify else None
    scans = {split: _scan_split(path, options, checked) for split, path in sources.items()}
    tasks = {s.task for s in scans.values()}
    if len(tasks) > 1:
        raise ConfigError("the splits mix tagging and classification files: " +
                          ", ".join(f"{s.path} ({s.task})" for s in scans.values()))
    if tasks == {"tagging"}:
        with _card_context(checked):
            chosen = resolve_schemes({k: s.tag_stats for k, s in scans.items()}, options.get("convert_to"),
                                     options.get("on_invalid") or "error")
        for split, scan in scans.items():
            finish_tagging_scan(scan, *chosen[split])
    if checked:
        for split, scan in scans.items():
            problems = C.count_mismatches(checked.splits[split], scan.counts)
            wrong_hash = C.hash_mismatch(checked, scan.path)
            problems += [wrong_hash] if wrong_hash else []
            if problems:
                raise DataCardMismatch(scan.path, None, f"does not match data card {checked.path.name}: " +
                                       "; ".join(problems))
    return scans, options, card


def dataset_scheme(dataset) -> Optional[str]:
    """The tag scheme of a split's ``tags`` as ``load_corpus`` recorded it (after any
    ``convert_to``), or None for a classification split or a dataset from elsewhere."""
    from .stats import read_report

    return read_report(dataset).get("scheme")


# --- where the files are ---------------------------------------------------------------------


def _resolve(source: Source, data_dir, splits) -> Tuple[Optional[C.Card], Dict[str, Path]]:
    card = None
    if isinstance(source, Mapping):
        sources = {str(k): Path(v) for k, v in source.items()}
    elif C.has_card(str(source)):
        card = C.card_for(str(source))
        if card.task not in ("tagging", "classification"):
            raise ConfigError(f"{source!r} is a {card.task} card, not a corpus; see textrnn.embeddings")
        folder = C.default_data_dir(data_dir) / card.folder
        sources = {split: folder / spec.file for split, spec in card.splits.items()}
    elif os.path.isdir(source):
        sources = _split_files(Path(source))
    elif os.path.isfile(source):
        sources = {"train": Path(source)}
    else:
        raise ConfigError(f"{str(source)!r} is not a file, a folder, a named corpus ({', '.join(C.available_cards())})"
                          " or a hub id (owner/name)")
    if splits is not None:
        wanted = [splits] if isinstance(splits, str) else list(splits)
        unknown = [s for s in wanted if s not in sources]
        if unknown:
            raise ConfigError(f"no split {unknown[0]!r} in {source}; splits: {', '.join(sources)}")
        sources = {s: sources[s] for s in wanted}
    for split, path in sources.items():
        if not re.match(r"^\w+(\.\w+)*$", split):
            raise ConfigError(f"split name {split!r} must be letters, digits, _ or . (like 'train', 'validation')")
        if not path.is_file():
            hint = "; set TEXTRNN_DATA_DIR or pass data_dir=" if card else ""
            raise DataFormatError(path, None, f"no such file (split {split!r}){hint}")
    return card, sources


def _split_files(folder: Path) -> Dict[str, Path]:
    """Split files of a folder by name: train*, valid*/validation*/dev*/val*, test*."""
    found: Dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        split = split_name(path.name)
        if split is None or not path.is_file():
            logger.info("%s: not a split file (expected train, valid/dev or test in the name); skipped", path)
            continue
        if split in found:
            raise ConfigError(f"{folder}: both {found[split].name} and {path.name} look like the {split} split; "
                              "pass a dict {split: path}")
        found[split] = path
    if not found:
        raise ConfigError(f"{folder}: no train, valid/dev or test files found")
    order = ["train", "validation", "test"]
    return {split: found[split] for split in sorted(found, key=order.index)}


def split_name(name: str) -> Optional[str]:
    """``train.txt`` -> train, ``dev.conll`` -> validation, ``eng.testa`` -> validation."""
    parts = name.lower().split(".")
    for part in parts[:1] + parts[1:]:
        if part in _SPLIT_NAMES:
            return _SPLIT_NAMES[part]
    return None


def _card_options(card: C.Card) -> Dict[str, Any]:
    options = {"format": card.format, **card.options}
    if card.label_names is not None:
        options["label_names"] = card.label_names
    return options


# --- reading ---------------------------------------------------------------------------------


def _check_options(options: Mapping[str, Any]) -> None:
    """Catch bad option values before any file is read."""
    for key in ("scheme", "convert_to"):
        if options.get(key) is not None:
            try:
                T.normalize_scheme(options[key])
            except ValueError as err:
                raise ConfigError(f"{key}={options[key]!r}: {err}") from None
    if options.get("on_invalid") not in (None, "error", "repair"):
        raise ConfigError(f"on_invalid must be 'error' or 'repair', got {options['on_invalid']!r}")
    fmt = options.get("format")
    if fmt is not None and str(fmt).lower() not in FORMATS:
        raise ConfigError(f"unknown format {fmt!r}; expected format= one of {', '.join(FORMATS)}")


@contextlib.contextmanager
def _card_context(card: Optional[C.Card]):
    """Name the card's hash in a file error: the cause is then likely an altered file."""
    try:
        yield
    except DataFormatError as err:
        if card is None or isinstance(err, DataCardMismatch) or err.path is None:
            raise
        wrong_hash = C.hash_mismatch(card, err.path)
        if wrong_hash:
            raise DataCardMismatch(err.path, err.line, f"{err.message}; {wrong_hash}") from err
        raise


def _scan_split(path: Path, options: Mapping[str, Any], card: Optional[C.Card]) -> FileScan:
    """The checking pass over one file; with a card, an error also says when the hash differs."""
    with _card_context(card):
        return scan_file(path, options.get("format"), **{k: v for k, v in options.items() if k != "format"})


def _label_list(scans: Mapping[str, FileScan], options: Mapping[str, Any]) -> List[str]:
    declared = options.get("label_names")
    task = next(iter(scans.values())).task
    if task == "tagging":
        same_scheme = all(s.scheme == s.target for s in scans.values())
        if declared is not None and same_scheme:
            return T.sort_labels(declared)
        return T.sort_labels(set().union(*(s.label_names() for s in scans.values())))
    if isinstance(declared, Mapping):
        return list(dict.fromkeys(declared.values()))
    if declared is not None:
        return list(declared)
    found = set().union(*(s.label_names() for s in scans.values()))
    numeric = all(re.fullmatch(r"-?\d+", x) for x in found)
    return sorted(found, key=(lambda x: int(x)) if numeric else None)


def _features(task: str, names: List[str], multi_label: bool):
    from datasets import ClassLabel, Features, Sequence, Value

    if task == "tagging":
        return Features({"tokens": Sequence(Value("string")), "tags": Sequence(ClassLabel(names=names))})
    if multi_label:
        return Features({"text": Value("string"), "labels": Sequence(ClassLabel(names=names))})
    return Features({"text": Value("string"), "label": ClassLabel(names=names)})


def _generate(path: str, size: int, mtime_ns: int, options: str, version: int):
    """Rows of one file, read again (streaming) the way its scan decided."""
    opts = json.loads(options)
    scan = FileScan(path, opts["format"], opts["task"], opts["read"], opts["counts"], scheme=opts["scheme"],
                    target=opts["target"], size=size, mtime_ns=mtime_ns)
    index = {name: i for i, name in enumerate(opts["names"])}
    rows = iter_rows(scan)
    if scan.task == "tagging":
        for tokens, tags in rows:
            yield {"tokens": tokens, "tags": [index[t] for t in tags]}
    elif opts["read"].get("multi_label"):
        for text, names in rows:
            yield {"text": text, "labels": [index[n] for n in names]}
    else:
        for text, name in rows:
            yield {"text": text, "label": index[name]}


def _build(scans: Mapping[str, FileScan], options: Mapping[str, Any], card: Optional[C.Card], cache_dir):
    import datasets

    task = next(iter(scans.values())).task
    names = _label_list(scans, options)
    multi = task == "classification" and bool(options.get("multi_label"))
    features = _features(task, names, multi)
    out = datasets.DatasetDict()
    for split, scan in scans.items():
        counts = {k: scan.counts[k] for k in ("sentences", "documents", "repaired_sentences") if k in scan.counts}
        spec = {"format": scan.format, "task": task, "read": scan.options, "counts": counts, "scheme": scan.scheme,
                "target": scan.target, "names": names}
        gen_kwargs = {"path": str(Path(scan.path).resolve()), "size": scan.size, "mtime_ns": scan.mtime_ns,
                      "version": PARSER_VERSION, "options": json.dumps(spec, sort_keys=True, default=str)}
        try:
            ds = datasets.Dataset.from_generator(_generate, features=features, gen_kwargs=gen_kwargs,
                                                 cache_dir=cache_dir, split=datasets.NamedSplit(split))
        except Exception as err:  # datasets wraps what the generator raised
            cause = err
            while cause is not None and not isinstance(cause, TextrnnError):
                cause = cause.__cause__ or cause.__context__
            if cause is None:
                raise
            raise cause from None
        report = {"path": scan.path, "task": task, "counts": scan.counts, "corpus": card.name if card else None,
                  "format": scan.format}
        if task == "tagging":
            report.update(scheme=scan.target, source_scheme=scan.scheme)
        ds.info.description = json.dumps({"textrnn": report})
        out[split] = ds
    return out


# --- the hub ---------------------------------------------------------------------------------


def _load_hub(name, splits, token_column, tag_column, text_column, label_column, cache_dir):
    """``datasets.load_dataset`` with actionable errors and textrnn's column names."""
    import datasets
    from datasets.exceptions import DatasetNotFoundError

    try:
        dsdict = datasets.load_dataset(name, cache_dir=cache_dir)
    except ConnectionError as err:
        raise TextrnnError(
            f"cannot load {name!r}: the Hugging Face hub is unreachable ({err}). Pass local files instead: "
            "load_corpus('path/to/train.conll'), a folder of train/dev/test files, or {'train': path, ...}"
        ) from None
    except DatasetNotFoundError:
        raise TextrnnError(f"{name!r} is not a local file or folder, a named corpus "
                           f"({', '.join(C.available_cards())}), or a dataset on the hub") from None
    if splits is not None:
        wanted = [splits] if isinstance(splits, str) else list(splits)
        unknown = [s for s in wanted if s not in dsdict]
        if unknown:
            raise ConfigError(f"no split {unknown[0]!r} in {name}; splits: {', '.join(dsdict)}")
        dsdict = datasets.DatasetDict({s: dsdict[s] for s in wanted})
    renames = {text_column: "text", label_column: "label", token_column: "tokens", tag_column: "tags"}
    for split, ds in dsdict.items():
        cols = ds.column_names
        todo = {k: v for k, v in renames.items() if isinstance(k, str) and k in cols and k != v and v not in cols}
        if "tags" not in cols and "ner_tags" in cols and "tags" not in todo.values():
            todo["ner_tags"] = "tags"
        dsdict[split] = ds.rename_columns(todo) if todo else ds
    return dsdict
