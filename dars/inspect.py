"""Human-readable summaries of any stage output (`python -m dars inspect PATH`), and overlays.

The kind of a path is recognised from its name and, for JSON, from its keys, so renamed or
copied files still work. Classes are named (and label ids checked) by the class set of the
dataset a path belongs to: the layout a JSON record names, else the dataset found around the
path (dars.overlay.find_dataset), else the default layout's.

Large outputs (shards, directories of PNGs) are streamed one image at a time, so inspecting a
full Cityscapes shard needs the memory of a single image.
"""
from collections import Counter
from pathlib import Path

import numpy as np
import torch

from . import render
from .classes import IGNORE
from .data import layouts
from .data.layouts import image_id
from .io import DarsError, read_json, read_label
from .overlay import find_dataset
from .overlay import overlay as _overlay
from .records import is_aggregate
from .shards import FORMAT as SHARD_FORMAT
from .shards import Shard

SUPPORTED = ("image lists (labeled.txt, unlabeled.txt, pseudo_labels.txt)", "split.json", "prior.json",
             "a shard directory (index.json) or a directory of shards", "hist/{k}.npy",
             "thresholds.json", "pseudo_stats.json", "a pseudo-label PNG or a directory of them",
             "a checkpoint model.pt", "miou.json (per run or aggregate)", "stats.json of a synthetic dataset")
BUFFERS = ("running_mean", "running_var", "num_batches_tracked")  # state_dict entries that are not parameters


def _unsupported(path, why="unknown kind"):
    return DarsError(f"{path}: cannot inspect ({why}); supported: " + "; ".join(SUPPORTED))


def _fmt(x):
    if x is None or (isinstance(x, float) and np.isnan(x)):
        return "-"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, (int, np.integer)):
        return f"{int(x):,}"
    if isinstance(x, (float, np.floating)):
        return f"{float(x):.6g}"
    return str(x)


def _pct(x):
    return "-" if x is None or (isinstance(x, float) and np.isnan(x)) else f"{100 * float(x):.2f}"


def _table(headers, rows):
    """Plain-text table (dars.render.text): first column left-aligned, the others right-aligned."""
    return render.text(render.Table("", headers[0], list(headers[1:]), [(r[0], list(r[1:])) for r in rows], []))


def _class_set(path, root=None, obj=None):
    """The class set (dars.classes.ClassSet) that names the classes of `path`: that of the layout
    the JSON record `obj` names, else of the dataset found around the path, else the default
    layout's."""
    name = (obj or {}).get("layout")
    if name not in layouts.LAYOUTS:
        found = find_dataset(path, root)
        name = found[1] if found else None
    return layouts.class_set(name if name in layouts.LAYOUTS else layouts.DEFAULT_LAYOUT)


def _names(n, classes, obj=None):
    """Names of `n` classes: the record's own, else those of `classes` if it has n, else numbers."""
    names = (obj or {}).get("class_names")
    if names and len(names) == n:
        return list(names)
    return list(classes.names) if n == classes.num_classes else [f"class {i}" for i in range(n)]


def inspect(path, overlay=None, root=None) -> str:
    """Summary of any stage output; with `overlay`, also write image | ground truth | labels.
    `root`: the dataset root (of the overlay's images, and whose class set names the classes)."""
    path = Path(path)
    if overlay is not None:
        summary = _overlay(path, Path(overlay), root)
        if path.suffix.lower() != ".png":
            return summary
        return _label_pngs([path], path, _class_set(path, root)) + "\n" + summary
    if path.is_dir():
        shards = [path] if (path / "index.json").is_file() else sorted(p.parent for p in path.glob("*/index.json"))
        if shards:
            return _shards(shards, _class_set(path, root))
        pngs = sorted(path.rglob("*.png"))
        if pngs:
            return _label_pngs(pngs, path, _class_set(path, root))
        raise _unsupported(path, "a directory with no shards and no PNGs")
    if not path.is_file():
        raise DarsError(f"{path}: no such file or directory")
    suffix = path.suffix.lower()
    if suffix == ".txt":
        return _image_list(path)
    if suffix == ".json":
        return _json(path, root)
    handlers = {".npy": _hist, ".pt": _checkpoint, ".pth": _checkpoint,
                ".png": lambda p, classes: _label_pngs([p], p, classes)}
    if suffix not in handlers:
        raise _unsupported(path)
    return handlers[suffix](path, _class_set(path, root))


