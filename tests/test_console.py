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


def test_failed_and_unfinished_jobs_show_their_last_progress_line(tmp_path):
    done, killed, bad = (tmp_path / f"{name}.log" for name in ("done", "killed", "bad"))
    done.write_text("2024-01-01 10:00:00 INFO infer: infer shard 0 progress 8/8 images (100%), 2 images/s\n")
    killed.write_text("2024-01-01 10:00:00 INFO evaluate: evaluate progress 120/500 images (24%), 0.8 images/s, "
                      "elapsed 2m30s, ETA 7m55s\n")
    bad.write_text("2024-01-01 10:00:00 INFO train: train progress 3/40 steps (8%), 1 steps/s, elapsed 3s, ETA 37s\n"
                   "dars train: error: boom\n")
    main = tmp_path / "snakemake.log"
    main.write_text(f"rule infer:\n    log: {done}\n    jobid: 1\nFinished jobid: 1 (Rule: infer)\n"
                    f"rule evaluate:\n    log: {killed}\n    jobid: 2\n"
                    f"rule train:\n    log: {bad}\n    jobid: 3\nError in rule train:\n"
                    f"    log: {bad} (check log file(s) for error details)\n")
    out = io.StringIO()
    console.show_progress(main, out=out)
    assert out.getvalue().splitlines() == [
        f"{killed} (not finished): " + killed.read_text().strip(),
        f"{bad} (failed): " + bad.read_text().splitlines()[0]]
