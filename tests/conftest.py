"""Test settings: one torch thread (the machine has two cores), caches in temporary folders,
the hub offline (tests never need the network)."""
import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")


@pytest.fixture(autouse=True, scope="session")
def _single_thread_and_temporary_caches(tmp_path_factory):
    import datasets
    import torch

    torch.set_num_threads(1)
    cache = tmp_path_factory.mktemp("hf_datasets_cache")
    # datasets reads HF_DATASETS_CACHE once, at import: the environment alone would not redirect it
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_DATASETS_CACHE", str(cache))
        mp.setattr(datasets.config, "HF_DATASETS_CACHE", cache)
        mp.setenv("TEXTRNN_CACHE", str(tmp_path_factory.mktemp("textrnn_cache")))
        yield
