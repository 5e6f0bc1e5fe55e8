"""The console summary of a run: failed jobs' log tails and every stage warning (dars/console.py)."""
import io

from dars import console


def test_failed_logs_and_warnings_are_read_from_snakemake_log(tmp_path):
    ok, bad = tmp_path / "logs/split.log", tmp_path / "logs/train.log"
    ok.parent.mkdir()
    ok.write_text("wrote 3 lists\nWARNING: the labeled images contain no pixels of ['train']\n")
    bad.write_text("".join(f"step {i}\n" for i in range(40)) + "dars train: error: x.png: label id 50\n")
    main = tmp_path / "snakemake.log"
    main.write_text(f"rule split:\n    log: {ok}\n    jobid: 1\nError in rule train:\n"
                    f"    log: {bad} (check log file(s) for error details)\n")
    assert console.failed_job_logs([str(main)]) == [str(bad)]
    out = io.StringIO()
    console.show_failed_logs(str(main), lines=3, out=out)
    text = out.getvalue()
    assert f"==> {bad} (last 3 lines) <==" in text and text.rstrip().endswith("label id 50")
    assert "step 36" not in text and "step 38" in text
    out = io.StringIO()
    console.show_warnings(main, out=out)
    assert out.getvalue() == f"{ok}: WARNING: the labeled images contain no pixels of ['train']\n"
