"""The registry of every dataset the five papers use, and of the Amazon files a user adds.

Each :class:`DatasetSpec` names the files a run reads (relative to the data root, the
``XREC_DATA`` folder), their SHA-256 checksums where known, the canonical download location and
how to get it. :func:`require` resolves and verifies the files; a missing or corrupt file raises
an error naming the file, its expected checksum and where to get it.

Any other Amazon category file placed in the documented layout (``amazon2014/reviews_<Category>_5.json.gz``,
``amazon2018/<Category>_5.json.gz``, gzipped or not) is found by :func:`discover_amazon` and usable
under a derived name (``amazon2018/Magazine_Subscriptions_5.json.gz`` -> ``amazon2018-magazine-subscriptions``);
having no registry checksum, it is "not verified".
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ..paths import DATA_ENV, DataRootNotSet, data_root
from ..records import sha256_file
from .errors import CorruptDataError, MissingDataError

SNAP_2014 = "http://snap.stanford.edu/data/amazon/productGraph/categoryFiles/reviews_{cat}_5.json.gz"
UCSD_2018 = "https://jmcauley.ucsd.edu/data/amazon_v2/categoryFilesSmall/{cat}_5.json.gz"
TANG_YELP = "http://ir.hit.edu.cn/~dytang/paper/acl2015/dataset.7z (Tang, Qin & Liu 2015 release, linked from https://github.com/thunlp/NSC)"
PETER_DATA = "https://drive.google.com/drive/folders/1yB-EFuApAOJ0RzTI0VfZ0pignytguU0_ (linked from https://github.com/lileipisces/PETER)"

#: what each kind of dataset holds: ``rating`` (star ratings), ``text`` (review text), ``time`` (review
#: times), ``tags`` (item tags), ``item_text`` (a text per item) and ``tuples`` (feature-opinion tuples)
KIND_FIELDS: dict[str, tuple[str, ...]] = {
    "amazon": ("rating", "text", "time"),
    "yelp-open": ("rating", "text", "time"),
    "yelp-ss": ("rating", "text"),  # no timestamps: time is file order
    "citeulike": ("tags", "item_text"),
    "mter": ("rating", "tuples", "tags", "item_text"),
    "peter": ("rating", "text", "tuples"),
}
#: kinds :func:`xrec_core.data.load_reviews` reads (the others have their own loaders)
REVIEW_KINDS = ("amazon", "yelp-open", "yelp-ss", "peter")
#: an Amazon category file in the layout: ``amazon2014/reviews_<Cat>_5.json[.gz]`` or ``amazon2018/<Cat>_5.json[.gz]``
AMAZON_LAYOUT = re.compile(r"^(?P<year>amazon2014)/reviews_(?P<cat>[^/]+)_5\.json(\.gz)?$|"
                           r"^(?P<year2>amazon2018)/(?P<cat2>[^/]+)_5\.json(\.gz)?$")


@dataclass(frozen=True)
class DatasetSpec:
    """One dataset: its files under the data root, checksums, source and parser kind."""

    name: str
    kind: str  # reviews | amazon | yelp-ss | yelp-open | citeulike | mter | peter
    papers: tuple[str, ...]
    description: str
    files: tuple[str, ...]
    url: str
    how_to_get: str
    sha256: dict[str, str] = field(default_factory=dict)
    optional_files: tuple[str, ...] = ()

    def path(self, rel: str, data_dir: str | os.PathLike | None = None) -> Path:
        return data_root(data_dir) / rel

    def available(self, data_dir: str | os.PathLike | None = None) -> bool:
        """Whether every required file is under the data folder (computed, never stored)."""
        try:
            root = data_root(data_dir)
        except (DataRootNotSet, FileNotFoundError):
            return False
        return all((root / rel).is_file() for rel in self.files)

    @property
    def available_here(self) -> bool:
        """:meth:`available` for the configured data folder (``$XREC_DATA``)."""
        return self.available()


def _amazon2014(key: str, cat: str, papers: tuple[str, ...], sha: str | None = None, note: str = "") -> DatasetSpec:
    rel = f"amazon2014/reviews_{cat}_5.json.gz"
    return DatasetSpec(
        name=f"amazon2014-{key}", kind="amazon", papers=papers,
        description=f"Amazon 2014 5-core {cat.replace('_', ' ')} reviews (McAuley et al. 2015){note}",
        files=(rel,), url=SNAP_2014.format(cat=cat),
        how_to_get=f"download {SNAP_2014.format(cat=cat)} into $XREC_DATA/amazon2014/",
        sha256={rel: sha} if sha else {},
    )


def _amazon2018(key: str, cat: str, papers: tuple[str, ...], sha: str) -> DatasetSpec:
    rel = f"amazon2018/{cat}_5.json.gz"
    return DatasetSpec(
        name=f"amazon2018-{key}", kind="amazon", papers=papers,
        description=f"Amazon 2018 5-core {cat.replace('_', ' ')} reviews (Ni, Li & McAuley 2019)",
        files=(rel,), url=UCSD_2018.format(cat=cat),
        how_to_get=f"download {UCSD_2018.format(cat=cat)} into $XREC_DATA/amazon2018/", sha256={rel: sha},
    )


def _tang(year: int) -> DatasetSpec:
    files = tuple(f"yelp{year}/yelp-{year}-seg-20-20.{part}.ss" for part in ("train", "dev", "test"))
    return DatasetSpec(
        name=f"yelp{year}", kind="yelp-ss", papers=("mt", "semax"),
        description=f"Yelp {year} (Tang, Qin & Liu 2015), user/item/rating/review `.ss` files",
        files=files, url=TANG_YELP, how_to_get=f"download {TANG_YELP}, unpack it and put yelp-{year}-seg-20-20.{{train,dev,test}}.ss into $XREC_DATA/yelp{year}/",
    )


def _peter(key: str, folder: str) -> DatasetSpec:
    files = (f"peter/{folder}/reviews.pickle",) + tuple(
        f"peter/{folder}/{k}/{part}.index" for k in range(1, 6) for part in ("train", "validation", "test"))
    return DatasetSpec(
        name=f"peter-{key}", kind="peter", papers=("mvae",),
        description=f"PETER/NETE explanation dataset {folder} (Li, Zhang & Chen 2020/2021): reviews.pickle + 5 index splits",
        files=files, url=PETER_DATA, how_to_get=f"download {folder} from {PETER_DATA} and unpack into $XREC_DATA/peter/{folder}/",
    )


_CITEULIKE_T_SHA = {
    "citeulike-t/users.dat": "02d5d429b2c0362e0ed79f6ef204666b4092563d21493abf4dfb521e8a7078bf",
    "citeulike-t/tag-item.dat": "e2b80fc0e023780b63c00a397a2d0934eff6dbaf8a1b918778698361dae7ce6b",
    "citeulike-t/tags.dat": "2f1e6dd94fe216a4453caf67e337c45f73938373b21d2aa3b6d2696387449e76",
    "citeulike-t/citations.dat": "fd932be626da8303c2773eb1a07c8aa6c2a6de2d0ac10941f325d63dc86c0080",
    "citeulike-t/mult.dat": "5ed81e6fdbf8d475122d4a18d622202571ac80f27be017e194a1957da585283d",
    "citeulike-t/vocabulary.dat": "d58f0e6ce40da9e57c7ad6bbb2d0f1351730e3ecfcbbdf14eec07d493ce539e1",
}
_CITEULIKE_A_SHA = {
    "citeulike-a/users.dat": "53211d82c14ff261e595634d285ed9fbf8049cf81dcb751d924d695b9612a02c",
    "citeulike-a/item-tag.dat": "0f7b432796a5038ed2631c02b99d70e636123673afc11bf9e051de5b49467890",
    "citeulike-a/tags.dat": "c02b3e5ee1a57f88f3a598b2040018bb198f54cd0c11116fa7a0db905b6f60e3",
    "citeulike-a/citations.dat": "78458ba6b6f013552c43f47dbec1c2d19073820155c40567744cd8a038044364",
    "citeulike-a/vocabulary.dat": "f3ffa75f7524a9ff2ecc2a0cb1a0f29f4d46e32f17bc8e2f8472a1c7c814f319",
}
_MTER_PREFIX = "mter-cellphones/amazon_cellphones_recursive_sigir"
_MTER_SHA = {
    f"{_MTER_PREFIX}.entry": "eec34e6636c76b24ec9187be493a2a95ba7454015723b58136441154da4b8d16",
    f"{_MTER_PREFIX}.featuremap": "eae44ea7de4a2c936b081595930ddafdb047ec77bbd2baff83bed95a8c4f086d",
    f"{_MTER_PREFIX}.wordmap": "7bb5323278d918226f380144f5d7f71776ecab77f69c9ed0701680b6eb415196",
    f"{_MTER_PREFIX}.usermap": "365a37aecbdc97d8c024cc7661a5f81b73dfd85fade944181925d1c58c2edd84",
    f"{_MTER_PREFIX}.itemmap": "ff8334be151e34c902ba61418faee54b654bbac40d5ddde219a0237dcc883964",
}

DATASETS: dict[str, DatasetSpec] = {
    s.name: s
    for s in [
        _amazon2014("instruments", "Musical_Instruments", ("nar", "mt", "semax", "mvae"),
                    "03f9cc27ae13a454cb4ea6cb620fb10546cc1194ef921441d1c5f34addff2748",
                    " — md5 8035b6e3f9194844785b3f4cee296577; NAR/CAR/CNR's 'Instrument'"),
        _amazon2014("electronics", "Electronics", ("mt",)),
        _amazon2014("videogames", "Video_Games", ("mt",)),
        _amazon2014("grocery", "Grocery_and_Gourmet_Food", ("mt",)),
        _amazon2014("instantvideo", "Amazon_Instant_Video", ("nar",)),
        _amazon2014("digitalmusic", "Digital_Music", ("nar",)),
        _amazon2014("beauty", "Beauty", ("nar",)),
        _amazon2014("clothing", "Clothing_Shoes_and_Jewelry", ("nar",)),
        _amazon2018("allbeauty", "All_Beauty", ("mt", "semax", "mvae", "nar"),
                    "4a6b1eb40c4f58328f3f34181a6ef00f8e3423d801128617cc408a83c9bd0027"),
        _amazon2018("giftcards", "Gift_Cards", ("mt", "semax", "mvae", "nar"),
                    "41e1f0e50d3c1c9d7d949fb6315944c8bde51ea6b7429a29fdd0d02cbc07ef25"),
        _tang(2013),
        _tang(2014),
        DatasetSpec(
            name="yelp-open", kind="yelp-open", papers=("semax",),
            description="Yelp Open Dataset reviews (JSON lines: user_id, business_id, stars, text, date)",
            files=("yelp-open/yelp_academic_dataset_review.json",), url="https://www.yelp.com/dataset",
            how_to_get="accept the licence at https://www.yelp.com/dataset, download and put yelp_academic_dataset_review.json into $XREC_DATA/yelp-open/",
        ),
        DatasetSpec(
            name="citeulike-a", kind="citeulike", papers=("gru",),
            description="CiteULike-a (Wang & Blei 2011): 5,551 users, 16,980 papers, likes, tags; text in raw-data.csv",
            files=tuple(_CITEULIKE_A_SHA), optional_files=("citeulike-a/raw-data.csv", "citeulike-a/mult.dat"),
            url="https://github.com/js05212/citeulike-a",
            how_to_get="clone https://github.com/js05212/citeulike-a into $XREC_DATA/citeulike-a/ (raw-data.csv holds the ordered title+abstract text)",
            sha256=_CITEULIKE_A_SHA,
        ),
        DatasetSpec(
            name="citeulike-t", kind="citeulike", papers=("gru",),
            description="CiteULike-t (Wang, Chen & Li 2013): 7,947 users, 25,975 papers, likes, tags, bag of words; text in rawtext.dat",
            files=tuple(_CITEULIKE_T_SHA), optional_files=("citeulike-t/rawtext.dat",),
            url="https://github.com/js05212/citeulike-t",
            how_to_get="clone https://github.com/js05212/citeulike-t into $XREC_DATA/citeulike-t/ (rawtext.dat holds the ordered text)",
            sha256=_CITEULIKE_T_SHA,
        ),
        DatasetSpec(
            name="mter-cellphones", kind="mter", papers=("nar", "gru"),
            description="Amazon Cell Phones as MTER phrase-level (feature, sentiment) tuples (Wang et al. SIGIR 2018)",
            files=tuple(_MTER_SHA), url="https://github.com/MyTHWN/MTER",
            how_to_get="copy folder amazon_cellphones_recursive_entry_sigir of https://github.com/MyTHWN/MTER to $XREC_DATA/mter-cellphones/",
            sha256=_MTER_SHA,
        ),
        _peter("yelp", "Yelp"),
        _peter("amazon-movies", "Amazon/MoviesAndTV"),
        _peter("tripadvisor", "TripAdvisor"),
    ]
}


def amazon_layout_name(rel: str) -> str | None:
    """The dataset name of an Amazon category file at ``rel`` (relative to the data root), or None.

    The registry's own name when the registry lists the file, else ``<folder>-<category>`` in lower
    case with ``-`` for ``_`` (``amazon2018/Magazine_Subscriptions_5.json.gz`` -> ``amazon2018-magazine-subscriptions``).
    """
    match = AMAZON_LAYOUT.match(rel)
    if not match:
        return None
    for spec in DATASETS.values():
        if rel in spec.files:
            return spec.name
    year, cat = match.group("year") or match.group("year2"), match.group("cat") or match.group("cat2")
    return f"{year}-{re.sub(r'[^a-z0-9]+', '-', cat.lower()).strip('-')}"


def _amazon_user_spec(name: str, rel: str) -> DatasetSpec:
    year = rel.split("/")[0]
    cat = Path(rel).name.split(".json")[0].removeprefix("reviews_").removesuffix("_5")
    url = (SNAP_2014 if year == "amazon2014" else UCSD_2018).format(cat=cat)
    return DatasetSpec(
        name=name, kind="amazon", papers=(),
        description=f"{'Amazon 2014' if year == 'amazon2014' else 'Amazon 2018'} 5-core {cat.replace('_', ' ')} reviews "
                    "(a file you added; not in the registry)",
        files=(rel,), url=url, how_to_get=f"download {url} into $XREC_DATA/{year}/",
    )


def discover_amazon(data_dir: str | os.PathLike | None = None) -> dict[str, DatasetSpec]:
    """Amazon category files in the layout that the registry does not list, by derived name (empty without a data folder)."""
    try:
        root = data_root(data_dir)
    except (DataRootNotSet, FileNotFoundError):
        return {}
    found: dict[str, DatasetSpec] = {}
    for folder in ("amazon2014", "amazon2018"):
        for path in sorted((root / folder).glob("*.json*")):
            rel = f"{folder}/{path.name}"
            name = amazon_layout_name(rel)
            if name and name not in DATASETS and name not in found and path.is_file():
                found[name] = _amazon_user_spec(name, rel)
    return found


def is_registry_dataset(name: str) -> bool:
    """Whether ``name`` is one of the registry's (the papers') datasets, as opposed to a user's data."""
    return name in DATASETS


