"""Teacher-inference throughput (images/s): sliding window + flip, and whole image, as the infer
and evaluate stages run it (dars.slide.predict_probs, then the per-pixel max the shards keep).

    PYTHONPATH=. python bench/infer_bench.py --model pspnet50 --height 1024 --width 2048 \\
        --window 713 --batch-windows 4 8 --amp bf16 off --channels-last on off --fold on off --images 10

Random initialisation and random images (speed does not depend on the weights); CUDA when
available, synchronised before every clock read. Every combination of the listed settings
is one measurement and prints one JSON line. Needs torch, torchvision, numpy and opencv only
(no snakemake, no installed package): run it from the repository root with PYTHONPATH=."""
import argparse
import itertools
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from dars import slide  # noqa: E402
from dars.data.dataset import ImageList, prefetched  # noqa: E402
from dars.models import build_model  # noqa: E402
from dars.models.fold import fold_batchnorm  # noqa: E402


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(model, images, warmup, device, **options):
    """Seconds per image over `images` after `warmup` untimed images (cuDNN autotuning,
    allocator growth), each ending with the argmax/max the infer stage computes."""
    def one(im):
        conf, pred = slide.predict_probs(model, im, device=device, **options).max(0)
        return conf, pred

    for i in range(warmup):
        one(images[i % len(images)])
    sync(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    start = time.perf_counter()
    for im in images:
        one(im)
    sync(device)
    return (time.perf_counter() - start) / len(images)


def from_disk(model, root, pairs, workers, warmup, device, **options):
    """Images/s of the stages' loop over PNGs on disk: decoding by `workers` processes ahead of
    the network (dars.data.dataset.prefetched, as the infer/evaluate stages run it)."""
    def run(items):
        for _, im, _ in prefetched(ImageList(root, items), workers):
            slide.predict_probs(model, im, device=device, **options).max(0)
        sync(device)
    run(pairs[:warmup])
    start = time.perf_counter()
    run(pairs)
    return len(pairs) / (time.perf_counter() - start)


def disk_tree(args):
    """(root, pairs) of a generated Cityscapes-layout tree of --images street scenes at the
    image size, under --keep (reused) or a temporary directory."""
    import tempfile

    from dars.data.cityscapes import find_pairs
    from dars.synthetic import generate
    root = Path(args.keep or tempfile.mkdtemp()) / f"street_{args.height}x{args.width}"
    if not (root / "leftImg8bit").is_dir():
        generate(root, num_train=args.images, num_val=1, height=args.height, width=args.width)
    return root, find_pairs(root, "train")[:args.images]


def forward_only(model, mode, views, warmup, images, device, amp, channels_last):
    """Images/s of the network alone on ready device tensors (no decoding, normalisation,
    softmax or averaging): the ceiling the full path is measured against. `views`: the
    batch shapes one image needs (its windows and flips, or the image and its flip)."""
    run = slide._Runner(model, device, amp, channels_last, mode)
    batches = [torch.randn(shape, device=device) for shape in views]
    with torch.no_grad():
        for _ in range(warmup):
            for b in batches:
                run(b)
        sync(device)
        start = time.perf_counter()
        for _ in range(images):
            for b in batches:
                run(b)
        sync(device)
    return images / (time.perf_counter() - start)


def profile(model, image, device, top, **options):
    """The `top` operators by device (else CPU) self time over one image, in ms."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with torch_profile(activities=activities) as prof:
        slide.predict_probs(model, image, device=device, **options).max(0)
        sync(device)
    key = "self_device_time_total" if device.type == "cuda" else "self_cpu_time_total"
    events = sorted(prof.key_averages(), key=lambda e: getattr(e, key, 0), reverse=True)[:top]
    return [[e.key[:60], e.count, round(getattr(e, key, 0) / 1000, 2)] for e in events]


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="pspnet50")
    p.add_argument("--num-classes", type=int, default=19)
    p.add_argument("--height", type=int, default=1024, help="image height (network input unless --resize)")
    p.add_argument("--width", type=int, default=2048)
    p.add_argument("--resize", type=int, nargs=2, metavar=("H", "W"), help="network input size")
    p.add_argument("--window", type=int, nargs="+", default=[713], help="H [W]: the training crop")
    p.add_argument("--batch-windows", type=int, nargs="+", default=[8], help="windows per forward (x2 with flip)")
    p.add_argument("--amp", nargs="+", choices=["bf16", "off", "auto"], default=["auto"])
    p.add_argument("--channels-last", nargs="+", choices=["on", "off", "auto"], default=["auto"])
    p.add_argument("--modes", nargs="+", choices=["slide", "whole"], default=["slide", "whole"])
    p.add_argument("--fold", nargs="+", choices=["on", "off", "auto"], default=["auto"],
                   help="BatchNorm folded into the convolutions; auto: on CUDA, as the stages load models")
    p.add_argument("--compile", nargs="+", choices=["on", "off"], default=["off"],
                   help="torch.compile the network (its compile time falls in the warm-up)")
    p.add_argument("--no-flip", action="store_true")
    p.add_argument("--images", type=int, default=10, help="timed images per measurement")
    p.add_argument("--warmup", type=int, default=2, help="untimed images before each measurement")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--threads", type=int, help="CPU threads (torch.set_num_threads)")
    p.add_argument("--forward-only", action="store_true",
                   help="also time the network alone on device tensors (forward_only_images_per_s)")
    p.add_argument("--disk-workers", type=int, nargs="*", default=[], metavar="W",
                   help="also time the stages' loop over generated PNGs (street scenes) on disk, "
                        "decoded by W worker processes (disk_images_per_s)")
    p.add_argument("--keep", help="generate the PNGs into this directory (reused) instead of a temporary one")
    p.add_argument("--profile", type=int, default=0, metavar="N",
                   help="also list the N operators taking most device time over one image")
    args = p.parse_args()

    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # as the stages set it: one shape per run
    tree = disk_tree(args) if args.disk_workers else None
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, size=(args.height, args.width, 3), dtype=np.uint8)
              for _ in range(min(args.images, 4))]
    images = [images[i % len(images)] for i in range(args.images)]
    window = slide.as_size(args.window[0] if len(args.window) == 1 else args.window, "--window")
    net = tuple(args.resize) if args.resize else (args.height, args.width)
    padded = tuple(max(a, b) for a, b in zip(net, window))
    num_windows = len(slide.window_grid(*padded, window, slide.default_stride(window)))
    flip = not args.no_flip
    info = {"model": args.model, "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
            "torch": torch.__version__, "image": [args.height, args.width], "flip": flip}

    for mode in args.modes:
        for amp in args.amp:
            for cl in args.channels_last:
                channels_last = {"on": True, "off": False}.get(cl, "auto")
                for bw, fold, compiled in itertools.product(
                        args.batch_windows if mode == "slide" else [None], args.fold, args.compile):
                    # A fresh copy per measurement: channels_last converts the model in place.
                    torch.manual_seed(0)
                    m = build_model(args.model, args.num_classes).to(device).eval()
                    fold = fold == "on" or (fold == "auto" and device.type == "cuda")
                    if fold:
                        m = fold_batchnorm(m)
                    if compiled == "on":
                        m = torch.compile(m)
                    options = dict(resize=args.resize, mode=mode, flip=flip, amp=amp, channels_last=channels_last)
                    if mode == "slide":
                        options.update(window=window, batch_windows=bw)
                    try:
                        sec = measure(m, images, args.warmup, device, **options)
                        error = None
                    except torch.OutOfMemoryError as e:
                        sec, error = None, f"out of memory: {str(e).splitlines()[0]}"
                    row = dict(info, mode=mode, protocol=slide.describe(mode, args.resize, window, flip=flip,
                                                                        native=[net]),
                               precision=slide.precision(device, amp, channels_last, mode),
                               amp=amp, channels_last=cl, fold_batchnorm=fold, compile=compiled,
                               images=args.images, warmup=args.warmup)
                    if mode == "slide":
                        row.update(window=list(window), windows_per_image=num_windows, batch_windows=bw,
                                   forwards_per_image=-(-num_windows // bw))
                    row.update(seconds_per_image=sec, images_per_s=None if sec is None else 1 / sec, error=error)
                    if args.forward_only and error is None:
                        n = 2 if flip else 1
                        if mode == "slide":
                            views = [(n * min(bw, num_windows - i), 3, *window) for i in range(0, num_windows, bw)]
                        else:
                            views = [(n, 3, *net)]
                        row["forward_only_images_per_s"] = forward_only(
                            m, mode, views, args.warmup, args.images, device, amp, channels_last)
                    if args.disk_workers and error is None:
                        root, pairs = tree
                        row["disk_images_per_s"] = {w: from_disk(m, root, pairs, w, args.warmup, device, **options)
                                                    for w in args.disk_workers}
                    if args.profile and error is None:
                        row["profile_ms"] = profile(m, images[0], device, args.profile, **options)
                    if device.type == "cuda":
                        row["peak_gib"] = round(torch.cuda.max_memory_allocated(device) / 2**30, 2)
                    print(json.dumps(row), flush=True)
                    del m
                    if device.type == "cuda":
                        torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
