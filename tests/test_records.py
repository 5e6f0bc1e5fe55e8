"""Run records (dars/records.py): a RunRecord keeps a run's miou.json fields apart from where they
came from; cells are checked and every error names the files."""
import pytest

from dars import records
from dars.io import DarsError, write_json


def _run(tmp_path, name, seed, miou=0.5, **extra):
    f = tmp_path / f"{name}{seed}/miou.json"
    write_json(f, {"dataset": "d", "split": 4, "round": 1, "method": "dars", "labeler": "dars", "alpha": 0.5,
                   "scale_range": [0.5, 2.0], "protocol": "whole", "seed": seed, "miou": miou,
                   "iou": [miou, None], **extra})
    return str(f)


def _stats(tmp_path, seed, labeler="dars"):
    f = tmp_path / f"stats{seed}.json"
    write_json(f, {"labeler": labeler, "alpha": 0.5, "gt": {"kl_true_pseudo": 0.1}})
    return str(f)


def test_a_cell_is_run_records_by_seed_with_their_files(tmp_path):
    files = [_run(tmp_path, "r", 2, 0.6), _run(tmp_path, "r", 0, 0.4)]
    stats = [_stats(tmp_path, 2), _stats(tmp_path, 0)]
    runs = records.load_cell(files, "cell", pseudo_stats=stats)
    assert [r["seed"] for r in runs] == [0, 2]
    assert [r.file for r in runs] == files[::-1] and [r.pseudo_stats for r in runs] == stats[::-1]
    assert set(runs[0].fields) == {"dataset", "split", "round", "method", "labeler", "alpha", "scale_range",
                                   "protocol", "seed", "miou", "iou"}  # nothing injected
    assert "iou" in runs[0] and runs[0].get("departures") is None
    assert records.run_pseudo_stats(runs[0], "cell")["gt"]["kl_true_pseudo"] == 0.1
    v = records.miou(runs)
    assert v.seeds == (0, 2) and v.mean == pytest.approx(0.5)


def test_errors_name_the_files(tmp_path):
    a, b = _run(tmp_path, "a", 0), _run(tmp_path, "b", 1, protocol="slide")
    with pytest.raises(DarsError, match=f"files disagree on 'protocol' .*{b}: 'slide'"):
        records.load_cell([a, b], "cell")
    with pytest.raises(DarsError, match=r"seed\(s\) \[0\] appear more than once"):
        records.load_cell([a, _run(tmp_path, "c", 0)], "cell")
    short = _run(tmp_path, "d", 1, iou=[0.5, 0.5, 0.5])
    with pytest.raises(DarsError, match="number of classes"):
        records.class_names(records.load_runs([a, short]), "cell")
    run = records.load_cell([a], "cell")[0]
    with pytest.raises(DarsError, match=f"{a} trained on pseudo labels .* no pseudo_stats.json is listed"):
        records.run_pseudo_stats(run, "cell")
    stale = records.load_cell([a], "cell", pseudo_stats=[_stats(tmp_path, 0, labeler="cbst")])[0]
    with pytest.raises(DarsError, match=f"labeler 'cbst' .* but {a} says 'dars'"):
        records.run_pseudo_stats(stale, "cell")


def test_a_run_record_is_read_only(tmp_path):
    run = records.load_runs([_run(tmp_path, "r", 0)])[0]
    with pytest.raises(AttributeError):
        run.file = "elsewhere"
