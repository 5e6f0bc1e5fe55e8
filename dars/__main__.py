"""`python -m dars <stage> ...`: one thin subcommand per pipeline stage."""
import argparse
import json
import os
import sys

from .io import DarsError


def _json(text):
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise argparse.ArgumentTypeError(f"not JSON: {e}") from None


PREDICT_HELP = ('{"resize": [H, W], "flip": true, "mode": "whole"|"slide", "window": [H, W] or null '
                '(= training crop), '
                '"batch_windows": 8, "amp": "auto"|"bf16"|"off", "channels_last": "auto"|true|false}')


def _predict_options(settings):
    return {k: settings[k] for k in ("mode", "window", "batch_windows", "amp", "channels_last") if k in settings}


def build_parser():
    p = argparse.ArgumentParser(prog="python -m dars", description=__doc__)
    sub = p.add_subparsers(dest="stage", required=True)

    a = sub.add_parser("synthesize", help="generate the embedded synthetic dataset (Cityscapes layout)")
    a.add_argument("--out", required=True)
    a.add_argument("--num-train", type=int, default=240)
    a.add_argument("--num-val", type=int, default=48)
    a.add_argument("--height", type=int, default=128)
    a.add_argument("--width", type=int, default=256)
    a.add_argument("--seed", type=int, default=0)
    a.add_argument("--domain", default="city", choices=["city", "game"],
                   help="city: Cityscapes layout; game: the GTA5 stand-in (GTA5 layout, other look and shares)")

    a = sub.add_parser("prepare", help="write the train-id labels a dataset layout needs (never overwrites)")
    a.add_argument("layout", choices=["cityscapes", "gta5", "scannet", "voc"])
    a.add_argument("root")

    a = sub.add_parser("split", help="labeled/unlabeled lists for a 1/N split")
    a.add_argument("--root", required=True)
    a.add_argument("--dataset", required=True)
    a.add_argument("--split", type=int, required=True)
    a.add_argument("--seed", type=int, required=True)
    a.add_argument("--out-dir", required=True)
    a.add_argument("--list-file", help="import the labeled list from this file instead of sampling")
    a.add_argument("--layout", default="cityscapes")
    a.add_argument("--source-root", help="split 0 (domain adaptation): the labeled source dataset")
    a.add_argument("--source-layout", default="cityscapes")
    a.add_argument("--family", default="random", help="published list family (dars.data.published): dars, cps, random")
    a.add_argument("--min-labeled", type=int, default=2, help="fewer labeled images is an error (default 2)")

    a = sub.add_parser("prior", help="class prior from labeled ground truth")
    a.add_argument("--root", required=True)
    a.add_argument("--list", help="labeled list; without it, the val labels (the `td` oracle)")
    a.add_argument("--source", default="labeled", choices=["labeled", "td", "sd"],
                   help="td: val labels of --root; sd: train labels of the source dataset at --root")
    a.add_argument("--layout", default="cityscapes")
    a.add_argument("--out", required=True)

    a = sub.add_parser("prior-est", help="class prior estimated from teacher shards (EM, no labels)")
    a.add_argument("--shards", nargs="+", required=True)
    a.add_argument("--prior", required=True, help="prior.json of the labeled set the teacher saw")
    a.add_argument("--out", required=True)

    a = sub.add_parser("train", help="round 0 pretraining or a self-training round")
    a.add_argument("--settings", type=_json, required=True, help="resolved settings (JSON)")
    a.add_argument("--root", required=True)
    a.add_argument("--labeled", required=True)
    a.add_argument("--labeled-root", help="root of the labeled list if not --root (domain adaptation: the source)")
    a.add_argument("--nproc", type=int, default=1,
                   help="GPUs of this job: > 1 relaunches under torchrun (DDP + SyncBatchNorm, one process per GPU)")
    a.add_argument("--unlabeled")
    a.add_argument("--pseudo", help="pseudo_labels.txt of this round")
    a.add_argument("--init", help="teacher checkpoint (rounds >= 1)")
    a.add_argument("--work-dir", help="resumable state lives here (not a Snakemake output)")
    a.add_argument("--threads", type=int)
    a.add_argument("--out", required=True)

    a = sub.add_parser("infer", help="teacher inference on one shard of a list into a shard directory")
    a.add_argument("--ckpt", required=True)
    a.add_argument("--root", required=True)
    a.add_argument("--list", required=True)
    a.add_argument("--num-shards", type=int, required=True)
    a.add_argument("--shard", type=int, required=True)
    a.add_argument("--settings", type=_json, default={}, help=PREDICT_HELP)
    a.add_argument("--threads", type=int)
    a.add_argument("--out", required=True)

    a = sub.add_parser("pseudo-stats", help="confidence histogram of one shard")
    a.add_argument("--shard", required=True)
    a.add_argument("--out", required=True)

    a = sub.add_parser("pseudo-thresholds", help="global thresholds from summed shard histograms")
    a.add_argument("--hists", nargs="+", required=True)
    a.add_argument("--labeler", required=True)
    a.add_argument("--alpha", type=float, required=True)
    a.add_argument("--prior")
    a.add_argument("--out", required=True)

    a = sub.add_parser("pseudo-label", help="pseudo-label PNGs of one shard")
    a.add_argument("--shard", required=True)
    a.add_argument("--thresholds", required=True)
    a.add_argument("--seed", type=int, required=True)
    a.add_argument("--round", type=int, required=True)
    a.add_argument("--root")
    a.add_argument("--out", required=True)

    a = sub.add_parser("pseudo-merge", help="pseudo_stats.json and pseudo_labels.txt over all shards")
    a.add_argument("--thresholds", required=True)
    a.add_argument("--labels", nargs="+", required=True)
    a.add_argument("--prior")
    a.add_argument("--root")
    a.add_argument("--out-stats", required=True)
    a.add_argument("--out-list", required=True)

    a = sub.add_parser("evaluate", help="mIoU of a checkpoint on the val images")
    a.add_argument("--ckpt", required=True)
    a.add_argument("--root", required=True)
    a.add_argument("--settings", type=_json, default={}, help=PREDICT_HELP)
    a.add_argument("--run", type=_json, default={}, help="run identity recorded in the output (JSON)")
    a.add_argument("--split-json")
    a.add_argument("--layout", default="cityscapes", help="dataset layout of --root (val images)")
    a.add_argument("--threads", type=int)
    a.add_argument("--out", required=True)

    a = sub.add_parser("export", help="prediction PNGs of a split in the official format (dars.export)")
    a.add_argument("--ckpt", required=True)
    a.add_argument("--root", required=True)
    a.add_argument("--split", required=True, choices=["val", "test"])
    a.add_argument("--settings", type=_json, default={}, help=PREDICT_HELP)
    a.add_argument("--layout", default="cityscapes", help="dataset layout of --root")
    a.add_argument("--threads", type=int)
    a.add_argument("--out", required=True, help="directory to write (replaced only once complete)")

    a = sub.add_parser("aggregate", help="mean/std over seeds of per-run miou.json files")
    a.add_argument("files", nargs="+")
    a.add_argument("--out", required=True)

    a = sub.add_parser("table", help="per-method table (CSV + Markdown) of per-run miou.json files")
    a.add_argument("files", nargs="+")
    a.add_argument("--out-csv", required=True)
    a.add_argument("--out-md", required=True)

    a = sub.add_parser("inspect", help="summarise any stage output; optionally render an overlay PNG")
    a.add_argument("path")
    a.add_argument("--overlay", help="write an image | ground truth | labels panel here")
    a.add_argument("--root", help="dataset root (for overlays)")

    from . import evidence, figures, tables
    tables.add_cli(sub)
    figures.add_cli(sub)
    evidence.add_cli(sub)
    return p


