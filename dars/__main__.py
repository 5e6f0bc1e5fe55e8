"""`python -m dars <command> ...`: one subcommand per pipeline stage.

Each stage module ends with `COMMANDS = {name: (add_arguments, main)}`; this file only says
which module holds which command. Only the chosen command's module is imported, so
`python -m dars inspect` does not pay for torch."""
import argparse
import importlib
import os
import sys

from .io import DarsError
from .log import setup as setup_logging

STAGES = {  # command: (module, one-line help)
    "synthesize": ("dars.synthetic", "generate the embedded synthetic dataset (Cityscapes layout)"),
    "prepare": ("dars.data.layouts", "write the train-id labels a dataset layout needs (never overwrites)"),
    "split": ("dars.data.splits", "labeled/unlabeled lists for a 1/N split"),
    "prior": ("dars.prior", "class prior from labeled ground truth"),
    "prior-est": ("dars.prior", "class prior estimated from teacher shards (EM, no labels)"),
    "train": ("dars.train", "round 0 pretraining or a self-training round"),
    "infer": ("dars.infer", "teacher inference on one shard of a list into a shard directory"),
    "pseudo-stats": ("dars.pseudo", "confidence histogram of one shard"),
    "pseudo-thresholds": ("dars.pseudo", "global thresholds from summed shard histograms"),
    "pseudo-label": ("dars.pseudo", "pseudo-label PNGs of one shard"),
    "pseudo-merge": ("dars.pseudo", "pseudo_stats.json and pseudo_labels.txt over all shards"),
    "evaluate": ("dars.evaluate", "mIoU of a checkpoint on the val images"),
    "export": ("dars.export", "prediction PNGs of a split in the official format (dars.export)"),
    "aggregate": ("dars.report", "mean/std over seeds of per-run miou.json files"),
    "table": ("dars.report", "per-method table (CSV + Markdown) of per-run miou.json files"),
    "inspect": ("dars.inspect", "summarise any stage output; optionally render an overlay PNG"),
    "paper-table": ("dars.tables", "a supplementary table (S1-S7) from a JSON spec"),
    "paper-figure": ("dars.figures", "a supplementary figure (PNG) from a JSON spec"),
    "paper-summary": ("dars.verdicts", "S1-S7 beside the published tables, one direction verdict each"),
    "evidence": ("dars.evidence", "the evidence tables: gates, paired gains, pseudo-label diagnostics"),
    "finding": ("dars.finding", "the default target's finding: evidence tables plus the closing table"),
}


def build_parser(argv):
    """Every command listed (for --help); the arguments of the one named in `argv` only."""
    parser = argparse.ArgumentParser(prog="python -m dars", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="stage", required=True)
    chosen = next((a for a in argv if not a.startswith("-")), None)
    for name, (module, help_) in STAGES.items():
        p = sub.add_parser(name, help=help_)
        if name == chosen:
            add_arguments, run = importlib.import_module(module).COMMANDS[name]
            add_arguments(p)
            p.set_defaults(command_main=run)  # not `run`: evaluate has a --run flag
    return parser


def _relaunch_under_torchrun(args, argv):
    """`train --nproc N`: run the same command as N DDP processes (torch.distributed.run picks a
    free port with --standalone, so parallel jobs on one node do not collide)."""
    i = argv.index("--nproc") if "--nproc" in argv else None
    rest = argv[:i] + argv[i + 2:] if i is not None else [a for a in argv if not a.startswith("--nproc=")]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={args.nproc}",
           "-m", "dars", *rest]
    os.execv(sys.executable, cmd)  # exec: Slurm's signals reach torchrun, which forwards them


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser(argv).parse_args(argv)
    if args.stage == "train" and args.nproc > 1 and "WORLD_SIZE" not in os.environ:
        _relaunch_under_torchrun(args, argv)
    setup_logging(args.stage)  # one format for every stage: timestamp, level, stage (dars.log)
    try:
        args.command_main(args)
    except DarsError as e:
        print(f"dars {args.stage}: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
