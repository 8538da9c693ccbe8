"""Model folders: config.json + model.safetensors + tokenizer.json + vocabularies + a model card.

Nothing here unpickles: weights are safetensors, everything else JSON. ``config.json`` names a
versioned architecture (``birnn-tagger/1``); a folder whose architecture this release does not
know is refused with a message that says which ones it does.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional

from safetensors import SafetensorError

from .errors import ConfigError, DataFormatError
from .utils import FILE_MODE, PathLike, atomic_write_text, fsync_dir, fsync_file

if TYPE_CHECKING:
    import torch

logger = logging.getLogger(__name__)

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
TOKENIZER_NAME = "tokenizer.json"
CHARS_NAME = "char_vocab.json"
BIGRAMS_NAME = "bigram_vocab.json"
LEXICON_NAME = "lexicon.json"
ONNX_NAME = "model.onnx"  # an exported folder's graph (textrnn.export), in place of model.safetensors
CRF_NAME = "crf.safetensors"  # an exported CRF tagger's transitions
CARD_NAME = "README.md"
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".ckpt")


def write_model_folder(path: PathLike, config: Dict[str, Any], state_dict: Dict[str, torch.Tensor],
                       write_extra: Callable[[Path], None], card: Optional[str] = None) -> Path:
    """Write a model into ``path`` so that the folder always holds one whole model, old or new.

    The folder may also hold a run's metrics.jsonl, results.json, checkpoint and plots, so it is
    not replaced wholesale. Instead every model file is first written into a staging folder
    inside it (a failure there leaves the old model untouched); then the old model files move
    into a backup folder and the new ones move in, by renames, which cannot fail half-way through
    a file. ``config.json`` is the commit point: it leaves first and arrives last, so a folder
    with a config.json never holds a mix of two models, and a rename that fails rolls every
    earlier one back. A process killed during the swap (a few renames) leaves no config.json, so
    the folder does not load, and the moved-out old files in ``.textrnn-save-*.old``, which the
    loading error points at (moving them back restores the old model). The next save clears such
    leftovers: two saves into one folder at the same time are not supported.
    """
    from safetensors.torch import save_file  # torch only where weights are (exported models run without)

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    _remove_leftovers(path)
    stage = Path(tempfile.mkdtemp(dir=path, prefix=SAVE_PREFIX, suffix=".tmp"))
    try:
        weights = stage / WEIGHTS_NAME
        save_file({k: v.detach().contiguous().cpu() for k, v in state_dict.items()}, str(weights),
                  metadata={"format": "pt"})
        write_extra(stage)
        if card is not None:
            atomic_write_text(stage / CARD_NAME, card)
        atomic_write_text(stage / CONFIG_NAME, json.dumps(config, indent=2, ensure_ascii=False) + "\n")
        names = sorted(p.name for p in stage.iterdir() if not p.name.startswith("."))
        for name in names:
            _check_target(path / name)
            os.chmod(stage / name, FILE_MODE)  # safetensors writes 0600; a saved model is meant to be shared
            fsync_file(stage / name)
        _swap_in(path, stage, names)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return path


SAVE_PREFIX = ".textrnn-save-"
# the files that make up a model: a save replaces all of those present, even ones the new model
# lacks (a bigram vocabulary of an earlier model must not stay beside a model without bigrams)
MODEL_FILES = (CONFIG_NAME, WEIGHTS_NAME, TOKENIZER_NAME, CHARS_NAME, BIGRAMS_NAME, LEXICON_NAME)


def _remove_leftovers(folder: Path) -> None:
    for leftover in folder.glob(f"{SAVE_PREFIX}*"):
        if leftover.is_dir() and leftover.suffix in (".tmp", ".old"):
            shutil.rmtree(leftover, ignore_errors=True)


def _check_target(target: Path) -> None:
    if target.is_symlink() or not target.exists() or target.is_file():
        return
    raise DataFormatError(target, None, "cannot save the model: expected a file here (or nothing), "
                                        "found a folder or other non-file; move it away and save again")


def _swap_in(folder: Path, stage: Path, names: List[str]) -> None:
    """Move the old model files into a backup folder and the staged ones in, config.json last."""
    old = [n for n in (*MODEL_FILES, *names) if (folder / n).is_file() or (folder / n).is_symlink()]
    old = sorted(set(old), key=lambda n: n != CONFIG_NAME)  # config.json out first
    new = sorted(names, key=lambda n: n == CONFIG_NAME)  # and in last
    backup = Path(tempfile.mkdtemp(dir=folder, prefix=SAVE_PREFIX, suffix=".old"))
    moved: List[str] = []
    placed: List[str] = []
    try:
        for name in old:
            os.replace(folder / name, backup / name)
            moved.append(name)
        for name in new:
            os.replace(stage / name, folder / name)
            placed.append(name)
        fsync_dir(folder)
    except BaseException:
        try:
            for name in reversed(placed):
                os.replace(folder / name, stage / name)
            for name in reversed(moved):
                os.replace(backup / name, folder / name)
        except OSError as err:  # the backup is all that is left of the old model: keep it
            raise DataFormatError(folder, None, f"saving failed and so did putting the previous model "
                                                f"back ({err}); its files are in {backup}") from err
        shutil.rmtree(backup, ignore_errors=True)
        raise
    shutil.rmtree(backup, ignore_errors=True)


def read_config(folder: Path) -> Dict[str, Any]:
    """config.json of a model folder, with clear errors for what is missing or unreadable."""
    if not folder.is_dir():
        raise DataFormatError(folder, None, "expected a model folder (config.json, model.safetensors, "
                              "tokenizer.json); no such folder")
    path = folder / CONFIG_NAME
    if not path.exists():
        backups = sorted(folder.glob(f"{SAVE_PREFIX}*.old/{CONFIG_NAME}"))
        if backups:
            raise DataFormatError(folder, None, f"no {CONFIG_NAME}: a save into this folder was interrupted; "
                                  f"the previous model's files are in {backups[0].parent.name}/ (move them "
                                  "back, or save the model again)")
        raise DataFormatError(folder, None, f"no {CONFIG_NAME} in this folder: not a textrnn model")
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise DataFormatError(path, getattr(err, "lineno", None), f"not valid JSON ({err})") from None
    if not isinstance(config, dict) or "architecture" not in config:
        raise DataFormatError(path, None, "expected a JSON object with an 'architecture' field")
    return config


def read_weights(folder: Path) -> Dict[str, torch.Tensor]:
    """model.safetensors; a pickle in its place is refused, never loaded."""
    from safetensors.torch import load_file

    path = folder / WEIGHTS_NAME
    if not path.exists():
        pickles = [p.name for p in folder.iterdir() if p.suffix in PICKLE_SUFFIXES]
        hint = f" (found {', '.join(pickles)}: pickle files are never loaded)" if pickles else ""
        raise DataFormatError(folder, None, f"no {WEIGHTS_NAME} in this folder{hint}")
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as err:
        raise DataFormatError(path, None, f"not a readable safetensors file ({err})") from None


def load_config(config_class: Any, data: Dict[str, Any], folder: Path) -> Any:
    """The model config from config.json's data. A wrong type (a number written as a string), a
    missing, unknown or out-of-range setting, an unknown rnn type, missing labels: one error that
    names config.json and the field."""
    path = folder / CONFIG_NAME
    try:
        config = config_class.from_dict(data)
    except ConfigError as err:
        raise DataFormatError(path, None, str(err)) from None
    if not config.labels:
        raise DataFormatError(path, None, "labels is missing or empty; a saved model needs the names of its labels")
    return config


# the config fields that size each part of a model, named when a saved tensor does not fit
_SIZED_BY = (
    ("words.ngrams", "subword_buckets, word_dim"),
    ("words.", "vocab_size, num_trainable_words, word_dim"),
    ("bigrams.", "bigram_vocab_size, bigram_dim"),
    ("lexicon.", "lexicon_size, lexicon_rows, lexicon_dim, lexicon_trainable"),
    ("chars.", "char_encoder, num_chars, char_dim, char_filters, char_kernel"),
    ("encoder.", "rnn, hidden_size, num_layers and the input sizes "
                 "(word_dim, char_filters, bigram_dim, lexicon_dim)"),
    ("proj.", "num_tags, labels, hidden_size"),
    ("crf.", "use_crf, num_tags, labels"),
    ("pool.", "pooling, hidden_size"),
    ("out.", "labels, hidden_size"),
)


def check_weights(model_class: Any, config: Any, weights: Dict[str, torch.Tensor], folder: Path) -> None:
    """Compare the saved tensors with the ones ``config`` builds (on the meta device: no memory,
    so a vocab_size edited to a billion is an error, not an allocation) and name the fields."""
    path = folder / CONFIG_NAME
    try:
        import torch

        with torch.device("meta"):
            expected = {k: tuple(v.shape) for k, v in model_class(config).state_dict().items()}
    except NotImplementedError:  # an operation without a meta kernel: load_state still checks
        return
    except (ValueError, KeyError, IndexError) as err:
        raise DataFormatError(path, None, f"cannot build the model it describes ({err})") from None
    problems = []
    for key in [*expected, *(k for k in weights if k not in expected)]:
        found = tuple(weights[key].shape) if key in weights else None
        if found is None:
            problems.append((key, f"{key} is missing from {WEIGHTS_NAME}"))
        elif key not in expected:
            problems.append((key, f"{WEIGHTS_NAME} holds {key}, which config.json does not build"))
        elif found != expected[key]:
            problems.append((key, f"{key} is {list(found)} in {WEIGHTS_NAME} but {list(expected[key])} "
                                  "from config.json"))
    if not problems:
        return
    fields = next((f for prefix, f in _SIZED_BY if problems[0][0].startswith(prefix)), "the sizes")
    more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
    raise DataFormatError(path, None, f"does not match {WEIGHTS_NAME}: "
                          + "; ".join(p for _, p in problems[:3]) + more
                          + f". Check {fields}: were the files of two models mixed, or config.json edited?")


# each vocabulary file and the config field that says its size
VOCAB_SIZES = {TOKENIZER_NAME: "vocab_size", CHARS_NAME: "num_chars", BIGRAMS_NAME: "bigram_vocab_size"}


def check_vocabularies(vocabularies: Dict[str, Any], config: Any, folder: Path) -> None:
    """Each vocabulary file holds as many entries as config.json says (and so as the weights)."""
    for name, vocab in vocabularies.items():
        field = VOCAB_SIZES.get(name)
        if vocab is None or field is None or len(vocab) == getattr(config, field):
            continue
        raise DataFormatError(folder / CONFIG_NAME, None, f"{field} is {getattr(config, field)} but {name} holds "
                              f"{len(vocab)} entries: the two files come from different models, or one was edited")


def load_state(module: torch.nn.Module, weights: Dict[str, torch.Tensor], folder: Path) -> None:
    """Load weights strictly, turning torch's key/shape complaints into one clear error."""
    try:
        module.load_state_dict(weights, strict=True)
    except RuntimeError as err:
        first = str(err).strip().splitlines()
        detail = "; ".join(line.strip() for line in first[:4])
        raise DataFormatError(folder / WEIGHTS_NAME, None,
                              f"weights do not match config.json ({detail})") from None


