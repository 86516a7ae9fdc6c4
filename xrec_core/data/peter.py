"""PETER / NETE explanation datasets (Li, Zhang & Chen): ``reviews.pickle`` plus index splits.

``reviews.pickle`` is a list of dicts ``{"user", "item", "rating", "template": (feature, adjective,
sentence, sentiment), "predicted": ...}``; folders ``1`` .. ``5`` hold ``train.index``,
``validation.index`` and ``test.index`` (whitespace-separated row numbers). A downloaded pickle
must never be able to run code, so it is read with :class:`RestrictedUnpickler`, which only
rebuilds plain containers and scalars.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path

import pandas as pd

from .errors import CorruptDataError

#: the only globals a PETER pickle may reference: plain containers and scalars, from the
#: Python 3 ``builtins`` or (pickles written by Python 2) ``__builtin__`` module.
_ALLOWED_MODULES = ("builtins", "__builtin__")
_ALLOWED_NAMES = frozenset({"list", "dict", "tuple", "set", "frozenset", "str", "int", "float", "bool", "bytes"})


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that refuses every class or function except plain builtin containers."""

    def find_class(self, module: str, name: str):  # noqa: D102 - pickle API
        if module in _ALLOWED_MODULES and name in _ALLOWED_NAMES:
            return super().find_class("builtins", name)
        raise pickle.UnpicklingError(f"refusing to load global {module}.{name} from an untrusted pickle")


def restricted_load(path: str | Path) -> object:
    """Load a pickle with :class:`RestrictedUnpickler`; a forbidden global is a :class:`CorruptDataError`."""
    path = Path(path)
    data = path.read_bytes()
    try:
        return RestrictedUnpickler(io.BytesIO(data), encoding="latin-1").load()
    except pickle.UnpicklingError as exc:
        raise CorruptDataError(f"{path}: {exc}") from exc
    except (EOFError, ValueError, TypeError, AttributeError, IndexError) as exc:
        raise CorruptDataError(f"{path}: not a readable pickle ({type(exc).__name__}: {exc})") from exc


def parse_reviews_pickle(path: str | Path) -> pd.DataFrame:
    """``reviews.pickle`` -> ``user, item, rating, text, feature, adjective, sentiment`` (row = review)."""
    rows = restricted_load(path)
    if not isinstance(rows, list):
        raise CorruptDataError(f"{path}: expected a list of review dicts, got {type(rows).__name__}")
    out = []
    for i, r in enumerate(rows):
        try:
            feature, adjective, sentence, sentiment = r["template"]
            out.append((str(r["user"]), str(r["item"]), float(r["rating"]), sentence, feature, adjective, sentiment))
        except (KeyError, TypeError, ValueError) as exc:
            raise CorruptDataError(f"{path}: record {i} is not a PETER review ({exc})") from exc
    return pd.DataFrame(out, columns=["user", "item", "rating", "text", "feature", "adjective", "sentiment"])


def read_index(path: str | Path) -> list[int]:
    """Row numbers of a PETER ``{train,validation,test}.index`` file (one line, space-separated)."""
    try:
        with open(path) as handle:
            return [int(x) for x in handle.read().split()]
    except ValueError as exc:
        raise CorruptDataError(f"{path}: not a list of row numbers ({exc})") from exc
