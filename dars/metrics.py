"""Confusion-matrix metrics summed over a dataset, and KL divergence between class distributions.

numpy only (torch is imported lazily for the cross-process sum), so stages that need no
network, like pseudo-labeling, start fast."""
import numpy as np

from .classes import IGNORE


def _numpy(x):
    if hasattr(x, "detach"):  # a torch tensor, possibly on the GPU
        x = x.detach().cpu().numpy()
    return np.asarray(x)


class ConfusionMatrix:
    """Rows: ground truth, columns: prediction; pixels labelled IGNORE are skipped."""

    def __init__(self, num_classes):
        self.num_classes = num_classes
        self.mat = np.zeros((num_classes, num_classes), dtype=np.int64)

    def update(self, target, pred):
        target = _numpy(target).ravel().astype(np.int64)
        pred = _numpy(pred).ravel().astype(np.int64)
        keep = target != IGNORE
        k = self.num_classes
        if keep.any() and (target[keep].max() >= k or target[keep].min() < 0):
            raise ValueError(f"ground truth holds ids outside 0..{k - 1} and {IGNORE}")
        self.mat += np.bincount(target[keep] * k + pred[keep], minlength=k * k).reshape(k, k)

    def reduce_from_all_processes(self):
        """Sum the matrix over distributed processes (no-op when not distributed)."""
        import torch.distributed as dist
        if dist.is_available() and dist.is_initialized():
            import torch
            t = torch.from_numpy(self.mat).cuda() if dist.get_backend() == "nccl" else torch.from_numpy(self.mat)
            dist.all_reduce(t)
            self.mat = t.cpu().numpy()

    def compute(self):
        """Per-class IoU and accuracy (NaN where a class is absent), mIoU over all classes, mAcc, allAcc."""
        m = self.mat.astype(np.float64)
        tp = np.diag(m)
        gt = m.sum(1)
        union = gt + m.sum(0) - tp
        with np.errstate(divide="ignore", invalid="ignore"):
            iou = np.where(union > 0, tp / union, np.nan)
            acc = np.where(gt > 0, tp / gt, np.nan)
        total = m.sum()
        return {
            "iou": iou.tolist(),
            "acc": acc.tolist(),
            # mean over all classes; a class absent from both GT and prediction counts as NaN and
            # is skipped (as the official Cityscapes evaluator does).
            "miou": float(np.nanmean(iou)) if total > 0 else float("nan"),
            "macc": float(np.nanmean(acc)) if total > 0 else float("nan"),
            "allacc": float(tp.sum() / total) if total > 0 else float("nan"),
        }


def kl_divergence(p, q, eps=1e-6):
    """D_KL(p || q) of two class distributions (counts or shares), epsilon-smoothed and renormalised."""
    p = np.asarray(p, dtype=np.float64)
    q = np.asarray(q, dtype=np.float64)
    p = p / p.sum() if p.sum() > 0 else np.full_like(p, 1 / len(p))
    q = q / q.sum() if q.sum() > 0 else np.full_like(q, 1 / len(q))
    p = (p + eps) / (1 + eps * len(p))
    q = (q + eps) / (1 + eps * len(q))
    return float(np.sum(p * np.log(p / q)))
