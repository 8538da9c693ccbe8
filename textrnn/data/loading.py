"""``load_corpus``: a named corpus, a file, a folder of splits, a dict of splits or a hub id ->
a ``datasets.DatasetDict`` with ``tokens``/``tags`` or ``text``/``label`` and label names in the
features.
"""
from __future__ import annotations

import json
import logging
import os
import re
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

from .. import tags as T
from ..errors import ConfigError, DataCardMismatch, DataFormatError, TextrnnError
from . import cards as C
from .readers import LabelledFile, TaggedFile, read_file

logger = logging.getLogger("textrnn.data")

# Bump when parsing changes what a file yields, so cached Arrow files are not served stale.
PARSER_VERSION = 1
_SPLIT_NAMES = {"train": "train", "training": "train", "valid": "validation", "validation": "validation",
                "dev": "validation", "val": "validation", "test": "test", "testing": "test"}
_HUB_ID = re.compile(r"^[\w.-]+/[\w.-]+$")
# Files parsed by the running load_corpus call, so the generator does not parse them again.
_MEMO: Dict[Tuple[str, int, int, str], Union[TaggedFile, LabelledFile]] = {}
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
    verify: bool = True,
    cache_dir: Optional[str] = None,
):
    """Read a corpus into a ``datasets.DatasetDict``.

    ``name_or_path``: a named corpus (``conll2003``, ``conllpp``, ``sst2``, ``chnsenticorp``,
    ``resume_ner``; files under ``data_dir`` / ``$TEXTRNN_DATA_DIR``, checked against the data
    card when ``verify``), a file (split ``train``), a folder of ``train``/``valid|dev``/``test``
    files, a dict ``{split: path}``, or a hub id ``owner/name``. Options left None take the card's
    value for a named corpus, otherwise: token_column 0, tag_column -1, text_column "text",
    label_column "label", on_invalid "error" (or "repair": fix invalid tag sequences, with a
    warning). ``label_names`` declares the label set (a list, or a mapping raw label -> name).
    """
    if isinstance(name_or_path, (str, os.PathLike)) and not isinstance(name_or_path, Mapping):
        key = str(name_or_path)
        if not C.has_card(key) and not os.path.exists(key) and _HUB_ID.match(key):
            return _load_hub(key, splits, token_column, tag_column, text_column, label_column, cache_dir)
    card, sources = _resolve(name_or_path, data_dir, splits)
    user = dict(format=format, token_column=token_column, tag_column=tag_column, scheme=scheme,
                convert_to=convert_to, on_invalid=on_invalid, text_column=text_column, label_column=label_column,
                header=header, delimiter=delimiter, multi_label=multi_label or None, label_sep=label_sep,
                label_names=label_names)
    options = {**(_card_options(card) if card else {}), **{k: v for k, v in user.items() if v is not None}}
    keys = []
    try:
        parsed = {}
        for split, path in sources.items():
            parsed[split] = _read_split(path, options, card if verify else None, split)
            keys.append(_memo_key(path, options))
            _MEMO[keys[-1]] = parsed[split]
        return _build(parsed, options, card, cache_dir)
    finally:
        for key in keys:
            _MEMO.pop(key, None)


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
        split = _SPLIT_NAMES.get(path.name.split(".")[0].lower())
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


def _card_options(card: C.Card) -> Dict[str, Any]:
    options = {"format": card.format, **card.options}
    if card.label_names is not None:
        options["label_names"] = card.label_names
    return options


# --- reading ---------------------------------------------------------------------------------


def _reader_options(options: Mapping[str, Any]) -> Dict[str, Any]:
    return {k: v for k, v in options.items() if k != "format"}


def _read_split(path: Path, options: Mapping[str, Any], card: Optional[C.Card], split: str):
    """Parse one file; with a card, check its SHA-256 and counts and name what differs."""
    wrong_hash = C.hash_mismatch(card, path) if card else None
    try:
        parsed = read_file(path, options.get("format"), **_reader_options(options))
    except DataFormatError as err:
        if wrong_hash and not isinstance(err, DataCardMismatch):
            raise DataCardMismatch(err.path, err.line, f"{err.message}; {wrong_hash}") from err
        raise
    if card:
        problems = C.count_mismatches(card.splits[split], parsed.counts) + ([wrong_hash] if wrong_hash else [])
        if problems:
            raise DataCardMismatch(path, None, f"does not match data card {card.path.name}: " + "; ".join(problems))
    return parsed


def _memo_key(path: Path, options: Mapping[str, Any]) -> Tuple[str, int, int, str]:
    st = path.stat()
    return (str(path.resolve()), st.st_size, st.st_mtime_ns, json.dumps(options, sort_keys=True, default=str))


def _label_list(parsed: Mapping[str, Any], options: Mapping[str, Any]) -> List[str]:
    declared = options.get("label_names")
    task = next(iter(parsed.values())).task
    if task == "tagging":
        same_scheme = all(p.scheme == p.source_scheme for p in parsed.values())
        if declared is not None and same_scheme:
            return T.sort_labels(declared)
        return T.sort_labels(set().union(*(p.labels() for p in parsed.values())))
    if isinstance(declared, Mapping):
        return list(dict.fromkeys(declared.values()))
    if declared is not None:
        return list(declared)
    found = set().union(*(p.label_set() for p in parsed.values()))
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
    """Rows of one parsed file (memoised by load_corpus; parsed again only when absent)."""
    opts = json.loads(options)
    parsed = _MEMO.get((path, size, mtime_ns, json.dumps(opts["read"], sort_keys=True, default=str)))
    if parsed is None:
        parsed = read_file(path, opts["read"].get("format"), **_reader_options(opts["read"]))
    index = {name: i for i, name in enumerate(opts["names"])}
    if parsed.task == "tagging":
        for tokens, tags in zip(parsed.tokens, parsed.tags):
            yield {"tokens": tokens, "tags": [index[t] for t in tags]}
    elif parsed.multi_label:
        for text, names in zip(parsed.texts, parsed.labels):
            yield {"text": text, "labels": [index[n] for n in names]}
    else:
        for text, name in zip(parsed.texts, parsed.labels):
            yield {"text": text, "label": index[name]}


def _build(parsed: Mapping[str, Any], options: Mapping[str, Any], card: Optional[C.Card], cache_dir):
    import datasets

    tasks = {p.task for p in parsed.values()}
    if len(tasks) > 1:
        raise ConfigError(f"the splits mix tagging and classification files: {', '.join(map(str, parsed))}")
    task = tasks.pop()
    names = _label_list(parsed, options)
    multi = task == "classification" and bool(options.get("multi_label"))
    features = _features(task, names, multi)
    out = datasets.DatasetDict()
    for split, p in parsed.items():
        path, size, mtime_ns, read = _memo_key(Path(p.path), options)
        gen_kwargs = {"path": path, "size": size, "mtime_ns": mtime_ns, "version": PARSER_VERSION,
                      "options": json.dumps({"read": json.loads(read), "names": names}, sort_keys=True)}
        ds = datasets.Dataset.from_generator(_generate, features=features, gen_kwargs=gen_kwargs,
                                             cache_dir=cache_dir, split=datasets.NamedSplit(split))
        report = {"path": p.path, "task": task, "counts": p.counts, "corpus": card.name if card else None}
        if task == "tagging":
            report.update(scheme=p.scheme, source_scheme=p.source_scheme)
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
