"""Teacher output shards: per pixel, the predicted class and its float16 confidence.

A shard is a directory holding
  index.json   {"format": "dars-shard/1", "num_classes": C, "images": [
                  {"id": ..., "image": ..., "label": ... or null, "height": H, "width": W,
                   "offset": pixel offset into the flat arrays}, ...]}
  pred.u8      uint8 argmax class of every pixel, images concatenated row-major
  conf.f16     little-endian float16 max softmax probability of every pixel, same order
  probs.f16    float16 full softmax vectors (C values each) of a seeded random sample of
               pixels per image (`samples` per image in the index), for label-shift
               (class prior) estimation without target labels

Digests: each image's entry holds "sha256", over its pred.u8 bytes then its conf.f16 bytes, and
the index "probs_sha256" over probs.f16; readers verify them as they read (no extra pass over
the files), so a shard rewritten with in-range values is not consumed unnoticed. Shards
written before digests existed are read unverified.

Every pseudo-labeler (ST, CBST, DARS) needs exactly (argmax, float16 max probability) per
pixel at label resolution, so the shard stores those and nothing else: 3 bytes per pixel
(6.3 MB for a 1024x2048 image instead of 80 MB of full logits), and labels computed from a
shard are identical to those computed from full-resolution logits. The cost: a shard cannot
be re-softmaxed at another precision (the fp32-confidence ablation needs a new inference).
"""
import hashlib
import json
import os
from pathlib import Path

import numpy as np

from .io import DarsError, atomic_dir, read_json, rebuild_hint

FORMAT = "dars-shard/1"


class ShardWriter:
    """Append images to a shard; the directory appears atomically on close()."""

    def __init__(self, path, num_classes):
        self.path = Path(path)
        self.num_classes = num_classes
        self._ctx = atomic_dir(self.path)
        self._tmp = self._ctx.__enter__()
        self._pred = open(self._tmp / "pred.u8", "wb")
        self._conf = open(self._tmp / "conf.f16", "wb")
        self._probs = open(self._tmp / "probs.f16", "wb")
        self._probs_sha256 = hashlib.sha256()
        self._images = []
        self._offset = 0
        self._sample_offset = 0

    def add(self, image_id, pred: np.ndarray, conf: np.ndarray, image=None, label=None, prob_sample=None):
        if pred.shape != conf.shape or pred.ndim != 2:
            raise ValueError(f"pred {pred.shape} and conf {conf.shape} must be equal 2-D shapes")
        if not np.isfinite(conf).all():
            raise DarsError(f"shard {self.path}: image {image_id} has non-finite confidences "
                            "(the teacher produced NaN/inf logits; check the checkpoint)")
        pred_bytes = np.ascontiguousarray(pred, dtype=np.uint8).tobytes()
        conf_bytes = np.ascontiguousarray(conf, dtype="<f2").tobytes()
        self._pred.write(pred_bytes)
        self._conf.write(conf_bytes)
        samples = 0
        if prob_sample is not None:
            if prob_sample.ndim != 2 or prob_sample.shape[1] != self.num_classes:
                raise ValueError(f"prob_sample must be (samples, {self.num_classes}), got {prob_sample.shape}")
            prob_bytes = np.ascontiguousarray(prob_sample, dtype="<f2").tobytes()
            self._probs.write(prob_bytes)
            self._probs_sha256.update(prob_bytes)
            samples = len(prob_sample)
        h, w = pred.shape
        self._images.append({"id": image_id, "image": image, "label": label,
                             "height": int(h), "width": int(w), "offset": self._offset,
                             "samples": samples, "sample_offset": self._sample_offset,
                             "sha256": image_digest(pred_bytes, conf_bytes)})
        self._offset += h * w
        self._sample_offset += samples

    def close(self):
        self._pred.close()
        self._conf.close()
        self._probs.close()
        index = {"format": FORMAT, "num_classes": self.num_classes, "images": self._images,
                 "probs_sha256": self._probs_sha256.hexdigest()}
        (self._tmp / "index.json").write_text(json.dumps(index, indent=1) + "\n")
        self._ctx.__exit__(None, None, None)

    def abort(self, exc=None):
        """Remove the partial shard. `exc`, the error that stopped the writer, goes through
        atomic_dir, which names the shard and the free space when it is a full disk."""
        exc = exc or RuntimeError("aborted")
        for f in (self._pred, self._conf, self._probs):
            try:
                f.close()
            except OSError:  # flushing onto a full disk; the partial shard goes anyway
                pass
        self._ctx.__exit__(type(exc), exc, exc.__traceback__)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.close()
        else:
            self.abort(exc)