def resolve_folder(name_or_path: PathLike, revision: Optional[str] = None) -> Path:
    """A local folder as is; anything else as a hub repo id through the local HF cache or the hub."""
    path = Path(name_or_path)
    if path.exists():
        return path
    name = str(name_or_path)
    if name.count("/") != 1 or name.startswith((".", "/")):
        raise DataFormatError(path, None, "no such model folder (and not a hub id like 'org/name')")
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    try:
        return Path(snapshot_download(name, revision=revision))
    except LocalEntryNotFoundError as err:
        raise DataFormatError(name, None, "not in the local Hugging Face cache and the hub cannot be "
                              f"reached (offline?); pass a local model folder instead ({err})") from None
    except HfHubHTTPError as err:
        raise DataFormatError(name, None, f"the hub refused this model id ({err})") from None


# what a model folder holds that belongs on the hub (not checkpoints, logs or plots of the run)
HUB_FILES = [CONFIG_NAME, WEIGHTS_NAME, ONNX_NAME, CRF_NAME, TOKENIZER_NAME, CHARS_NAME, BIGRAMS_NAME, LEXICON_NAME,
             CARD_NAME, "results.json", "test_metrics.json", "confusion_matrix.png", "learning_curves.png"]


def push_to_hub(folder: PathLike, repo_id: str, *, private: Optional[bool] = None, token: Optional[str] = None,
                revision: Optional[str] = None, commit_message: str = "Upload textrnn model"):
    """Create the repo if needed and upload the model's files in one commit; returns the commit URL."""
    from huggingface_hub import HfApi

    folder = Path(folder)
    config = read_config(folder)  # refuse to upload something that is not a model folder
    weights = ONNX_NAME if isinstance(config.get("export"), dict) else WEIGHTS_NAME  # an exported folder: its graph
    if not (folder / weights).exists():
        raise DataFormatError(folder, None, f"no {weights}: nothing to push")
    api = HfApi(token=token)
    api.create_repo(repo_id, private=private, exist_ok=True)
    info = api.upload_folder(repo_id=repo_id, folder_path=str(folder), revision=revision,
                             allow_patterns=HUB_FILES, commit_message=commit_message)
    return info.commit_url


