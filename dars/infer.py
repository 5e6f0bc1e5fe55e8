"""Teacher inference: class probabilities per image (whole image or sliding window, optional flip;
dars.slide), written to shards."""
import zlib

import numpy as np
import torch

from .data.dataset import ImageList, prefetched
from .data.layouts import image_id
from .data.lists import read_list
from .io import DarsError
from .log import Progress
from .settings import PREDICT_HELP, PredictSettings, json_argument
from .shards import ShardWriter
from .slide import load_predictor


def shard_slice(num_items, num_shards, shard):
    """Contiguous, balanced chunk `shard` of `num_shards` (every item in exactly one shard)."""
    if not 0 <= shard < num_shards:
        raise DarsError(f"shard {shard} is outside 0..{num_shards - 1}")
    bounds = np.linspace(0, num_items, num_shards + 1).round().astype(int)
    return range(bounds[shard], bounds[shard + 1])


PROB_SAMPLES = 1024  # pixels per image whose full softmax is kept for prior estimation


def sample_pixels(image_id, num_pixels, k=PROB_SAMPLES):
    """Sorted flat indices of k pixels (all if fewer), seeded by the image id alone."""
    if num_pixels <= k:
        return np.arange(num_pixels)
    rng = np.random.default_rng(zlib.crc32(image_id.encode()))
    return np.sort(rng.choice(num_pixels, size=k, replace=False))


def infer_stage(ckpt, root, list_file, out_dir, num_shards, shard, settings=None, threads=None):
    """Run the teacher on shard `shard` of the images in `list_file` and write one shard directory.
    `settings`: a dars.settings.PredictSettings or its dict (a window of None in slide mode is
    the checkpoint's training crop; teacher_fusion: how the flip and the windows are fused)."""
    predictor = load_predictor(ckpt, settings, threads)
    pairs = read_list(list_file, root)
    pairs = [pairs[i] for i in shard_slice(len(pairs), num_shards, shard)]
    progress = Progress(f"infer shard {shard}", len(pairs))
    with ShardWriter(out_dir, predictor.meta["num_classes"]) as writer:
        for i, image, _ in prefetched(ImageList(root, pairs), predictor.workers):
            image_rel, label_rel = pairs[i]
            probs = predictor.probs(image, fuse=predictor.settings.teacher_fusion)
            conf, pred = probs.max(0)
            iid = image_id(image_rel)
            picks = torch.from_numpy(sample_pixels(iid, conf.numel())).to(probs.device)
            sample = probs.flatten(1)[:, picks].T.to(torch.float16).cpu().numpy()
            # float16 confidences, as in the method: ties among confident pixels are real and
            # are what DARS's random sampling resolves.
            writer.add(iid, pred.to(torch.uint8).cpu().numpy(), conf.to(torch.float16).cpu().numpy(),
                       image=image_rel, label=label_rel, prob_sample=sample)
            progress.update()


def add_arguments(a):
    """teacher inference on one shard of a list into a shard directory"""
    a.add_argument("--ckpt", required=True)
    a.add_argument("--root", required=True)
    a.add_argument("--list", required=True)
    a.add_argument("--num-shards", type=int, required=True)
    a.add_argument("--shard", type=int, required=True)
    a.add_argument("--settings", type=json_argument, default={}, help=PREDICT_HELP)
    a.add_argument("--threads", type=int)
    a.add_argument("--out", required=True)


def main(args):
    infer_stage(args.ckpt, args.root, args.list, args.out, args.num_shards, args.shard,
                PredictSettings.of(args.settings), args.threads)


COMMANDS = {"infer": (add_arguments, main)}
