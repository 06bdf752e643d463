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

try:  # experiments/ and conf/ import as saematch_experiments and saematch_conf (setup.py)
    import saematch_conf  # noqa: F401
    import saematch_experiments  # noqa: F401
except ImportError as e:
    raise pytest.UsageError(
        f"{e}: install the checkout first (`make install`, or `pip install -e .` in your venv; "
        "again after pulling a change to setup.py), so experiments/ and conf/ import under "
        "their installed names"
    ) from None


def pytest_collection_modifyitems(config, items):
    """Tests marked gpu need CUDA: skipped, saying so, where torch sees no GPU (`make
    gpu-check` refuses to start there instead of skipping them)."""
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU (torch sees none): `make gpu-check` on one")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


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
