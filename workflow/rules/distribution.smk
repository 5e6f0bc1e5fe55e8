# Class prior pi from the labeled ground truth (DARS's target class distribution); where the
# dataset has val labels it records its D_KL to their distribution (reporting only).
rule distribution:
    input:
        get_dataset_files,
        labeled=f"{RUN}/split/labeled.txt",
        truth=get_truth_prior,
    output:
        f"{RUN}/prior.json",
    params:
        root=get_labeled_root,
        layout=get_layout,
        truth=get_truth_arg,
    log:
        f"{LOGS}/distribution.log",
    benchmark:
        f"{BENCHMARKS}/distribution.tsv"
    conda:
        ENV
    shell:
        "python -m dars prior --root {params.root:q} --layout {params.layout} --list {input.labeled:q} "
        "{params.truth:q} --out {output:q} > {log:q} 2>&1"


# `td`: the class distribution of the val ground truth, an oracle for analysis only.
rule distribution_td:
    input:
        get_dataset_files,
        get_dataset_val_files,
    output:
        f"{RUN}/prior_td.json",
    params:
        root=get_dataset_root,
        layout=get_layout,
    log:
        f"{LOGS}/distribution_td.log",
    benchmark:
        f"{BENCHMARKS}/distribution_td.tsv"
    conda:
        ENV
    shell:
        "python -m dars prior --root {params.root:q} --layout {params.layout} --source td --out {output:q} > {log:q} 2>&1"


# `est`: no target labels; the round's teacher posteriors on the unlabeled images averaged with
# the labeled prior (dars.prior.estimate_target_prior). The val labels' prior is read after.
rule distribution_est:
    input:
        shards=get_teacher_shards,
        prior=f"{RUN}/prior.json",
        truth=get_truth_prior,
    output:
        f"{ROUND}/prior_est.json",
    params:
        truth=get_truth_arg,
    log:
        f"{LOGS}/{{method}}/round{{round}}/distribution_est.log",
    benchmark:
        f"{BENCHMARKS}/{{method}}/round{{round}}/distribution_est.tsv"
    conda:
        ENV
    shell:
        "python -m dars prior-est --shards {input.shards:q} --prior {input.prior:q} {params.truth:q} "
        "--out {output:q} > {log:q} 2>&1"


# `sd`: the class distribution of a source dataset's train labels (UDA: no target labels).
rule distribution_sd:
    input:
        get_dataset_train_files,
    output:
        SOURCE_PRIOR,
    params:
        root=get_dataset_root,
        layout=get_layout,
    log:
        "logs/{dataset}/distribution_sd.log",
    benchmark:
        "benchmarks/{dataset}/distribution_sd.tsv"
    conda:
        ENV
    shell:
        "python -m dars prior --root {params.root:q} --layout {params.layout} --source sd --out {output:q} > {log:q} 2>&1"