def write_model_card(folder: PathLike, task: str, **kwargs: Any) -> None:
    """Write README.md into a saved model folder, built from its own config.json."""
    folder = Path(folder)
    atomic_write_text(folder / CARD_NAME, model_card(task, read_config(folder), **kwargs))


def _input_features(config: Dict[str, Any]) -> str:
    """The parts of a token's input vector, in words, from config.json."""
    parts = [f"a {config.get('word_dim')}d word vector"]
    if config.get("num_chars") and config.get("char_encoder", "none") != "none":
        parts.append(f"character features (a {config['char_encoder'].upper()}, "
                     f"{config.get('char_filters')} wide)")
    if config.get("bigram_vocab_size"):
        parts.append(f"a {config.get('bigram_dim')}d vector of the token and the next "
                     f"({config['bigram_vocab_size']:,} bigrams)")
    if config.get("lexicon_size"):
        parts.append(f"the B/M/E/S sets (SoftLexicon) of the {config['lexicon_size'] - 1:,} lexicon words in "
                     f"`{LEXICON_NAME}` that match around it, {config.get('lexicon_dim')}d each")
    return ", ".join(parts[:-1]) + " and " + parts[-1] if len(parts) > 1 else parts[0]


def model_card(task: str, config: Dict[str, Any], *, dataset: Optional[str] = None,
               metrics: Optional[Dict[str, float]] = None, training: Optional[Dict[str, Any]] = None,
               repo_id: str = "PATH_OR_REPO_ID", curves: Optional[str] = None) -> str:
    """A README.md whose YAML header carries ``model-index`` results, so the hub shows the scores."""
    from huggingface_hub import EvalResult, ModelCard, ModelCardData

    hf_task = "token-classification" if task == "token-classification" else "text-classification"
    results = [EvalResult(task_type=hf_task, dataset_type=dataset or "custom", dataset_name=dataset or "custom",
                          dataset_split="test", metric_type=name, metric_value=round(float(value), 2))
               for name, value in (metrics or {}).items()]
    data = ModelCardData(library_name="textrnn", tags=["textrnn", "rnn", config.get("rnn", "lstm"), hf_task],
                         pipeline_tag=hf_task, datasets=[dataset] if dataset else None,
                         model_name=repo_id, eval_results=results or None, license="apache-2.0")
    labels = ", ".join(config.get("labels", []))
    pipe = "ner" if hf_task == "token-classification" else "text-classification"
    lines = [
        f"# {repo_id}", "",
        f"A {config['architecture']} model trained with textrnn: "
        f"a bidirectional {config.get('rnn', 'lstm').upper()} ({config.get('hidden_size')} per direction, "
        f"{config.get('num_layers', 1)} layer(s))"
        + (" with a CRF" if config.get("use_crf") else "") + f" for {hf_task}.", "",
        "Each token's input: " + _input_features(config) + ".", "",
        "## Usage", "", "```python", "from textrnn import pipeline",
        f'model = pipeline("{pipe}", model="{repo_id}")', 'model("Your text here.")', "```", "",
        "## Labels", "", labels or "(none)", "",
    ]
    if dataset:
        lines += ["## Training data", "",
                  f"`{dataset}`; see its data card in textrnn's `data_cards/{dataset}.md` for source, "
                  "licence, splits and counts.", ""]
    if metrics:
        lines += ["## Results (test split)", "", "| metric | value |", "|---|---|"]
        lines += [f"| {k} | {v:.2f} |" for k, v in metrics.items()] + [""]
    if curves:
        lines += ["## Learning curves", "", f"![training loss, dev score and learning rate]({curves})", ""]
    if training:
        lines += ["## Training settings", "", "```json", json.dumps(training, indent=2), "```", ""]
    lines += ["## Intended use and limits", "",
              "For research and as a fast CPU baseline. The model only knows the label set and the kind "
              "of text it was trained on; expect lower scores on other domains, and check its output "
              "before relying on it.", ""]
    return ModelCard.from_template(data, template_str="---\n{{ card_data }}\n---\n\n" + "\n".join(lines)).content
