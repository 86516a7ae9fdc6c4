"""Provenance: unit fingerprints follow the code, dirty checkouts write no full record, the runner
learns its records from the run."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from xrec_core import cli
from xrec_core import records as rec_mod
from xrec_core import runner as runner_mod
from xrec_core.records import (ALLOW_DIRTY_ENV, RECORD_MANIFEST_ENV, DirtyCheckoutError, RunRecorder, UnitStore,
                               code_version, read_record_manifest)


@pytest.fixture
def tiny_package(tmp_path, monkeypatch) -> Path:
    """A two-file package that :func:`code_hash` hashes instead of ``xrec_core``."""
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("VERSION = 1\n")
    (pkg / "sub" / "model.py").write_text("def fit(x):\n    return x + 1\n")
    (pkg / "data.csv").write_text("a,b\n1,2\n")
    monkeypatch.setattr(rec_mod, "CODE_ROOT", pkg)
    rec_mod._source_sha256.cache_clear()
    yield pkg
    rec_mod._source_sha256.cache_clear()


def test_fingerprint_changes_when_code_changes(tmp_path, tiny_package):
    cfg = {"k": 1, "lr": 0.01}
    before = UnitStore(tmp_path / "units", cfg)
    (tiny_package / "data.csv").write_text("a,b\n3,4\n")  # not code: same fingerprint
    rec_mod._source_sha256.cache_clear()
    assert UnitStore(tmp_path / "units", cfg).fingerprint == before.fingerprint
    (tiny_package / "sub" / "model.py").write_text("def fit(x):\n    return x + 2\n")  # a bug fix
    rec_mod._source_sha256.cache_clear()
    after = UnitStore(tmp_path / "units", cfg)
    assert after.fingerprint != before.fingerprint
    assert after.code_sha256 != before.code_sha256

    calls = []
    before.run("fold0/MF", lambda: calls.append(1) or {"mse": 0.5})
    after.run("fold0/MF", lambda: calls.append(1) or {"mse": 0.4})
    assert len(calls) == 2  # the unit computed by the old code is not reused
    stored = json.loads(next(after.root.glob("*.json")).read_text())
    assert stored["code_sha256"] == after.code_sha256 == rec_mod.code_hash()


def test_code_hash_is_cached_per_process(tiny_package):
    first = rec_mod.code_hash()
    (tiny_package / "__init__.py").write_text("VERSION = 2\n")
    assert rec_mod.code_hash() == first  # the code a process imported is the code it runs


def test_runtime_fields_stay_out_of_the_fingerprint(tmp_path, monkeypatch):
    base = {"k": 1, "n_threads": 0, "progress": False, "device": "cpu", "data_dir": "/a", "results_dir": "/b"}
    fp = UnitStore(tmp_path, base).fingerprint
    assert UnitStore(tmp_path, base | {"n_threads": 8}).fingerprint == fp
    assert UnitStore(tmp_path, base | {"progress": True, "data_dir": "/c"}).fingerprint == fp
    assert UnitStore(tmp_path, base | {"device": ""}).fingerprint == fp
    assert UnitStore(tmp_path, base | {"k": 2}).fingerprint != fp
    # CUDA computes other numbers than the CPU: its units are kept apart; "auto" is where it runs
    assert UnitStore(tmp_path, base | {"device": "cuda:0"}).fingerprint != fp
    monkeypatch.setattr(rec_mod, "_device_kind", lambda device: "cpu" if device in ("", "cpu", "auto") else "cuda")
    assert UnitStore(tmp_path, base | {"device": "auto"}).fingerprint == fp


# --------------------------------------------------------------------------- dirty checkouts
def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=repo, check=True,
                   capture_output=True)


@pytest.fixture
def scratch_repo(tmp_path) -> Path:
    if shutil.which("git") is None:
        pytest.skip("git not installed")
    repo = tmp_path / "repo"
    for rel in ("xrec_core/a.py", "notebooks/n.ipynb", "docs/readme.md"):
        (repo / rel).parent.mkdir(parents=True, exist_ok=True)
        (repo / rel).write_text("x = 1\n")
    _git(repo, "init", "-q")
    _git(repo, "add", ".")
    _git(repo, "commit", "-q", "-m", "init")
    return repo


def _recorder(tmp_path, repo: Path, scale: str = "full") -> RunRecorder:
    rec = RunRecorder("toy", config={"k": 1}, scale=scale, dataset="toy", seed=0, results_dir=tmp_path / "res")
    rec.git_root = repo
    return rec


def test_clean_checkout_writes_a_full_record(tmp_path, scratch_repo, monkeypatch):
    monkeypatch.delenv(ALLOW_DIRTY_ENV, raising=False)
    (scratch_repo / "docs" / "readme.md").write_text("edited\n")  # outside xrec_core/ and notebooks/
    (scratch_repo / "xrec_core" / "__pycache__").mkdir()
    (scratch_repo / "xrec_core" / "__pycache__" / "a.pyc").write_text("ignored")
    (scratch_repo / ".gitignore").write_text("__pycache__/\n")
    _git(scratch_repo, "add", ".gitignore")
    _git(scratch_repo, "commit", "-q", "-m", "ignore caches")
    saved = json.loads(_recorder(tmp_path, scratch_repo).finish().read_text())
    cv = saved["code_version"]
    assert cv["git_dirty"] is False and cv["allow_dirty"] is False and len(cv["git_commit"]) == 40
    assert cv["source_sha256"] == rec_mod.code_hash()


def test_dirty_checkout_refuses_a_full_record_unless_allowed(tmp_path, scratch_repo, monkeypatch):
    monkeypatch.delenv(ALLOW_DIRTY_ENV, raising=False)
    (scratch_repo / "xrec_core" / "a.py").write_text("x = 2\n")
    rec = _recorder(tmp_path, scratch_repo)
    with pytest.raises(DirtyCheckoutError, match=r"^Uncommitted changes to xrec_core/a\.py: .*--allow-dirty") as err:
        rec.finish()
    assert "\n" not in str(err.value)
    assert not rec.path.exists()
    # tests and smoke runs always write
    assert _recorder(tmp_path, scratch_repo, scale="smoke").finish().exists()

    monkeypatch.setenv(ALLOW_DIRTY_ENV, "1")
    cv = json.loads(rec.finish().read_text())["code_version"]
    assert cv["git_dirty"] is True and cv["allow_dirty"] is True and cv["changed_files"] == ["xrec_core/a.py"]


def test_an_untracked_module_makes_the_checkout_dirty(tmp_path, scratch_repo, monkeypatch):
    monkeypatch.delenv(ALLOW_DIRTY_ENV, raising=False)
    (scratch_repo / "xrec_core" / "sub").mkdir()
    (scratch_repo / "xrec_core" / "sub" / "new.py").write_text("untracked = True\n")
    with pytest.raises(DirtyCheckoutError, match=r"^Uncommitted changes to xrec_core/sub/new\.py: "):
        _recorder(tmp_path, scratch_repo).finish()


def test_dirty_error_names_at_most_five_files(scratch_repo, monkeypatch):
    monkeypatch.delenv(ALLOW_DIRTY_ENV, raising=False)
    for i in range(7):
        (scratch_repo / "notebooks" / f"n{i}.ipynb").write_text("{}")
    _git(scratch_repo, "add", "notebooks")  # staged new files count as changes too
    with pytest.raises(DirtyCheckoutError, match=r"n4\.ipynb and 2 more: ") as err:
        rec_mod.check_clean_checkout(scratch_repo)
    assert "n5.ipynb" not in str(err.value)


def test_outside_a_git_checkout_the_record_says_so(tmp_path, monkeypatch):
    monkeypatch.delenv(ALLOW_DIRTY_ENV, raising=False)
    plain = tmp_path / "site-packages"
    plain.mkdir()
    rec_mod.check_clean_checkout(plain)
    cv = code_version(plain)
    assert cv["git_commit"] is None and cv["git_dirty"] is None


def test_runner_refuses_a_dirty_full_run_before_executing(tmp_path, monkeypatch):
    import papermill

    monkeypatch.delenv(ALLOW_DIRTY_ENV, raising=False)
    monkeypatch.setattr(runner_mod, "validate_parameters", lambda paper, scale, params, data_dir=None: params)
    monkeypatch.setattr(rec_mod, "changed_files", lambda root=None: ["xrec_core/x.py"])
    monkeypatch.setattr(papermill, "execute_notebook", lambda *a, **k: pytest.fail("executed a dirty run"))
    with pytest.raises(DirtyCheckoutError, match="xrec_core/x.py"):
        runner_mod.run_paper("mt", "full")

    seen = {}
    monkeypatch.setattr(papermill, "execute_notebook",
                        lambda src, dst, **_k: seen.update(allow=os.environ.get(ALLOW_DIRTY_ENV)) or Path(dst).write_text("{}"))
    assert cli.main(["run", "mt", "--scale", "full", "--allow-dirty", "--output-dir", str(tmp_path / "out")]) == 0
    assert seen == {"allow": "1"}  # the kernel inherits the permission; its recorder then records it
    assert ALLOW_DIRTY_ENV not in os.environ


# --------------------------------------------------------------------------- record manifest
def test_two_runs_in_one_results_folder_each_see_only_their_records(tmp_path, monkeypatch):
    results = tmp_path / "results"
    manifests = {run: tmp_path / f"{run}.txt" for run in ("a", "b")}
    written: dict[str, list[Path]] = {"a": [], "b": []}
    # interleaved like two runs at once: a, b, a (a rewrites its first record), b
    for run, seed in (("a", 0), ("b", 1), ("a", 2), ("a", 0), ("b", 3)):
        monkeypatch.setenv(RECORD_MANIFEST_ENV, str(manifests[run]))
        rec = RunRecorder("toy", config={}, scale="smoke", dataset="toy", seed=seed, results_dir=results)
        written[run].append(rec.finish().resolve())
    assert read_record_manifest(manifests["a"]) == list(dict.fromkeys(written["a"]))
    assert read_record_manifest(manifests["b"]) == written["b"]
    assert len(list((results / "toy").glob("*.json"))) == 4


def test_run_paper_returns_the_records_its_kernel_wrote(tmp_path, monkeypatch):
    import papermill

    other = tmp_path / "results" / "mt" / "mt__smoke__other__seed9.json"

    def fake_execute(src, dst, parameters, **_kwargs):
        # what a notebook does: its last cell finishes a recorder (the kernel inherits the environment)
        RunRecorder("mt", config={}, scale="smoke", dataset="d", seed=1, results_dir=parameters["results_dir"]).finish()
        other.parent.mkdir(parents=True, exist_ok=True)
        other.write_text("{}")  # another run's record, written meanwhile
        Path(dst).write_text("{}")

    monkeypatch.setattr(runner_mod, "validate_parameters", lambda paper, scale, params, data_dir=None: params)
    monkeypatch.setattr(papermill, "execute_notebook", fake_execute)
    result = runner_mod.run_paper("mt", "smoke", output_dir=tmp_path / "out", results_dir=tmp_path / "results")
    assert [p.name for p in result.records] == ["mt__smoke__d__seed1.json"]
    assert RECORD_MANIFEST_ENV not in os.environ


@pytest.fixture
def chapters_package(tmp_path, monkeypatch) -> Path:
    """A package with two chapters, a shared module, a model registered by a string import and a CLI."""
    pkg = tmp_path / "pkg"
    files = {
        "__init__.py": "",
        "shared.py": "SCALE = 1\n",
        "cli.py": "from .experiments import a, b\n",
        "models/__init__.py": "",
        "models/registry.py": "import importlib\nMODULES = ('pkg.models.mf',)\n"
                              "def load():\n    for m in MODULES:\n        importlib.import_module(m)\n",
        "models/mf.py": "def fit(x):\n    return x\n",
        "models/unused.py": "X = 1\n",
        "experiments/__init__.py": "",
        "experiments/a/__init__.py": "from .protocol import run\n",
        "experiments/a/protocol.py": "from ...shared import SCALE\n\ndef run():\n"
                                     "    from ...models import registry\n    return registry.load()\n",
        "experiments/b/__init__.py": "from pkg.shared import SCALE\n",
    }
    for rel, text in files.items():
        (pkg / rel).parent.mkdir(parents=True, exist_ok=True)
        (pkg / rel).write_text(text)
    monkeypatch.setattr(rec_mod, "CODE_ROOT", pkg)
    rec_mod.scoped_code_hash.cache_clear()
    yield pkg
    rec_mod.scoped_code_hash.cache_clear()


def test_module_closure_follows_relative_absolute_lazy_and_string_imports(chapters_package):
    closure = {p.relative_to(chapters_package).as_posix() for p in rec_mod.module_closure("experiments.a")}
    assert closure == {"__init__.py", "shared.py", "models/__init__.py", "models/registry.py", "models/mf.py",
                       "experiments/__init__.py", "experiments/a/__init__.py", "experiments/a/protocol.py"}
    closure_b = {p.relative_to(chapters_package).as_posix() for p in rec_mod.module_closure("experiments.b")}
    assert closure_b == {"__init__.py", "shared.py", "experiments/__init__.py", "experiments/b/__init__.py"}
    with pytest.raises(ValueError, match="No module 'experiments.c'"):
        rec_mod.module_closure("experiments.c")


def test_a_chapters_units_keep_their_fingerprint_when_other_code_changes(tmp_path, chapters_package):
    def fingerprint() -> str:
        rec_mod.scoped_code_hash.cache_clear()
        return UnitStore(tmp_path / "units", {"k": 1}, code_scope="experiments.a").fingerprint

    first = fingerprint()
    for rel in ("experiments/b/__init__.py", "cli.py", "models/unused.py"):  # outside chapter a's code
        (chapters_package / rel).write_text((chapters_package / rel).read_text() + "# edited\n")
        assert fingerprint() == first, rel
    seen = {first}
    for rel in ("shared.py", "models/mf.py", "experiments/a/protocol.py"):  # code chapter a runs
        (chapters_package / rel).write_text((chapters_package / rel).read_text() + "# edited\n")
        now = fingerprint()
        assert now not in seen, rel
        seen.add(now)


def test_every_chapter_scope_resolves_to_its_own_code():
    for chapter in ("gru", "mt", "mvae", "nar", "semax"):
        closure = {p.relative_to(rec_mod.CODE_ROOT).as_posix() for p in rec_mod.module_closure(f"experiments.{chapter}")}
        assert f"experiments/{chapter}/protocol.py" in closure and "training.py" in closure
        assert "models/registry.py" in closure and "models/mvae/model.py" in closure  # registry loads every model
        assert not any(p.startswith("experiments/") and p.split("/")[1] not in (chapter, "__init__.py", "common.py")
                       for p in closure), chapter
        assert "cli.py" not in closure and "book.py" not in closure