def _json(path, root=None):
    """A JSON stage output, by its keys; its classes named by the layout it records, if any."""
    obj = read_json(path)
    if not isinstance(obj, dict):
        raise _unsupported(path, "JSON that is not an object")
    classes = _class_set(path, root, obj)
    if obj.get("format") == SHARD_FORMAT:
        return _shards([path.parent], classes)
    if is_aggregate(obj) or ("iou" in obj and "miou" in obj):
        return _miou(path, obj, classes)
    if "num_labeled" in obj:
        return _per_class_json(path, obj, "split description", classes)
    if "labeler" in obj or path.name in ("thresholds.json", "pseudo_stats.json"):
        # tau_bits, rho_num/rho_den encode tau and rho exactly; tp/on-gt counts are the inputs of precision
        return _per_class_json(path, obj, f"pseudo-labeler output ({path.name})", classes,
                               skip=("tau_bits", "rho_num", "rho_den", "gt.tp", "gt.pseudo_on_gt", "gt.gt_pixels"))
    if path.name == "prior.json" or (obj.get("source") == "labeled" and "shares" in obj):
        return _prior(path, obj, classes)
    if "pseudo_counts" in obj:  # pseudo/{k}/stats.json of the label stage
        return _per_class_json(path, obj, "pseudo labels of one shard", classes, skip=("gt.tp", "gt.pseudo_on_gt"))
    if path.name == "stats.json" or "shares" in obj:
        return _per_class_json(path, obj, "synthetic dataset statistics", classes)
    raise _unsupported(path, "JSON with unrecognised keys " + ", ".join(list(obj)[:8]))


def _image_list(path):
    pairs, bad = [], []
    for no, line in enumerate(path.read_text().splitlines(), 1):
        if line.strip():
            (pairs if len(line.split()) == 2 else bad).append((no, line.split()))
    cities = Counter(Path(p[0]).parent.name for _, p in pairs)
    ids = Counter(image_id(p[0]) for _, p in pairs)
    out = [f"{path}: image list, {len(pairs)} pairs", "first lines:"]
    out += [f"  {' '.join(p)}" for _, p in pairs[:3]]
    out.append(f"cities ({len(cities)}): " + ", ".join(f"{c} {n}" for c, n in sorted(cities.items())))
    dup = [i for i, n in ids.items() if n > 1]
    if dup:
        out.append(f"WARNING: {len(dup)} duplicated image ids, e.g. {dup[:3]}")
    if bad:
        out.append(f"WARNING: {len(bad)} malformed lines (expected 2 paths), line(s) {[n for n, _ in bad[:10]]}")
    return "\n".join(out)


def _prior(path, obj, classes):
    shares = np.asarray(obj["shares"], dtype=np.float64)
    counts = obj.get("counts") or [None] * len(shares)
    names = _names(len(shares), classes, obj)
    order = np.argsort(-shares, kind="stable")
    rows = [(names[i], _pct(shares[i]), _fmt(counts[i])) for i in order]
    out = [f"{path}: class prior from {obj.get('source')} ground truth, "
           f"{_fmt(obj.get('num_pixels'))} pixels counted, {_fmt(obj.get('void_pixels'))} void",
           _table(["class", "share %", "pixels"], rows)]
    nz = shares[shares > 0]
    if len(nz):
        out.append(f"largest/smallest share: {nz.max() / nz.min():.1f} (over classes present)")
    absent = [names[i] for i in np.flatnonzero(shares == 0)]
    if absent:
        out.append("classes with no labeled pixels: " + ", ".join(absent))
    return "\n".join(out)


