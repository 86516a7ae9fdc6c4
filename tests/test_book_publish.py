"""Chapter notebooks are published without the paths of the machine that executed them."""

from __future__ import annotations

import json

import nbformat

from xrec_core.book import publishable_notebook
from xrec_core.paths import REPO_ROOT


def _executed(data_dir: str) -> str:
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell('dataset = "amazon2014-instruments"\nscale = "smoke"\n'
                                       f'results_dir = "{REPO_ROOT}/results"\ndata_dir = "{data_dir}"\nseed = 2024\n')
    params.metadata["tags"] = ["injected-parameters"]
    loaded = nbformat.v4.new_code_cell("load()")
    loaded.outputs = [nbformat.v4.new_output("stream", name="stderr",
                                             text=f"reading {data_dir}/amazon2014/x.json.gz into {REPO_ROOT}/results\n")]
    nb.cells = [nbformat.v4.new_code_cell('dataset = ""'), params, loaded]
    return nbformat.writes(nb)


def test_injected_paths_and_output_paths_are_removed(tmp_path):
    data_dir = str(tmp_path / "shared" / "data")
    published = publishable_notebook(_executed(data_dir), data_dir)
    assert str(REPO_ROOT) not in published and data_dir not in published
    nb = json.loads(published)
    injected = "".join(nb["cells"][1]["source"])
    assert injected == 'dataset = "amazon2014-instruments"\nscale = "smoke"\nseed = 2024\n'
    assert "".join(nb["cells"][2]["outputs"][0]["text"]) == "reading $XREC_DATA/amazon2014/x.json.gz into <repo>/results\n"
    nbformat.validate(nbformat.reads(published, as_version=4))
