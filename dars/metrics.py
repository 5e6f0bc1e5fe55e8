"""Confusion-matrix metrics summed over a dataset, and KL divergence between class distributions."""
import numpy as np
import torch

from .classes import IGNORE


class ConfusionMatrix:
    """Rows: ground truth, columns: prediction; pixels labelled IGNORE are skipped."""

    def __init__(self, num_classes):
        self.num_classes = num_classes
        self.mat = torch.zeros(num_classes, num_classes, dtype=torch.int64)

    def update(self, target, pred):
        target = torch.as_tensor(target).flatten().to(torch.int64).cpu()
        pred = torch.as_tensor(pred).flatten().to(torch.int64).cpu()
        keep = target != IGNORE
        k = self.num_classes
        if (target[keep] >= k).any() or (target[keep] < 0).any():
            raise ValueError(f"ground truth holds ids outside 0..{k - 1} and {IGNORE}")
        idx = target[keep] * k + pred[keep]
        self.mat += torch.bincount(idx, minlength=k * k).reshape(k, k)

    def reduce_from_all_processes(self):
        """Sum the matrix over distributed processes (no-op when not distributed)."""
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.all_reduce(self.mat)

    def compute(self):
        """Per-class IoU and accuracy (NaN where a class is absent), mIoU over all classes, mAcc, allAcc."""
        m = self.mat.double()
        tp = m.diag()
        gt = m.sum(1)
        union = gt + m.sum(0) - tp
        iou = torch.where(union > 0, tp / union.clamp(min=1), torch.full_like(tp, float("nan")))
        acc = torch.where(gt > 0, tp / gt.clamp(min=1), torch.full_like(tp, float("nan")))
        total = m.sum()
        return {
            "iou": iou.tolist(),
            "acc": acc.tolist(),
            # mean over all classes; a class absent from both GT and prediction counts as NaN and
            # is skipped (as the official Cityscapes evaluator does).
            "miou": float(np.nanmean(iou.numpy())) if total > 0 else float("nan"),
            "macc": float(np.nanmean(acc.numpy())) if total > 0 else float("nan"),
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
