"""Tasks as users see them: strings in, labels out (tagging, classification)."""
from __future__ import annotations

from typing import Optional

from ..hub import read_config, resolve_folder
from ..errors import DataFormatError


def load_model(name_or_path, revision: Optional[str] = None, device=None):
    """A saved tagger or classifier, whichever the folder's config.json names, on ``device``
    ("cpu", "cuda", "cuda:1", an int GPU index or a torch.device; default the CPU)."""
    from .classification import TextClassifier
    from .tagging import SequenceTagger

    classes = {cls.architecture: cls for cls in (SequenceTagger, TextClassifier)}
    folder = resolve_folder(name_or_path, revision)
    architecture = read_config(folder)["architecture"]
    if architecture not in classes:
        raise DataFormatError(folder / "config.json", None,
                              f"unknown architecture {architecture!r}; this textrnn loads "
                              f"{', '.join(sorted(classes))}")
    return classes[architecture].from_pretrained(folder, device=device)