def run(args):
    stage = args.stage
    if stage == "synthesize":
        from .data.synthetic import generate
        generate(args.out, args.num_train, args.num_val, args.height, args.width, args.seed, domain=args.domain)
        if args.domain == "game":  # GTA5 layout ships labelIds: convert them as a user would
            from .data.layouts import prepare
            prepare("gta5", args.out)
    elif stage == "prepare":
        from .data.layouts import prepare
        print(f"wrote {prepare(args.layout, args.root)} train-id label files")
    elif stage == "split":
        from .data.splits import make_split
        _, warnings = make_split(args.root, args.split, args.seed, args.out_dir, args.dataset, args.list_file,
                                 args.layout, args.source_root, args.source_layout, args.family,
                                 min_labeled=args.min_labeled)
        for warning in warnings:
            print(f"WARNING: {warning}", file=sys.stderr)
    elif stage == "prior":
        from .prior import prior_stage
        prior_stage(args.root, args.list, args.out, args.source, args.layout)
    elif stage == "prior-est":
        from .prior import prior_est_stage
        prior_est_stage(args.shards, args.prior, args.out)
    elif stage == "train":
        from .train import train
        train(args.settings, args.out, args.root, args.labeled, args.unlabeled, args.pseudo,
              args.init, args.work_dir, args.threads, labeled_root=args.labeled_root)
    elif stage == "infer":
        from .infer import infer_stage
        infer_stage(args.ckpt, args.root, args.list, args.out, args.num_shards, args.shard,
                    args.settings.get("resize"), args.settings.get("flip", True), args.threads,
                    fuse=args.settings.get("teacher_fusion", "probs"), **_predict_options(args.settings))
    elif stage == "pseudo-stats":
        from .pseudo import stats_stage
        stats_stage(args.shard, args.out)
    elif stage == "pseudo-thresholds":
        from .pseudo import thresholds_stage
        thresholds_stage(args.hists, args.out, args.labeler, args.alpha, args.prior)
    elif stage == "pseudo-label":
        from .pseudo import label_stage
        label_stage(args.shard, args.thresholds, args.out, args.seed, args.round, args.root)
    elif stage == "pseudo-merge":
        from .pseudo import merge_stage
        merge_stage(args.thresholds, args.labels, args.out_stats, args.out_list, args.prior, args.root)
    elif stage == "evaluate":
        from .evaluate import evaluate_stage
        r = evaluate_stage(args.ckpt, args.root, args.out, args.settings.get("resize"),
                           args.settings.get("flip", True), args.threads, args.run, args.split_json,
                           layout=args.layout, **_predict_options(args.settings))
        print(f"mIoU {r['miou']:.4f}  mAcc {r['macc']:.4f}  allAcc {r['allacc']:.4f}")
    elif stage == "export":
        from .export import export_stage
        r = export_stage(args.ckpt, args.root, args.split, args.out, args.layout, args.settings.get("resize"),
                         args.settings.get("flip", True), args.threads, **_predict_options(args.settings))
        print(f"wrote {r['num_images']} {r['format']} predictions of {args.split} to {args.out}")
    elif stage == "aggregate":
        from .report import aggregate_seeds
        aggregate_seeds(args.files, args.out)
    elif stage == "table":
        from .report import method_table
        method_table(args.files, args.out_csv, args.out_md)
    elif hasattr(args, "handler"):  # paper-table, paper-figure, evidence
        args.handler(args)
    elif stage == "inspect":
        from .inspect import inspect
        print(inspect(args.path, overlay=args.overlay, root=args.root))


def _relaunch_under_torchrun(args, argv):
    """`train --nproc N`: run the same command as N DDP processes (torch.distributed.run picks a
    free port with --standalone, so parallel jobs on one node do not collide)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    i = argv.index("--nproc") if "--nproc" in argv else None
    rest = argv[:i] + argv[i + 2:] if i is not None else [a for a in argv if not a.startswith("--nproc=")]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={args.nproc}",
           "-m", "dars", *rest]
    os.execv(sys.executable, cmd)  # exec: Slurm's signals reach torchrun, which forwards them


def main(argv=None):
    args = build_parser().parse_args(argv)
    if args.stage == "train" and args.nproc > 1 and "WORLD_SIZE" not in os.environ:
        _relaunch_under_torchrun(args, argv)
    try:
        run(args)
    except DarsError as e:
        print(f"dars {args.stage}: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
