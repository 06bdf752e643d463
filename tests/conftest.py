import os
import random
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
os.environ.setdefault("WANDB_MODE", "disabled")
os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(autouse=True)
def _seed_everything():
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def test_zoo(tmp_path_factory):
    """The test-size zoo, built once per session into $SAEMATCH_CACHE or a temp dir."""
    from saematch.zoo import ensure_zoo

    cache = os.environ.get("SAEMATCH_CACHE") or tmp_path_factory.mktemp("saematch-cache")
    return ensure_zoo("test", cache_dir=cache, seed=0, progress=False)


@pytest.fixture(scope="session")
def test_planted(tmp_path_factory):
    """The test-size planted set, built once per session into $SAEMATCH_CACHE or a temp dir."""
    from saematch.planted import ensure_planted

    cache = os.environ.get("SAEMATCH_CACHE") or tmp_path_factory.mktemp("saematch-cache")
    return ensure_planted("test", cache_dir=cache, seed=0, progress=False)
