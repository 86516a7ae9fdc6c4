"""Device choice and seeding: a rerun with the same seed on CPU gives the same numbers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from xrec_core.data.feedback import Ratings
from xrec_core.device import pick_device, set_seed
from xrec_core.models.ncf import NCF


def test_pick_device():
    assert pick_device("cpu").type == "cpu"
    assert pick_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ValueError, match="Unknown device"):
        pick_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="CUDA is not available"):
            pick_device("cuda")


def _train(seed: int) -> np.ndarray:
    set_seed(seed)
    rng = np.random.default_rng(0)
    u, i = rng.integers(0, 20, 300), rng.integers(0, 15, 300)
    r = rng.integers(1, 6, 300).astype(float)
    model = NCF(k=4, layers=(8, 4), epochs=3, batch_size=32, seed=seed).fit(Ratings(u, i, r, 20, 15))
    return model.predict(u[:20], i[:20])


def test_same_seed_same_numbers_on_cpu():
    torch.set_num_threads(1)
    np.testing.assert_array_equal(_train(3), _train(3))
    assert not np.array_equal(_train(3), _train(4))
