"""How close are pseudo labels from our compact shards (argmax + float16 confidence, 3 bytes
per pixel) to those from full-resolution float16 logits (2 x C bytes per pixel, what the
authors store)? Both paths upsample the teacher's logits to full resolution; the reference
then rounds the logits to float16 before the softmax.

    python bench/shard_fidelity.py --ckpt results/synthetic/split8/seed0/round0/model.pt \\
        --root results/synthetic/data --images 20 --size 1024 2048
"""
import argparse
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from dars.classes import CITYSCAPES_PIXEL_SHARE  # noqa: E402
from dars.data.cityscapes import find_pairs  # noqa: E402
from dars.data.layouts import image_id  # noqa: E402
from dars.data.transforms import resize_pair, to_tensors  # noqa: E402
from dars.io import read_image  # noqa: E402
from dars.pseudo import compute_thresholds, confidence_histogram, label_image  # noqa: E402
from dars.slide import load_model  # noqa: E402


@torch.no_grad()
def teacher_outputs(model, image, size, resize):
    x = to_tensors(resize_pair(image, None, resize)[0])[None]
    logits = F.interpolate(model(x)["out"].float(), size=size, mode="bilinear", align_corners=False)[0]
    ours = F.softmax(logits, 0).max(0)                      # what the infer stage stores
    ref = F.softmax(logits.half().float(), 0).max(0)        # from float16 full-resolution logits
    return [(i.to(torch.uint8).numpy(), v.to(torch.float16).numpy()) for v, i in (ours, ref)]


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--ckpt", required=True)
    p.add_argument("--root", required=True)
    p.add_argument("--images", type=int, default=20)
    p.add_argument("--size", type=int, nargs=2, default=[1024, 2048], help="full resolution H W")
    p.add_argument("--resize", type=int, nargs=2, default=None, help="network input H W (default: image size)")
    p.add_argument("--alpha", type=float, default=0.5)
    a = p.parse_args()
    torch.set_num_threads(2)
    model, meta = load_model(a.ckpt, "cpu")
    C = meta["num_classes"]
    pairs = find_pairs(a.root, "train")[: a.images]
    outputs = []
    for img_rel, _ in pairs:
        image = read_image(Path(a.root) / img_rel)
        resize = a.resize or image.shape[:2]
        image = resize_pair(image, None, a.size)[0]
        outputs.append((image_id(img_rel), teacher_outputs(model, image, tuple(a.size), resize)))
    prior = (CITYSCAPES_PIXEL_SHARE / CITYSCAPES_PIXEL_SHARE.sum()).tolist()
    same_argmax = same_conf = same_label = total = 0
    labels = [[], []]
    for path in (0, 1):
        hist = sum(confidence_histogram(*out[path], C) for _, out in outputs)
        th = compute_thresholds(hist, "dars", a.alpha, prior)
        labels[path] = [label_image(iid, *out[path], th, 0, 1) for iid, out in outputs]
    for (_, out), l0, l1 in zip(outputs, *labels):
        same_argmax += int((out[0][0] == out[1][0]).sum())
        same_conf += int((out[0][1] == out[1][1]).sum())
        same_label += int((l0 == l1).sum())
        total += l0.size
    h, w = a.size
    print(f"images {len(outputs)} at {h}x{w}, DARS alpha {a.alpha}")
    print(f"bytes per image: shard {3 * h * w / 1e6:.2f} MB, float16 logits {2 * C * h * w / 1e6:.1f} MB")
    print(f"argmax equal {100 * same_argmax / total:.4f} %, float16 confidence equal {100 * same_conf / total:.4f} %, "
          f"pseudo label equal {100 * same_label / total:.4f} %")


if __name__ == "__main__":
    main()
