"""Device choice, seeding and thread limits (torch and BLAS), shared by every chapter."""

from __future__ import annotations

import os
import random

import numpy as np


def pick_device(requested: str = "auto") -> "torch.device":  # noqa: F821 - torch imported lazily
    """Return ``cuda`` when available (or requested), else ``cpu``.

    Parameters
    ----------
    requested : {"auto", "cpu", "cuda", "cuda:N"}
        ``auto`` picks CUDA when present. Asking for CUDA on a machine without it is an error,
        not a silent fallback.
    """
    import torch

    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if requested.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"device={requested!r} was requested but CUDA is not available here; use 'cpu' or 'auto'.")
    if requested != "cpu" and not requested.startswith("cuda"):
        raise ValueError(f"Unknown device {requested!r}; valid: 'auto', 'cpu', 'cuda', 'cuda:N'.")
    return torch.device(requested)


def set_seed(seed: int, deterministic: bool = True) -> None:
    """Seed python, numpy and torch; on CPU a rerun with the same seed gives the same numbers."""
    random.seed(seed)
    np.random.seed(seed)
    os.environ["PYTHONHASHSEED"] = str(seed)
    try:
        import torch
    except ImportError:  # numpy-only chapters work without torch
        return
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)
    if deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
        if torch.backends.cudnn.is_available():
            torch.backends.cudnn.benchmark = False


_BLAS_LIMITER = None  # threadpoolctl's limiter, kept alive so the BLAS limit stays in force


def set_threads(n_threads: int | None) -> None:
    """Limit torch's intra-op threads and the BLAS/OpenMP pools of numpy/scipy to ``n_threads``.

    ``None`` or 0 leaves the defaults. torch's own pool is set with ``torch.set_num_threads``; the
    BLAS libraries numpy and scipy call into (OpenBLAS, MKL, BLIS) and OpenMP runtimes are limited
    through ``threadpoolctl``, so a "1 thread" benchmark really runs on one core.
    """
    global _BLAS_LIMITER
    if not n_threads:
        return
    # libraries loaded later (an OpenMP runtime pulled in by gensim or scikit-learn) read these at start-up;
    # threadpoolctl below reaches only the ones loaded already
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(int(n_threads))
    try:
        import torch

        torch.set_num_threads(int(n_threads))
    except ImportError:  # numpy-only chapters work without torch
        pass
    import scipy.linalg  # noqa: F401 - loads scipy's own BLAS so that the limit below reaches it too
    from threadpoolctl import threadpool_limits

    _BLAS_LIMITER = threadpool_limits(limits=int(n_threads))


def thread_info() -> dict[str, object]:
    """Threads in use now: torch's intra-op threads and each BLAS/OpenMP pool's (threadpoolctl).

    Returns ``{"torch": int | None, "blas": [{"user_api", "internal_api", "num_threads"}, ...]}``.
    """
    from threadpoolctl import threadpool_info

    try:
        import torch

        n_torch: int | None = torch.get_num_threads()
    except ImportError:
        n_torch = None
    pools = [{"user_api": p.get("user_api"), "internal_api": p.get("internal_api"), "num_threads": p.get("num_threads")}
             for p in threadpool_info()]
    return {"torch": n_torch, "blas": pools}
