"""Teacher inference: class probabilities per image (whole image or sliding window, optional flip;
dars.slide), written to shards."""
import zlib

import numpy as np
import torch

from . import slide
from .data.cityscapes import image_id, read_list
from .data.dataset import ImageList, prefetched
from .distributed import resolve_workers
from .gpu import claim_device
from .io import DarsError, read_checkpoint
from .models import build_model
from .models.fold import fold_batchnorm
from .shards import ShardWriter


def pick_device():
    """cpu without CUDA, else this process's GPU: the only visible one, or a free one it claims
    so parallel local jobs do not share a GPU (dars.gpu.claim_device)."""
    return claim_device()


def load_model(ckpt_path, device):
    """Model of a checkpoint, in eval mode (on CUDA with BatchNorm folded into the convolutions),
    plus the checkpoint dict (without weights)."""
    ckpt = read_checkpoint(ckpt_path)
    model = build_model(ckpt["model_name"], ckpt["num_classes"])
    model.load_state_dict(ckpt["model"])
    model.to(device).eval()
    if torch.device(device).type == "cuda":
        model = fold_batchnorm(model)  # same function, fewer memory passes (dars/models/fold.py)
    meta = {k: v for k, v in ckpt.items() if k not in ("model", "optimizer", "rng")}
    return model, meta


def predict_probs(model, image_rgb, resize=None, flip=True, device="cpu", **options):
    """Softmax probabilities (C x H x W, float32) at the image's own resolution: whole image by
    default (the model sees it resized to `resize`, logits resized back before the softmax),
    or a sliding window with `mode="slide", window=...`. `options` are dars.slide.predict_probs's
    (mode, window, stride, batch_windows, amp, channels_last); the positional signature is
    the one this function always had."""
    return slide.predict_probs(model, image_rgb, resize=resize, flip=flip, device=device, **options)


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


def resolve_window(mode, window, meta):
    """Slide mode's window: the configured one, else the checkpoint's training crop (the
    paper's protocol); None in whole mode."""
    if mode != "slide":
        return None
    if window is None:
        window = (meta.get("settings") or {}).get("crop")
        if window is None:
            raise DarsError("slide inference needs a window: set evaluate.window, or use a checkpoint "
                            "that records its training crop")
    return slide.as_size(window, "evaluate.window")


def prepare_device(device, threads):
    """Threads and cuDNN for an inference stage; returns how many processes decode images
    ahead of the network (dars.data.dataset.prefetched): on CUDA all the job's threads but
    the one feeding the GPU, on CPU none (there the threads are the compute itself)."""
    workers = resolve_workers("auto", threads, device)
    if threads:
        torch.set_num_threads(max(1, threads - workers))
    if device.type == "cuda":
        # Every window (and, per dataset, every image) has one shape: let cuDNN pick its fastest
        # convolutions once. Inference only, so its non-determinism cannot reach training.
        torch.backends.cudnn.benchmark = True
    return workers


def infer_stage(ckpt, root, list_file, out_dir, num_shards, shard, resize=None, flip=True, threads=None,
                mode="whole", window=None, batch_windows=8, amp="auto", channels_last="auto", fuse="probs"):
    """Run the teacher on shard `shard` of the images in `list_file` and write one shard directory.
    mode/window/batch_windows/amp/channels_last/fuse: see dars.slide.predict_probs (window None
    in slide mode = the checkpoint's training crop; fuse: evaluate.teacher_fusion)."""
    device = pick_device()
    workers = prepare_device(device, threads)
    model, meta = load_model(ckpt, device)
    window = resolve_window(mode, window, meta)
    options = dict(mode=mode, window=window, batch_windows=batch_windows, amp=amp, channels_last=channels_last,
                   fuse=fuse)
    pairs = read_list(list_file, root)
    pairs = [pairs[i] for i in shard_slice(len(pairs), num_shards, shard)]
    with ShardWriter(out_dir, meta["num_classes"]) as writer:
        for i, image, _ in prefetched(ImageList(root, pairs), workers):
            image_rel, label_rel = pairs[i]
            probs = predict_probs(model, image, resize, flip, device, **options)
            conf, pred = probs.max(0)
            iid = image_id(image_rel)
            picks = torch.from_numpy(sample_pixels(iid, conf.numel())).to(probs.device)
            sample = probs.flatten(1)[:, picks].T.to(torch.float16).cpu().numpy()
            # float16 confidences, as in the method: ties among confident pixels are real and
            # are what DARS's random sampling resolves.
            writer.add(iid, pred.to(torch.uint8).cpu().numpy(), conf.to(torch.float16).cpu().numpy(),
                       image=image_rel, label=label_rel, prob_sample=sample)
