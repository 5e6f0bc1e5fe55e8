"""Label digests: what a run's labels are, recorded cheaply and exactly.

The stage that reads (split) or writes (pseudo-label) the label files of a list
records each file's size and sha256 beside the list, as `<list stem>.manifest.json`:
  {"format": "dars-manifest/1", "list": "labeled.txt", "files": {"<label as listed>": {"size", "sha256"}}}
The trainer's resume fingerprint then digests the list and those records (`list_digest`)
instead of rereading gigabytes of labels. A file without a record, or whose size differs from
its record, is hashed on the spot: a list made by hand, without a manifest, digests the same as
the pipeline's. (A same-size edit after the stage ran is not seen here; under Snakemake the
labels are the split rule's inputs, so an edit reruns the stage, which records it.)"""
import hashlib
import json
from pathlib import Path

from ..io import DarsError, write_json
from .lists import read_list

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
