"""What a run's result depends on, recorded cheaply and exactly.

Label manifests: the stage that reads (split) or writes (pseudo-label) the label files of a list
records each file's size and sha256 beside the list, as `<list stem>.manifest.json`:
  {"format": "dars-manifest/1", "list": "labeled.txt", "files": {"<label as listed>": {"size", "sha256"}}}
The trainer's resume fingerprint then digests the list and those records (`list_digest`)
instead of rereading gigabytes of labels. A file without a record, or whose size differs from
its record, is hashed on the spot: a list made by hand, without a manifest, digests the same as
the pipeline's. (A same-size edit after the stage ran is not seen here; under Snakemake the
labels are the split rule's inputs, so an edit reruns the stage, which records it.)

Dataset listings: the image and label files of a real dataset's split, as Snakemake inputs
(workflow/rules/common.smk), so an edited label reruns what read it. Cached per (layout, root,
split): a DAG asks once per job, the tree is listed once."""
import functools
import hashlib
import json
import os
from pathlib import Path

from .data.lists import read_list
from .io import DarsError, rebuild_hint, write_json

FORMAT = "dars-manifest/1"


def bytes_record(data: bytes) -> dict:
    return {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def file_record(path) -> dict:
    """{"size", "sha256"} of a file (read in one go: labels are small)."""
    try:
        return bytes_record(Path(path).read_bytes())
    except FileNotFoundError:
        raise DarsError(f"{path}: file not found") from None


def file_sha256(path, chunk=1 << 22) -> str:
    """sha256 of a file of any size (a checkpoint), read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def manifest_path(list_file) -> Path:
    """labeled.txt -> labeled.manifest.json, beside it."""
    list_file = Path(list_file)
    return list_file.with_name(f"{list_file.stem}.manifest.json")


def write_manifest(list_file, records: dict):
    """Records of the labels `list_file` names, keyed as the list names them. Written before the
    list itself: a list on disk never has an older manifest than its own."""
    write_json(manifest_path(list_file), {"format": FORMAT, "list": Path(list_file).name, "files": records})


def read_records(list_file) -> dict:
    """The manifest's records, {} where there is none (a list made by hand) or it is unreadable:
    the caller then hashes the files, which is slower but as exact."""
    path = manifest_path(list_file)
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        return {}
    return manifest.get("files") or {}


def list_digest(list_file, label_root=None) -> str:
    """sha256 over a list's bytes and, with `label_root` (what its labels are relative to), the
    size and sha256 of every label it names, in list order. Records come from the list's
    manifest where the file's size still matches, else from hashing the file now."""
    list_file = Path(list_file)
    if not list_file.is_file():
        raise DarsError(f"{list_file}: list file not found")
    h = hashlib.sha256(list_file.read_bytes())
    if label_root is None:
        return h.hexdigest()
    records = read_records(list_file)
    for _, label in read_list(list_file):
        path = Path(label_root) / label
        rec = records.get(label)
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            raise DarsError(f"{path}: label listed in {list_file} not found") from None
        if not rec or rec.get("size") != size:
            rec = file_record(path)
        h.update(f"\n{label} {rec['size']} {rec['sha256']}".encode())
    return h.hexdigest()


@functools.lru_cache(maxsize=None)
def dataset_files(layout, root, split, allow_unpaired=False):
    """Every image and label file of a real dataset's split, as paths under `root` (Snakemake
    inputs); () for a split the layout does not have (e.g. GTA5 without val). Images without
    labels or labels without images fail the plan (dars.data.pairing), unless allowed."""
    from .data.layouts import find_pairs
    from .data.pairing import Unpaired
    try:
        pairs = find_pairs(layout, root, split)
    except Unpaired as e:
        if not allow_unpaired:
            raise  # an incomplete val set would be scored on fewer images: stop before any training
        pairs = e.pairs
    except DarsError:
        if split == "train":
            raise  # the train split must be there; its error names the fix (e.g. prepare)
        return ()
    return tuple(str(Path(root) / p) for pair in pairs for p in pair)


def input_files(config, name, split="train"):
    """Snakemake inputs of a configured dataset: the files of its `split` and, for train, those
    of its UDA source too; nothing for a generated tree (the rule making it is the input)."""
    from . import config as cfg
    names = [name, cfg.labeled_dataset(config, name)] if split == "train" else [name]
    files = []
    for n in dict.fromkeys(names):
        root = cfg.dataset_root(config, n)
        if root not in cfg.generated_files(config, n):
            ds = cfg.dataset(config, n)
            files += dataset_files(cfg.layout_of(ds), root, split, bool(ds.get("allow_unpaired")))
    return files


# Directory outputs (pseudo-label, shard and export directories) against the manifest each holds.
# Snakemake sees only a directory's own timestamp: a file deleted or edited inside it changes
# nothing it looks at, so a run would go on from (or report on) files that no longer exist.

DIRECTORY_MANIFESTS = {  # manifest file -> (the rule that writes the directory, its files)
    "stats.json": ("pseudo_label", lambda d, m: {f"{im['id']}.png": im.get("size") for im in m.get("images", [])}),
    "index.json": ("infer", lambda d, m: _shard_files(m)),
    "export.json": ("export", lambda d, m: {pred: None for _, pred in m.get("predictions", [])}),
}
DIRECTORY_PARENTS = {"stats.json": "pseudo", "index.json": "shards", "export.json": "export"}


def _shard_files(index):
    pixels = sum(im["height"] * im["width"] for im in index.get("images", []))
    samples = sum(im.get("samples", 0) for im in index.get("images", []))
    return {"pred.u8": pixels, "conf.f16": 2 * pixels, "probs.f16": 2 * samples * index.get("num_classes", 0)}


def directory_problem(directory, manifest_name=None):
    """Why a directory output no longer matches its manifest (a file missing, of another size, or
    written after the manifest), or None. Cheap: sizes and timestamps only, no file is read."""
    directory = Path(directory)
    names = [manifest_name] if manifest_name else [n for n in DIRECTORY_MANIFESTS if (directory / n).is_file()]
    for name in names:
        manifest_file = directory / name
        try:
            manifest, written = json.loads(manifest_file.read_text()), manifest_file.stat().st_mtime
        except (OSError, ValueError) as e:
            return f"its manifest {name} is unreadable ({e})"
        for rel, size in DIRECTORY_MANIFESTS[name][1](directory, manifest).items():
            try:
                st = (directory / rel).stat()
            except FileNotFoundError:
                return f"{rel}, listed in its {name}, is missing"
            if size is not None and st.st_size != size:
                return f"{rel} is {st.st_size} bytes, its {name} says {size}"
            if st.st_mtime > written + 1e-3:
                return f"{rel} was modified after its {name} was written"
    return None


def stale_directories(results="results"):
    """[(directory, what is wrong)] of every pseudo-label, shard and export directory under
    `results` that no longer matches its manifest."""
    stale = []
    for dirpath, dirnames, filenames in os.walk(results):
        for name, parent in DIRECTORY_PARENTS.items():
            if name in filenames and Path(dirpath).parent.name == parent:
                problem = directory_problem(dirpath, name)
                if problem:
                    stale.append((dirpath, problem))
                dirnames[:] = []  # nothing of ours lies inside these
    return sorted(stale)


def forcerun_targets(argv):
    """The files and rules a Snakemake command line names after --forcerun / -R (its DAG settings
    are not set yet while the Snakefile is read)."""
    out, taking = [], False
    for arg in argv:
        if arg.startswith("--forcerun="):
            out.append(arg.split("=", 1)[1])
        elif arg in ("-R", "--forcerun"):
            taking = True
        elif arg.startswith("-"):
            taking = False
        elif taking:
            out.append(arg)
    return out


def check_directory_outputs(results="results", rebuilding=()):
    """At plan time: an error naming each stale directory output and the command that rebuilds it
    (never a plan that says nothing is to be done while an output describes a missing file).
    `rebuilding`: what this invocation forces to rerun (--forcerun), which may be stale."""
    forced = {os.path.normpath(p) for p in rebuilding}
    stale = [(d, why) for d, why in stale_directories(results) if os.path.normpath(d) not in forced]
    if stale:
        shown = "\n  ".join(f"{d}: {why}" for d, why in stale[:10])
        more = f"\n  ... and {len(stale) - 10} more" if len(stale) > 10 else ""
        first = stale[0][0]
        raise DarsError(f"{len(stale)} directory outputs no longer match their manifests:\n  {shown}{more}\n"
                        f"Each must be rebuilt with what depends on it; for the first, {rebuild_hint(first)}")