def get_spec(name: str, data_dir: str | os.PathLike | None = None) -> DatasetSpec:
    """The registry entry of ``name``, or of an Amazon file in the layout found under the data folder."""
    if name in DATASETS:
        return DATASETS[name]
    found = discover_amazon(data_dir)
    if name not in found:
        raise KeyError(f"Unknown dataset {name!r}; valid: {', '.join([*DATASETS, *found])}")
    return found[name]


_HASH_CACHE: dict[tuple[str, int, float], str] = {}


def _hash(path: Path) -> str:
    st = path.stat()
    key = (str(path), st.st_size, st.st_mtime)
    if key not in _HASH_CACHE:
        _HASH_CACHE[key] = sha256_file(path)
    return _HASH_CACHE[key]


def require(name: str, data_dir: str | os.PathLike | None = None, *, verify: bool = True,
            optional: bool = False) -> dict[str, Path]:
    """Resolve a dataset's files (and present optional ones), verifying known checksums.

    Raises
    ------
    MissingDataError
        naming the first missing file, its expected SHA-256 and where to download it.
    CorruptDataError
        when a file's SHA-256 differs from the registry's.
    """
    spec = get_spec(name, data_dir)
    root = data_root(data_dir)
    out: dict[str, Path] = {}
    for rel in spec.files:
        path = root / rel
        if not path.is_file():
            sha = spec.sha256.get(rel, "not recorded")
            raise MissingDataError(
                f"{name}: missing file {path} (expected sha256 {sha}). Get it: {spec.how_to_get}. "
                f"If the data is elsewhere, set {DATA_ENV}=/path/to/data or pass data_dir=."
            )
        if verify and rel in spec.sha256:
            actual = _hash(path)
            if actual != spec.sha256[rel]:
                raise CorruptDataError(
                    f"{name}: {path} has sha256 {actual}, expected {spec.sha256[rel]}; the file is corrupt or a "
                    f"different version. Re-download it: {spec.how_to_get}."
                )
        out[rel] = path
    if optional:
        for rel in spec.optional_files:
            if (root / rel).is_file():
                out[rel] = root / rel
    return out


