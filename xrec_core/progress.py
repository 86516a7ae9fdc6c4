"""Progress bars: widgets in JupyterLab, plain text in batch runs.

``xrec run`` executes notebooks with papermill and streams their output to its log; a widget
progress bar would reach that log as nothing but its first frame, so the runner sets
``XREC_PROGRESS=text`` for the kernel and every bar of the package is drawn as text there.
"""

from __future__ import annotations

import os

#: Environment variable: ``text`` forces text progress bars (set by the runner for batch runs).
PROGRESS_ENV = "XREC_PROGRESS"

if os.environ.get(PROGRESS_ENV) == "text":
    from tqdm.std import tqdm
else:
    from tqdm.auto import tqdm

__all__ = ["PROGRESS_ENV", "tqdm"]
