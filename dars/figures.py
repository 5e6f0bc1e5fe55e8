"""The DARS supplementary's figures, rendered from pipeline artifacts (PNG, written atomically);
run records are loaded and checked by dars/records.py, dataset images found by dars.data.layouts.

`panels` (image | ground truth | pseudo labels of named runs) and `predictions` (image | ground
truth | predictions of named checkpoints) are pixel grids composed with OpenCV, so label maps
keep the exact colours of their dataset's class set (ignore in black; the legend names that
set's classes) and the bytes are reproducible.
`class_distribution` and `iou_bars` are matplotlib charts; matplotlib is imported inside them
(Agg canvas, no pyplot state) so that pipeline stages importing dars never pay for it.
"""
from pathlib import Path

import cv2
import numpy as np

from .data.layouts import DEFAULT_LAYOUT, class_set, find_pairs, image_id, images_with_id, label_path
from .data.lists import read_pseudo_list
from .io import DarsError, atomic_path, read_image, read_label, write_png
from .records import TAIL_SHARE, as_list, class_names, class_shares, load_cell, stat, tail_classes
from .render import TAIL_MARK
from .specs import load_spec

DPI = 110
PANEL_WIDTH = 400  # px per panel: legible at 100% zoom, 6 panels fit a 2560 px screen
FONT = cv2.FONT_HERSHEY_SIMPLEX
GAP = 4
TAIL_SHADE = "#fff2cc"  # tinted, so no grey of anti-aliased text is mistaken for it


# ---------------------------------------------------------------- pixel grids (OpenCV)

