"""Test settings: one torch thread (the machine has two cores), caches in a temporary folder."""
import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")


@pytest.fixture(autouse=True, scope="session")
def _quiet_and_single_threaded(tmp_path_factory):
    import torch

    torch.set_num_threads(1)
    cache = tmp_path_factory.mktemp("hf-datasets-cache")
    os.environ["HF_DATASETS_CACHE"] = str(cache)
    os.environ.setdefault("TEXTRNN_CACHE", str(tmp_path_factory.mktemp("textrnn-cache")))
    yield
