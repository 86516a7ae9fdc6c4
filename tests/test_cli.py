"""The command line: one-line errors for bad names, and the run/record plumbing."""

from __future__ import annotations

import subprocess
import sys

import pytest

from xrec_core.cli import main, parse_param


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "xrec_core", *args], capture_output=True, text=True, timeout=120)


def test_parse_param_types():
    assert parse_param("seed=3") == ("seed", 3)
    assert parse_param("lr=1e-3") == ("lr", 0.001)
    assert parse_param("dataset=amazon2014-instruments") == ("dataset", "amazon2014-instruments")


def test_unknown_paper_is_a_one_line_error():
    proc = _run("run", "nopaper", "--scale", "smoke")
    assert proc.returncode == 2
    err = proc.stderr.strip().splitlines()
    assert len(err) == 1 and "Unknown paper or notebook 'nopaper'" in err[0] and "mt, semax, gru, mvae, nar" in err[0]


def test_unknown_scale_dataset_and_parameter(capsys):
    assert main(["run", "mt", "--scale", "gigantic"]) == 2
    assert "Unknown scale 'gigantic'" in capsys.readouterr().err
    assert main(["run", "nar", "--scale", "smoke", "-p", "dataset=yelp-1999"]) == 2
    assert "Unknown dataset 'yelp-1999'" in capsys.readouterr().err
    assert main(["run", "gru", "--scale", "smoke", "-p", "learning_rat=3"]) == 2
    err = capsys.readouterr().err
    assert "Unknown parameter(s) learning_rat" in err and "seed" in err


def test_data_status_lists_every_dataset(data_dir):
    proc = _run("data", "status", "--data-dir", str(data_dir))
    assert proc.returncode == 0, proc.stderr
    for name in ("amazon2014-instruments", "citeulike-t", "mter-cellphones", "yelp2013", "peter-yelp"):
        assert name in proc.stdout


def test_missing_data_folder_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.delenv("XREC_DATA", raising=False)
    from xrec_core.paths import DataRootNotSet, data_root

    with pytest.raises(DataRootNotSet, match="XREC_DATA"):
        data_root()
    with pytest.raises(FileNotFoundError, match="does not exist"):
        data_root(tmp_path / "nowhere")


@pytest.mark.parametrize("flags, scale, streamed", [((), "smoke", False), ((), "full", True),
                                                    (("--no-log-output",), "full", False), (("--log-output",), "smoke", True)])
def test_long_runs_stream_their_progress(tmp_path, monkeypatch, flags, scale, streamed):
    import papermill

    seen = {}

    def fake_execute(source, target, **kwargs):
        import os

        seen.update(kwargs, progress_env=os.environ.get("XREC_PROGRESS"))
        open(target, "w").write("{}")

    monkeypatch.setattr(papermill, "execute_notebook", fake_execute)
    monkeypatch.setenv("XREC_ALLOW_DIRTY", "1")  # a full run from a work tree being edited
    argv = ["run", "nar", "--scale", scale, *flags, "--output-dir", str(tmp_path / "out"), "--results-dir", str(tmp_path / "res")]
    assert main(argv) == 0
    assert seen["log_output"] is streamed
    assert seen["progress_env"] == ("text" if streamed else None)  # the kernel draws text bars for the log
    assert seen["parameters"]["scale"] == scale