def check_dataset(name: str, verify: bool = True, data_dir: str | os.PathLike | None = None) -> list[Path]:
    """Check that ``name``'s files are present and (``verify=True``) match their SHA-256.

    Hashes are streamed and cached in-process by (path, size, mtime). Returns the required files.

    Raises
    ------
    MissingDataError, CorruptDataError
        as :func:`require`.
    """
    return list(require(name, data_dir, verify=verify).values())


def dataset_files(name: str, data_dir: str | os.PathLike | None = None) -> list[Path]:
    """The files of ``name`` that a run reads (required + present optional), for run records."""
    return list(require(name, data_dir, verify=False, optional=True).values())


def status(data_dir: str | os.PathLike | None = None, verify: bool = False) -> pd.DataFrame:
    """One row per dataset: papers, present?, missing files, checksum check, where to get it.

    Amazon files a user added to the layout follow the registry's datasets, with papers ``(your data)``
    and checksums ``not verified`` (with their SHA-256 when ``verify``).
    """
    root = data_root(data_dir)
    rows = []
    for spec in [*DATASETS.values(), *discover_amazon(root).values()]:
        missing = [rel for rel in spec.files if not (root / rel).is_file()]
        check = ""
        if not missing and not spec.sha256:
            shown = verify and len(spec.files) == 1
            check = "not verified" + (f" (sha256 {_hash(root / spec.files[0])})" if shown else "")
        elif not missing and verify:
            bad = [rel for rel in spec.files if rel in spec.sha256 and _hash(root / rel) != spec.sha256[rel]]
            check = "ok" if not bad else "MISMATCH: " + ", ".join(bad)
        elif not missing:
            check = "not checked (--verify)"
        optional_missing = [rel for rel in spec.optional_files if not (root / rel).is_file()]
        rows.append({
            "dataset": spec.name, "papers": ", ".join(spec.papers) or "(your data)", "present": not missing,
            "missing": ", ".join(Path(m).name for m in missing[:3]) + (" ..." if len(missing) > 3 else ""),
            "optional missing": ", ".join(Path(m).name for m in optional_missing),
            "checksums": check, "how to get": spec.how_to_get,
        })
    return pd.DataFrame(rows)