def _shards(dirs, classes):
    num_classes, n, pixels, nbytes, with_gt, ones, conf_sum = None, 0, 0, 0, 0, 0, 0.0
    sizes, ids = Counter(), []
    conf_hist = np.zeros(10, dtype=np.int64)
    for d in dirs:
        shard = Shard(d)
        if num_classes is None:
            num_classes, pred_hist = shard.num_classes, np.zeros(shard.num_classes, dtype=np.int64)
        elif shard.num_classes != num_classes:
            raise DarsError(f"{d}: {shard.num_classes} classes, but {dirs[0]} has {num_classes}")
        nbytes += sum(f.stat().st_size for f in d.iterdir() if f.is_file())
        for meta, pred, conf in shard:  # memory-mapped, one image at a time
            n += 1
            ids.append(meta["id"])
            sizes[f"{meta['height']}x{meta['width']}"] += 1
            pixels += pred.size
            with_gt += meta.get("label") is not None
            pred_hist += np.bincount(pred.ravel(), minlength=num_classes)
            c = conf.ravel().astype(np.float32)
            conf_hist += np.histogram(c, bins=10, range=(0.0, 1.0))[0]
            ones += int(np.count_nonzero(conf == 1.0))
            conf_sum += float(c.sum(dtype=np.float64))
    where = str(dirs[0]) if len(dirs) == 1 else f"{len(dirs)} shards under {dirs[0].parent}"
    out = [f"{where}: teacher outputs, {n} images, {num_classes} classes"]
    if n == 0:
        return out[0]
    out += ["image sizes: " + ", ".join(f"{s} x{c}" for s, c in sizes.most_common()),
            f"total pixels: {pixels:,}",
            f"bytes on disk: {nbytes:,} ({nbytes / n:,.0f} per image, {nbytes / max(pixels, 1):.2f} per pixel)",
            f"images with a ground-truth path: {with_gt}/{n}",
            "ids: " + ", ".join(ids[:5]) + (" ..." if n > 5 else ""),
            "predicted classes:"]
    names = _names(num_classes, classes)
    out.append(_table(["class", "pixels", "share %"],
                      [(names[i], _fmt(int(v)), _pct(v / pixels)) for i, v in enumerate(pred_hist)]))
    out.append(f"confidence (float16 max softmax): mean {conf_sum / pixels:.4f}, "
               f"exactly 1.0: {_pct(ones / pixels)} %")
    out.append(_table(["bin", "pixels", "share %"],
                      [(f"[{i / 10:.1f}, {(i + 1) / 10:.1f}{']' if i == 9 else ')'}", _fmt(int(v)),
                        _pct(v / pixels)) for i, v in enumerate(conf_hist)]))
    return "\n".join(out)


def _label_pngs(pngs, where, classes):
    """Pixels of each class of `classes` over label maps, and a warning for ids outside it."""
    hist, sizes = np.zeros(256, dtype=np.int64), Counter()
    for p in pngs:  # one map at a time
        lab = read_label(p)
        sizes[f"{lab.shape[0]}x{lab.shape[1]}"] += 1
        hist += np.bincount(lab.ravel(), minlength=256)
    total, labelled = int(hist.sum()), int(hist.sum() - hist[IGNORE])
    out = [f"{where}: {len(pngs)} label map(s), sizes " + ", ".join(f"{s} x{c}" for s, c in sizes.most_common()),
           f"pixels: {total:,}, labelled (not {IGNORE}): {labelled:,} = {_pct(labelled / max(total, 1))} %",
           _table(["class", "pixels", "share of labelled %"],
                  [(name, _fmt(int(hist[i])), _pct(hist[i] / labelled) if labelled else "-")
                   for i, name in enumerate(classes.names)])]
    odd = [i for i in np.flatnonzero(hist) if classes.num_classes <= i < IGNORE]
    if odd:
        out.append(f"WARNING: ids outside 0..{classes.num_classes - 1} and {IGNORE}: {odd}")
    return "\n".join(out)


