"""CTR-MTL of "Ask the GRU" (Sec. 3.3 applied to CTR): the shared :class:`~xrec_core.models.ctr.CTR` fitted with tags."""

from __future__ import annotations

from typing import Any

import scipy.sparse as sp

from ...search_space import Float
from ..ctr import CTR
from ..registry import RANKING, entry, register


@register("CTR-MTL", role=RANKING, search_space={**entry("CTR").search_space, "tag_weight": Float(0.1, 0.9)},
          source="Bansal, Belanger & McCallum 2016, Sec. 3.3 (CTR of Wang & Blei 2011 with a tag loss)")
def ctr_mtl(*, tags: sp.spmatrix, **params: Any) -> CTR:
    """CTR whose item vectors also fit the item-tag matrix, weighted ``lambda C_R + (1 - lambda) C_T``."""
    return CTR(tags=tags, **params)