def image_digest(pred_bytes, conf_bytes):
    h = hashlib.sha256(pred_bytes)
    h.update(conf_bytes)
    return h.hexdigest()


class Shard:
    """Read-only view of a shard, read image by image, so memory does not grow with its size."""

    def __init__(self, path):
        self.path = Path(path)
        index_file = self.path / "index.json"
        if not index_file.is_file():
            raise DarsError(f"{self.path}: not a shard (no index.json); rerun the infer stage")
        index = read_json(index_file)
        if index.get("format") != FORMAT:
            raise DarsError(f"{index_file}: unknown shard format {index.get('format')!r}, expected {FORMAT}")
        self.num_classes = index["num_classes"]
        self.images = index["images"]
        self.probs_sha256 = index.get("probs_sha256")
        total = sum(im["height"] * im["width"] for im in self.images)
        for name, itemsize in (("pred.u8", 1), ("conf.f16", 2)):
            size = os.path.getsize(self.path / name)
            if size != total * itemsize:
                raise DarsError(f"{self.path / name}: {size} bytes, expected {total * itemsize}; the shard is "
                                f"truncated: {rebuild_hint(self.path)}")

    def prob_samples(self):
        """(samples, C) float32 softmax vectors of all images' sampled pixels."""
        path = self.path / "probs.f16"
        total = sum(im.get("samples", 0) for im in self.images)
        if total == 0 or not path.is_file():
            return np.zeros((0, self.num_classes), np.float32)
        data = np.fromfile(path, dtype="<f2")
        if data.size != total * self.num_classes:
            raise DarsError(f"{path}: {data.size} values, expected {total * self.num_classes}; rerun the infer stage")
        if self.probs_sha256 and hashlib.sha256(data).hexdigest() != self.probs_sha256:
            raise self._corrupt("probs.f16 differs from the digest in its index.json")
        return data.reshape(total, self.num_classes).astype(np.float32)

    def _corrupt(self, what):
        return DarsError(f"{self.path}: {what}; the shard was modified or is corrupt: {rebuild_hint(self.path)}")

    def __len__(self):
        return len(self.images)

    def get(self, i):
        """(meta, pred HxW uint8, conf HxW float16) of image i, read from disk on demand."""
        im = self.images[i]
        h, w, o = im["height"], im["width"], im["offset"]
        # Plain reads, not a memory map: mapped pages of a large shard stay resident and
        # would make peak memory grow with the shard size.
        pred = np.fromfile(self.path / "pred.u8", dtype=np.uint8, count=h * w, offset=o).reshape(h, w)
        conf = np.fromfile(self.path / "conf.f16", dtype="<f2", count=h * w, offset=2 * o).reshape(h, w)
        if im.get("sha256") and image_digest(pred, conf) != im["sha256"]:
            raise self._corrupt(f"image {im['id']}: its pred.u8/conf.f16 bytes differ from the digest in index.json")
        if not np.isfinite(conf).all():
            raise DarsError(f"{self.path}: image {im['id']} has non-finite confidences; rerun the infer stage")
        if pred.size and pred.max() >= self.num_classes:
            raise DarsError(f"{self.path}: image {im['id']} has class ids >= {self.num_classes}")
        return im, pred, conf

    def __iter__(self):
        for i in range(len(self)):
            yield self.get(i)