def _hist(path, classes):
    h = np.load(path, mmap_mode="r")
    if h.ndim != 2 or h.shape[1] != 65536:
        raise _unsupported(path, f"array of shape {h.shape}, expected a C x 65536 confidence histogram")
    # Column b counts pixels whose float16 confidence has bit pattern b.
    values = np.arange(65536, dtype=np.uint16).view(np.float16).astype(np.float64)
    ok = np.isfinite(values)
    one = int(np.float16(1.0).view(np.uint16))
    rows = []
    for name, row in zip(_names(h.shape[0], classes), h):
        row = np.asarray(row, dtype=np.int64)
        n = int(row.sum())
        mean = float((row[ok] * values[ok]).sum() / n) if n else float("nan")
        rows.append((name, _fmt(n), _fmt(mean), _pct(row[one] / n) if n else "-"))
    return "\n".join([f"{path}: confidence histogram, {h.shape[0]} classes, {int(h.sum()):,} pixels",
                      _table(["class", "pixels", "mean conf", "conf == 1.0 %"], rows)])


def _per_class_json(path, obj, title, classes, skip=()):
    """Scalars as lines; per-class values (lists, dicts by class name, `classes` entries) as a table.

    Generic on purpose: the labeler and data generator may add diagnostics, and they show up
    here without a change."""
    if isinstance(obj.get("thresholds"), dict):  # pseudo_stats.json nests its thresholds.json
        obj = {**obj["thresholds"], **{k: v for k, v in obj.items() if k != "thresholds"}}
    n = obj.get("num_classes") or len(obj.get("classes") or obj.get("class_names") or classes.names)
    names = _names(n, classes, obj)
    scalars, columns = [], {}

    def visit(prefix, value):
        if prefix in skip:
            return
        if isinstance(value, list) and len(value) == n and all(not isinstance(v, (list, dict)) for v in value):
            columns[prefix] = value
        elif isinstance(value, dict) and value and set(value) <= set(names):
            columns[prefix] = [value.get(c) for c in names]
        elif isinstance(value, dict):
            for k, v in value.items():
                visit(f"{prefix}.{k}", v)
        elif isinstance(value, list):  # e.g. missing_classes of split.json
            shown = ", ".join(map(str, value)) if len(value) <= n else f"{len(value)} entries"
            scalars.append(f"  {prefix}: {shown}")
        else:
            scalars.append(f"  {prefix}: {_fmt(value)}")

    for key, value in sorted(obj.items(), key=lambda kv: kv[0] != "classes"):  # per-class entries first
        if key == "classes" and isinstance(value, list) and all(isinstance(v, dict) for v in value):
            for k in dict.fromkeys(k for entry in value for k in entry):
                if k not in skip:
                    columns[k] = [entry.get(k) for entry in value]
        elif key != "class_names":
            visit(key, value)
    for key in [k for k in columns if "hist" in k or "count" in k]:  # counts read better as shares
        total = sum(v or 0 for v in columns[key])
        columns[key + " %"] = [_pct((v or 0) / total) if total else "-" for v in columns[key]]
    measured = next((k for k in columns if "share" in k and "target" not in k), None)
    target = next((k for k in columns if "target" in k), None)
    if measured and target:
        columns[f"{measured}/{target}"] = [m / t if m is not None and t else None
                                          for m, t in zip(columns[measured], columns[target])]
    out = [f"{path}: {title}"] + scalars
    if columns:
        rows = [[names[i]] + [v[i] if isinstance(v[i], str) else _fmt(v[i]) for v in columns.values()]
                for i in range(n)]
        out.append(_table(["class", *columns], rows))
    return "\n".join(out)


