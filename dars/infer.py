"""Teacher inference: class probabilities per image (whole image, optional flip), written to shards."""
import zlib
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .data.cityscapes import image_id, read_list
from .data.transforms import resize_pair, to_tensors
from .gpu import claim_device
from .io import DarsError, read_image
from .models import build_model
from .shards import ShardWriter


def pick_device():
    """cpu without CUDA, else this process's GPU: the only visible one, or a free one it claims
    so parallel local jobs do not share a GPU (dars.gpu.claim_device)."""
    return claim_device()


def load_model(ckpt_path, device):
    """Model of a checkpoint, in eval mode, plus the checkpoint dict (without weights)."""
    ckpt_path = Path(ckpt_path)
    if not ckpt_path.is_file():
        raise DarsError(f"{ckpt_path}: checkpoint not found")
    ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=False)
    model = build_model(ckpt["model_name"], ckpt["num_classes"])
    model.load_state_dict(ckpt["model"])
    model.to(device).eval()
    meta = {k: v for k, v in ckpt.items() if k not in ("model", "optimizer", "rng")}
    return model, meta


@torch.no_grad()
def predict_probs(model, image_rgb, resize=None, flip=True, device="cpu"):
    """Softmax probabilities (C x H x W, float32) at the image's own resolution.

    The model sees the image resized to `resize`; its logits are resized back to the image
    size before the softmax (so shards equal what full-resolution logits would give), and
    with `flip` the probabilities are averaged with those of the mirrored image."""
    h, w = image_rgb.shape[:2]
    image, _ = resize_pair(image_rgb, None, resize)
    x = to_tensors(image)[None].to(device)

    def probs_of(batch):
        logits = model(batch)["out"].float()
        if logits.shape[-2:] != (h, w):
            logits = F.interpolate(logits, size=(h, w), mode="bilinear", align_corners=False)
        return F.softmax(logits, dim=1)

    probs = probs_of(x)
    if flip:
        probs = (probs + probs_of(x.flip(-1)).flip(-1)) / 2
    return probs[0]


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


def infer_stage(ckpt, root, list_file, out_dir, num_shards, shard, resize=None, flip=True, threads=None):
    """Run the teacher on shard `shard` of the images in `list_file` and write one shard directory."""
    if threads:
        torch.set_num_threads(threads)
    device = pick_device()
    model, meta = load_model(ckpt, device)
    pairs = read_list(list_file, root)
    with ShardWriter(out_dir, meta["num_classes"]) as writer:
        for i in shard_slice(len(pairs), num_shards, shard):
            image_rel, label_rel = pairs[i]
            probs = predict_probs(model, read_image(Path(root) / image_rel), resize, flip, device)
            conf, pred = probs.max(0)
            iid = image_id(image_rel)
            picks = torch.from_numpy(sample_pixels(iid, conf.numel())).to(probs.device)
            sample = probs.flatten(1)[:, picks].T.to(torch.float16).cpu().numpy()
            # float16 confidences, as in the method: ties among confident pixels are real and
            # are what DARS's random sampling resolves.
            writer.add(iid, pred.to(torch.uint8).cpu().numpy(), conf.to(torch.float16).cpu().numpy(),
                       image=image_rel, label=label_rel, prob_sample=sample)