def _text_strip(text, width, height, scale=0.6):
    """White strip with `text` centred in black, shrunk until it fits."""
    strip = np.full((height, width, 3), 255, np.uint8)
    while scale > 0.3 and cv2.getTextSize(text, FONT, scale, 1)[0][0] > width - 6:
        scale -= 0.05
    (tw, th), _ = cv2.getTextSize(text, FONT, scale, 1)
    cv2.putText(strip, text, ((width - tw) // 2, (height + th) // 2), FONT, scale, (0, 0, 0), 1, cv2.LINE_AA)
    return strip


def _fit(array, width, height, label):
    interp = cv2.INTER_NEAREST if label else cv2.INTER_AREA if array.shape[1] > width else cv2.INTER_LINEAR
    return array if array.shape[:2] == (height, width) else cv2.resize(array, (width, height), interpolation=interp)


def _legend(width, classes):
    """Swatch and name of every class of `classes` (a dars.classes.ClassSet), plus ignore, wrapped
    to `width`."""
    entries = [(tuple(int(c) for c in classes.palette[i]), n) for i, n in enumerate(classes.names)]
    entries.append(((0, 0, 0), "ignore"))
    cell_w, cell_h = 150, 24
    per_row = max(1, (width - 2 * GAP) // cell_w)
    rows = -(-len(entries) // per_row)
    out = np.full((rows * cell_h + GAP, width, 3), 255, np.uint8)
    for k, (colour, name) in enumerate(entries):
        x, y = GAP + (k % per_row) * cell_w, GAP + (k // per_row) * cell_h
        cv2.rectangle(out, (x, y + 3), (x + 16, y + 19), colour, cv2.FILLED)
        cv2.rectangle(out, (x, y + 3), (x + 16, y + 19), (128, 128, 128), 1)
        cv2.putText(out, name, (x + 22, y + 16), FONT, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    return out


def compose_grid(rows, titles, row_labels, out_png, classes, panel_width=PANEL_WIDTH, legend=True):
    """rows: per image [RGB image, trainId map, ...]; one titled column per entry, image ids on the
    left, a legend of `classes` (the dars.classes.ClassSet that colours the maps) below. Returns the
    RGB array written to `out_png`."""
    w = int(panel_width)
    blocks, label_w, title_h = [], 26, 30
    header = [np.full((title_h, label_w, 3), 255, np.uint8)]
    for t in titles:
        header += [np.full((title_h, GAP, 3), 255, np.uint8), _text_strip(t, w, title_h)]
    blocks.append(np.concatenate(header, axis=1))
    for maps, name in zip(rows, row_labels):
        h = max(1, round(maps[0].shape[0] * w / maps[0].shape[1]))
        line = [np.rot90(_text_strip(name, h, label_w, 0.5))]
        for k, m in enumerate(maps):
            panel = _fit(np.ascontiguousarray(m), w, h, label=k > 0)
            line += [np.full((h, GAP, 3), 255, np.uint8), classes.colorize(panel) if k > 0 else panel]
        blocks += [np.full((GAP, line[0].shape[1] + len(maps) * (w + GAP), 3), 255, np.uint8),
                   np.concatenate(line, axis=1)]
    if legend:
        blocks.append(_legend(blocks[0].shape[1], classes))
    out = np.ascontiguousarray(np.concatenate(blocks, axis=0))
    write_png(out_png, out, rgb=True)
    return out


def _image_pair(root, item, layout):
    """(image_rel, label_rel) of an image id, or of a given [image, label] pair."""
    if isinstance(item, (list, tuple)):
        return str(item[0]), str(item[1])
    hits = images_with_id(layout, root, item)
    if len(hits) != 1:
        raise DarsError(f"{root}: image id {item!r} matches {len(hits)} images of the {layout} layout (need 1)")
    return hits[0], label_path(layout, hits[0])


def resolve_images(root, images=None, pseudo_list=None, num_images=3, split="val", layout=DEFAULT_LAYOUT):
    """[(image_rel, label_rel)]: from ids or pairs, else the first images of a pseudo_labels.txt,
    else the first `num_images` images of `split`; paths as the dataset's layout has them."""
    if images:
        return [_image_pair(root, item, layout) for item in images]
    if pseudo_list:
        return [(rel, label_path(layout, rel)) for rel, _ in read_pseudo_list(pseudo_list)[:num_images]]
    return find_pairs(layout, root, split)[:num_images]


def _pseudo_index(run):
    """{image id: PNG} of a run's pseudo labels: its pseudo_labels.txt (given, or in the dir or
    the parent of pseudo/), else every PNG under the dir and its shard subdirs."""
    d = Path(run)
    for listing in (d, d / "pseudo_labels.txt", d.parent / "pseudo_labels.txt"):
        if listing.is_file():
            return {png.stem: png for _, png in read_pseudo_list(listing)}
    if not d.is_dir():
        raise DarsError(f"{d}: pseudo-label directory not found")
    pngs = sorted(d.glob("*.png")) + sorted(d.glob("*/*.png")) + sorted(d.glob("pseudo/*/*.png"))
    return {p.stem: p for p in pngs}


def _gt(root, label_rel):
    path = Path(root) / label_rel
    if not path.is_file():
        raise DarsError(f"{path}: ground truth missing; figures compare against it")
    return read_label(path)


def panels_figure(root, runs, out_png, images=None, pseudo_list=None, num_images=3, panel_width=PANEL_WIDTH,
                  legend=True, layout=DEFAULT_LAYOUT):
    """S1-style: image | ground truth | pseudo labels of each run ({title: pseudo_labels.txt or
    pseudo-label dir}), in the colours of the layout's class set."""
    if not runs:
        raise DarsError("panels: no runs given ({title: pseudo_labels.txt or pseudo-label dir})")
    index = {title: _pseudo_index(d) for title, d in runs.items()}
    rows, names = [], []
    for image_rel, label_rel in resolve_images(root, images, pseudo_list, num_images, "train", layout):
        iid = image_id(image_rel)
        maps = [read_image(Path(root) / image_rel), _gt(root, label_rel)]
        for title, d in runs.items():
            if iid not in index[title]:
                raise DarsError(f"{d}: no pseudo label for image {iid} (run {title!r})")
            maps.append(read_label(index[title][iid]))
        rows.append(maps)
        names.append(iid)
    return compose_grid(rows, ["image", "ground truth", *runs], names, out_png, class_set(layout), panel_width,
                        legend)


def predictions_figure(root, checkpoints, out_png, images=None, num_images=3, resize=None, flip=True,
                       panel_width=PANEL_WIDTH, legend=True, layout=DEFAULT_LAYOUT):
    """S2-style: image | ground truth | argmax prediction of each checkpoint ({title: model.pt}) on val,
    in the colours of the layout's class set."""
    import torch  # only this figure needs torch

    from .slide import load_model, predict_probs
    if not checkpoints:
        raise DarsError("predictions: no checkpoints given ({title: model.pt})")
    models = {title: load_model(ckpt, "cpu")[0] for title, ckpt in checkpoints.items()}
    rows, names = [], []
    for image_rel, label_rel in resolve_images(root, images, None, num_images, "val", layout):
        image = read_image(Path(root) / image_rel)
        maps = [image, _gt(root, label_rel)]
        for model in models.values():
            maps.append(predict_probs(model, image, resize, flip, "cpu").argmax(0).to(torch.uint8).numpy())
        rows.append(maps)
        names.append(image_id(image_rel))
    return compose_grid(rows, ["image", "ground truth", *checkpoints], names, out_png, class_set(layout),
                        panel_width, legend)


# ---------------------------------------------------------------- charts (matplotlib)

def _new_figure(width_in, height_in):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    fig = Figure(figsize=(width_in, height_in), dpi=DPI)
    FigureCanvasAgg(fig)
    return fig


def _save(fig, out_png):
    """PNG without matplotlib's version stamp: equal inputs give equal bytes; another matplotlib
    version may still render differently."""
    with atomic_path(out_png, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", dpi=DPI, metadata={"Software": None})


def _style():
    import matplotlib.style
    # The library defaults, whatever a user's matplotlibrc says: same inputs, same pixels.
    return matplotlib.style.context("default")


# Runs get the tab10 colours; grey and black are kept for the prior and the truth.
RUN_COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22"]


def _width(groups, series):
    """Figure width (inches): room for every bar, at most 16 in (1760 px at DPI)."""
    return float(np.clip(2 + groups * (0.25 + 0.12 * series), 8, 16))


def _grouped_bars(ax, names, series, errors=None, colours=RUN_COLOURS):
    """One group per class, one bar per series ({label: values}), in the records' class order."""
    x = np.arange(len(names))
    width = 0.8 / len(series)
    for k, (label, values) in enumerate(series.items()):
        err = None if errors is None else errors.get(label)
        ax.bar(x - 0.4 + width * (k + 0.5), values, width, label=label, color=colours[k % len(colours)],
               yerr=err, capsize=2 if err is not None else 0, error_kw={"elinewidth": 0.8})
    ax.set_xticks(x)
    ax.set_xticklabels(names, rotation=45, ha="right", rotation_mode="anchor", fontsize=10)
    ax.set_xlim(-0.6, len(names) - 0.4)


def class_distribution_figure(prior, runs, out_png, title=None):
    """Per class: the labeled prior, the true distribution of the unlabeled images and each run's
    pseudo-label distribution ({label: pseudo_stats.json or a list over seeds: shares averaged})."""
    names, series = class_shares(as_list(prior), runs)
    with _style():
        fig = _new_figure(_width(len(names), len(series)), 4.8)
        ax = fig.add_subplot()
        _grouped_bars(ax, names, series, colours=["#7f7f7f", "#000000"][:len(series) - len(runs)] + RUN_COLOURS)
        ax.set_yscale("log")
        positive = np.concatenate([v[v > 0] for v in series.values()])
        ax.set_ylim(positive.min() / 2 if positive.size else 1e-6, 1.0)
        ax.set_ylabel("share of pixels (log scale)")
        ax.set_title(title or "Class distribution: prior, truth and pseudo labels")
        ax.legend(fontsize=9, loc="upper left", bbox_to_anchor=(1.005, 1.0), borderaxespad=0)
        ax.grid(axis="y", which="major", alpha=0.3)
        fig.tight_layout()
        _save(fig, out_png)
    return series


def iou_bars_figure(runs, out_png, val_prior=None, tail_share=TAIL_SHARE, min_seeds=1, title=None):
    """Per-class IoU (%) of each run ({label: [miou.json per seed]}): mean over seeds, error bars =
    sample std; tail classes (under `tail_share` of val pixels) marked and shaded."""
    cells = {label: load_cell(files, f"iou_bars: {label!r}", min_seeds) for label, files in runs.items()}
    if not cells:
        raise DarsError("iou_bars: no runs given ({label: [miou.json]})")
    names = class_names([r for cell in cells.values() for r in cell], "iou_bars")
    tail = tail_classes(val_prior, names, tail_share) if val_prior else []
    series, errors = {}, {}
    for label, cell in cells.items():
        values = [stat([r["iou"][c] for r in cell], "iou", cell) for c in range(len(names))]
        values.append(stat([r["miou"] for r in cell], "miou", cell))
        series[label] = np.array([100 * v.mean for v in values])
        errors[label] = np.array([100 * v.std if v.n >= 2 else 0.0 for v in values])
    ticks = [n + (TAIL_MARK if i in tail else "") for i, n in enumerate(names)] + ["mIoU"]
    with _style():
        fig = _new_figure(_width(len(ticks), len(series)), 4.8)
        ax = fig.add_subplot()
        for i in tail:
            ax.axvspan(i - 0.5, i + 0.5, color=TAIL_SHADE, zorder=0)
        _grouped_bars(ax, ticks, series, errors if any(e.any() for e in errors.values()) else None)
        ax.axvline(len(names) - 0.5, color="#555555", linewidth=0.8)
        ax.set_ylim(0, 100)
        ax.set_ylabel("IoU (%)")
        n = sorted({len(c) for c in cells.values()})
        note = f"mean ± std over {'/'.join(map(str, n))} seed(s)"
        note += f"; {TAIL_MARK} shaded: tail class (< {100 * tail_share:g}% of val pixels)" if tail else ""
        ax.set_title((title or "Per-class IoU") + f"\n({note})", fontsize=11)
        ax.legend(fontsize=9, loc="upper left", bbox_to_anchor=(1.005, 1.0), borderaxespad=0)
        ax.grid(axis="y", alpha=0.3)
        fig.tight_layout()
        _save(fig, out_png)
    return series, errors


# ---------------------------------------------------------------- spec and CLI

def write_figure(spec, out_png):
    """Draw the figure a spec describes (see the kinds above) into `out_png`. `panels` and
    `predictions` read images of the dataset at `root` in its `layout` (default cityscapes)."""
    kind = spec.get("kind") if isinstance(spec, dict) else None

    def get(key):
        if key not in spec:
            raise DarsError(f"figure spec ({kind}): missing {key!r}")
        return spec[key]
    grid = {"panel_width": spec.get("panel_width", PANEL_WIDTH), "legend": spec.get("legend", True),
            "layout": spec.get("layout", DEFAULT_LAYOUT)} if isinstance(spec, dict) else {}
    if kind == "panels":
        return panels_figure(get("root"), get("runs"), out_png, spec.get("images"), spec.get("pseudo_list"),
                             spec.get("num_images", 3), **grid)
    if kind == "predictions":
        return predictions_figure(get("root"), get("checkpoints"), out_png, spec.get("images"),
                                  spec.get("num_images", 3), spec.get("resize"), spec.get("flip", True), **grid)
    if kind == "class_distribution":
        return class_distribution_figure(get("prior"), get("runs"), out_png, spec.get("title"))
    if kind == "iou_bars":
        return iou_bars_figure(get("runs"), out_png, spec.get("val_prior"), spec.get("tail_share", TAIL_SHARE),
                               int(spec.get("min_seeds", 1)), spec.get("title"))
    raise DarsError(f"figure spec: 'kind' must be panels, predictions, class_distribution or iou_bars, got {kind!r}")


def add_arguments(parser):
    """a supplementary figure (PNG) from a JSON spec"""
    parser.add_argument("--spec", required=True,
                        help="the spec as inline JSON or a JSON file (docs in dars/figures.py)")
    parser.add_argument("--out", required=True)


def main(args):
    write_figure(load_spec(args.spec), args.out)
    print(f"wrote {args.out}")


COMMANDS = {"paper-figure": (add_arguments, main)}