def _load_checkpoint(path):
    try:
        return torch.load(path, map_location="cpu", weights_only=True), "weights_only=True"
    except Exception:
        pass
    # The settings may hold objects the safe loader refuses; this is the user's own run output.
    try:
        return torch.load(path, map_location="cpu", weights_only=False), "weights_only=False"
    except Exception as e:
        raise DarsError(f"{path}: not a readable torch checkpoint ({e})") from e


def _checkpoint(path, classes):
    ckpt, how = _load_checkpoint(path)
    if not isinstance(ckpt, dict) or "model" not in ckpt:
        raise _unsupported(path, "not a dars checkpoint dict with a 'model' entry")
    tensors = {k: v for k, v in ckpt["model"].items() if torch.is_tensor(v)}
    params = sum(v.numel() for k, v in tensors.items() if not k.endswith(BUFFERS))
    nc = ckpt.get("num_classes")
    out = [f"{path}: checkpoint ({path.stat().st_size / 2**20:.1f} MiB, loaded with {how})",
           f"  model: {ckpt.get('model_name')}, {nc} classes"
           + (f" ({', '.join(_names(nc, classes))})" if isinstance(nc, int) else ""),
           f"  round {_fmt(ckpt.get('round'))}, epoch {_fmt(ckpt.get('epoch'))}/{_fmt(ckpt.get('epochs'))}, "
           f"iteration {_fmt(ckpt.get('iteration'))}",
           f"  parameters: {params:,} ({len(tensors)} tensors in the state dict)",
           f"  optimizer state: {'present' if ckpt.get('optimizer') else 'absent'}"]
    history = ckpt.get("history") or []
    if history:
        out.append(f"  history: {len(history)} entries, last: "
                   + ", ".join(f"{k} {_fmt(v)}" for k, v in history[-1].items()))
    settings = ckpt.get("settings") or {}
    if settings:
        out.append("settings:")
        out += [f"  {k}: {v}" for k, v in (settings.items() if isinstance(settings, dict) else vars(settings).items())]
    return "\n".join(out)


def _miou(path, obj, classes):
    if is_aggregate(obj):
        iou = obj.get("iou_mean") or []
        out = [f"{path}: mIoU over seeds {obj.get('seeds')} ({obj.get('std', 'sample')} std), "
               f"{obj.get('dataset')} split {obj.get('split')} round {obj.get('round')} method {obj.get('method')}",
               f"  mIoU {_pct(obj['miou_mean'])} +- {_pct(obj.get('miou_std'))} %"]
        out += [f"  seed {s.get('seed')}: {_pct(s.get('miou'))} %  ({s.get('file')})" for s in obj.get("per_seed", [])]
        out.append(_table(["class", "mean IoU %"], [(c, _pct(v)) for c, v in zip(_names(len(iou), classes, obj), iou)]))
        return "\n".join(out)
    keys = ("dataset", "split", "split_source", "split_family", "method", "seed", "round", "alpha", "scale_range",
            "protocol", "checkpoint", "num_images")
    out = [f"{path}: evaluation of one run"] + [f"  {k}: {_fmt(obj.get(k))}" for k in keys if k in obj]
    out.append(f"  mIoU {_pct(obj['miou'])} %, mAcc {_pct(obj.get('macc'))} %, allAcc {_pct(obj.get('allacc'))} %")
    iou = obj["iou"]
    acc = obj.get("acc") or [None] * len(iou)
    rows = [(c, _pct(i), _pct(a)) for c, i, a in zip(_names(len(iou), classes, obj), iou, acc)]
    out.append(_table(["class", "IoU %", "Acc %"], rows))
    return "\n".join(out)


def add_arguments(parser):
    """summarise any stage output; optionally render an overlay PNG"""
    parser.add_argument("path")
    parser.add_argument("--overlay", help="write an image | ground truth | labels panel here")
    parser.add_argument("--root", help="dataset root (of an overlay's images; its layout's classes name the classes)")


def main(args):
    print(inspect(args.path, overlay=args.overlay, root=args.root))


COMMANDS = {"inspect": (add_arguments, main)}
