"""Where the pipeline writes: the results tree in one place, for the specs of paper.py and
evidence.py and for the rules (workflow/rules/common.smk builds its path block on RUN and AGG).

    results/{dataset}/split{split}/seed{seed}/                  one seed's run (`run_dir`)
        split/split.json, prior.json, prior_td.json             per seed (`seed_file`)
        round0/ or {method}/round{round}/                       one stage (`stage`)
            miou.json, model.pt, pseudo_labels.txt, pseudo/, shards/{k}, ...   (`run_file`)
    results/{dataset}/split{split}/round{round}/report/{name}.{html,png}       (`report_file`)
"""

RUN = "results/{dataset}/split{split}/seed{seed}"
AGG = "results/{dataset}/split{split}/round{round}"  # over seeds


def run_dir(dataset, split, seed):
    """One seed's run tree of a dataset and split."""
    return RUN.format(dataset=dataset, split=split, seed=seed)


def seed_file(dataset, split, seed, name):
    """A file shared by the stages of one seed: `split/split.json`, `prior.json`, `prior_td.json`."""
    return f"{run_dir(dataset, split, seed)}/{name}"


def stage(method, round_):
    """The stage directory of a preset at a round: `round0` for the round-0 model (the row
    `round0` of a comparison), else `{method}/round{round_}`."""
    return "round0" if method == "round0" else f"{method}/round{round_}"


def run_file(dataset, split, seed, stage_, file="miou.json"):
    """One run's file (or directory) in the results tree; `stage_` as `stage` gives it."""
    return f"{run_dir(dataset, split, seed)}/{stage_}/{file}"


def report_file(dataset, split, round_, name, ext):
    """A table (.html) or figure (.png) of the report of one dataset/split/round."""
    return f"{AGG.format(dataset=dataset, split=split, round=round_)}/report/{name}.{ext}"
