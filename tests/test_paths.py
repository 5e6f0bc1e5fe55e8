"""Paths with spaces and non-ASCII characters survive every rule's shell command (all quoted)."""
import json

from conftest import write_cityscapes_tree
from test_workflow import snakemake, tiny_config


def test_pipeline_runs_with_spaces_and_non_ascii_in_every_path(tmp_path):
    workdir = tmp_path / "mes données ü"
    # The root is absolute (as a real dataset's is); the dataset's name puts a space and
    # non-ASCII characters into every output, log and input path the rules pass on.
    root = write_cityscapes_tree(workdir / "jeu de données é" / "cityscapes", num_train=8, num_val=2,
                                 height=64, width=128)
    name = "cités ü"
    config = tiny_config(dataset=name, seeds=[0], rounds=1, split=4, default_method="dars",
                         compare_methods=["dars"])
    config["datasets"][name] = {"root": str(root), "layout": "cityscapes"}
    config["train"].update(batch_size=2, pretrain_epochs=3, round_epochs=1)
    target = f"results/{name}/split4/round1/miou.json"  # aggregate over seeds: every stage up to it
    proc = snakemake(workdir, "--cores", "2", target, config=config, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-6000:]
    result = json.loads((workdir / target).read_text())
    assert result["method"] == "dars" and result["round"] == 1 and result["seeds"] == [0]
    assert 0 <= result["miou_mean"] <= 1
