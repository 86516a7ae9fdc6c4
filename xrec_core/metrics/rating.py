"""Rating-prediction errors."""

from __future__ import annotations

import numpy as np
from sklearn import metrics as _skm


def mse(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    return float(_skm.mean_squared_error(y_true, y_pred))


def rmse(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    return float(np.sqrt(mse(y_true, y_pred)))


def mae(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    return float(_skm.mean_absolute_error(y_true, y_pred))
