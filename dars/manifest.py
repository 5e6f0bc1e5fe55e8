"""Directory outputs (pseudo-label, shard and export directories) against the manifest each holds,
checked when the plan is built (workflow/rules/common.smk).

Snakemake sees only a directory's own timestamp: a file deleted or edited inside it changes
nothing it looks at, so a run would go on from (or report on) files that no longer exist."""
import json
import os
from pathlib import Path

from .io import DarsError, rebuild_hint
from .paths import RESULTS

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


def stale_directories(results=RESULTS):
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


def check_directory_outputs(results=RESULTS, rebuilding=()):
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
