"""Side-by-side overlays: image | ground truth | labels in the colours of the dataset's class set,
ignore in black."""
from pathlib import Path

import cv2
import numpy as np

from .classes import IGNORE
from .data import layouts
from .data.lists import read_pseudo_list
from .io import DarsError, read_image, read_json, read_label, write_png
from .shards import Shard

# Shard overlays darken pixels below this confidence: a typical self-training threshold.
LOW_CONFIDENCE = 0.9


def _title(panel, text):
    """White title on a black box, legible on any background (an outline drawn with a thicker
    stroke would not line up: OpenCV's glyph advance grows with the thickness)."""
    scale = max(0.35, panel.shape[1] / 900)
    thick = max(1, round(scale * 2))
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thick)
    cv2.rectangle(panel, (0, 0), (tw + 8, th + base + 6), (0, 0, 0), cv2.FILLED)
    cv2.putText(panel, text, (4, 3 + th), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), thick, cv2.LINE_AA)


def render_overlay(image_rgb, label=None, pred=None, *, out_png, classes, titles=None, dark=None):
    """Write image | ground truth | label map(s) side by side as one PNG; returns the RGB array.

    `pred` is one trainId map or a list, coloured by `classes` (a dars.classes.ClassSet); `dark`
    is a boolean mask (e.g. low confidence) darkened in every prediction panel. Maps of another
    size are resized (nearest) to the image.
    """
    image = np.ascontiguousarray(image_rgb if image_rgb.ndim == 3 else np.stack([image_rgb] * 3, -1), np.uint8)
    h, w = image.shape[:2]

    def fit(m):
        return m if m.shape == (h, w) else cv2.resize(m, (w, h), interpolation=cv2.INTER_NEAREST)
    preds = [] if pred is None else list(pred) if isinstance(pred, (list, tuple)) else [pred]
    panels = [image.copy()] + ([classes.colorize(fit(label))] if label is not None else [])
    for p in preds:
        panel = classes.colorize(fit(p))
        if dark is not None:
            mask = fit(np.asarray(dark, dtype=np.uint8)).astype(bool)
            panel[mask] = (panel[mask] * 0.35).astype(np.uint8)
        panels.append(panel)
    default = ["image"] + (["ground truth"] if label is not None else []) + \
              (["prediction"] if len(preds) == 1 else [f"prediction {i}" for i in range(len(preds))])
    for panel, text in zip(panels, titles or default):
        _title(panel, text)
    out = np.concatenate(panels, axis=1)
    write_png(out_png, out, rgb=True)
    return out


def find_dataset(path, root=None):
    """(root, layout) of the dataset a stage output or a dataset file belongs to: `root` as given
    (its layout recognised from its folders), else the root and layout split.json above `path`
    names, else a dataset tree above it (itself, or a generated dataset's data/ tree); None when
    there is none."""
    if root is not None:
        return Path(root), layouts.recognise(root) or layouts.DEFAULT_LAYOUT
    for parent in Path(path).resolve().parents:
        if (parent / "split" / "split.json").is_file():
            split = read_json(parent / "split" / "split.json")
            if split.get("root"):
                return Path(split["root"]), split.get("layout", layouts.DEFAULT_LAYOUT)
        for tree in (parent, parent / "data"):
            name = layouts.recognise(tree)
            if name is not None:
                return tree, name
    return None


def _pseudo_image(png, root, layout):
    """Image path (relative to root) of a pseudo label, from pseudo_labels.txt above it."""
    for d in list(png.resolve().parents)[:3]:
        listing = d / "pseudo_labels.txt"
        if listing.is_file():
            for image, label in read_pseudo_list(listing):
                if label.resolve() == png.resolve() or label.stem == png.stem:
                    return image
            raise DarsError(f"{listing}: no line for {png.stem}; the pseudo-label stage output is inconsistent")
    hits = layouts.images_with_id(layout, root, png.stem)
    if not hits:
        raise DarsError(f"{png}: no pseudo_labels.txt above it and no image {png.stem} of the {layout} layout "
                        f"under {root}")
    return hits[0]


def overlay(path, out, root=None):
    """Render image | ground truth | labels for a pseudo-label PNG, a shard or SHARD_DIR/<image id>."""
    path = Path(path)
    found = find_dataset(path, root)
    if found is None:
        raise DarsError(f"{path}: cannot find the dataset root (no split/split.json above it); pass --root DIR")
    root, layout = found
    if (path / "index.json").is_file() or (path.parent / "index.json").is_file():
        shard = Shard(path if (path / "index.json").is_file() else path.parent)
        ids = [im["id"] for im in shard.images]
        i = 0 if (path / "index.json").is_file() else ids.index(path.name) if path.name in ids else None
        if i is None or not ids:
            raise DarsError(f"{path}: no image {path.name!r} in shard {shard.path}")
        meta, labels, conf = shard.get(i)
        if not meta.get("image"):
            raise DarsError(f"{shard.path}: image {meta['id']} has no image path in index.json")
        rel, gt_rel = meta["image"], meta.get("label")
        dark = conf.astype(np.float32) < LOW_CONFIDENCE
        kind = f"prediction (conf < {LOW_CONFIDENCE} dark)"
        summary = (f"{shard.path}: image {meta['id']}, {meta['height']}x{meta['width']}, mean confidence "
                   f"{conf.astype(np.float32).mean():.4f}, below {LOW_CONFIDENCE}: {100 * dark.mean():.2f} %")
    elif path.suffix.lower() == ".png" and path.is_file():
        labels, dark, kind = read_label(path), None, "pseudo labels"
        rel = _pseudo_image(path, root, layout)
        gt_rel = layouts.label_path(layout, rel)
        summary = f"{path}: pseudo labels"
    else:
        raise DarsError(f"{path}: overlays need a pseudo-label PNG, a shard directory or SHARD_DIR/<image id>")
    image = read_image(root / rel)
    gt = read_label(root / gt_rel) if gt_rel and (root / gt_rel).is_file() else None
    titles = ["image", "ground truth" if gt is not None else "ground truth (missing)", kind]
    if gt is None:  # keep the three-panel layout; a black panel says "no ground truth"
        gt = np.full(image.shape[:2], IGNORE, dtype=np.uint8)
    render_overlay(image, gt, labels, out_png=out, classes=layouts.class_set(layout), titles=titles, dark=dark)
    return f"{summary}\nimage: {root / rel}\noverlay: {out} ({' | '.join(titles)})"
