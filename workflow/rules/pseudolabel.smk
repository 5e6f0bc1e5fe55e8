# Pseudo-labeling as scatter -> gather -> scatter over the teacher's shards:
# per-shard confidence histograms, global thresholds, per-shard labels, merged statistics.
rule pseudo_stats:
    input:
        shard=f"{STAGE}/shards/{{shard}}",
    output:
        f"{STAGE}/hist/{{shard}}.npy",
    log:
        f"{LOGS}/{{stage}}/pseudo_stats{{shard}}.log",
    benchmark:
        f"{BENCHMARKS}/{{stage}}/pseudo_stats{{shard}}.tsv"
    conda:
        ENV
    shell:
        "python -m dars pseudo-stats --shard {input.shard:q} --out {output:q} > {log:q} 2>&1"


rule pseudo_thresholds:
    input:
        hists=get_teacher_hists,
        prior=get_method_prior,
    output:
        f"{ROUND}/thresholds.json",
    params:
        labeler=get_labeler,
        alpha=get_alpha,
    log:
        f"{LOGS}/{{method}}/round{{round}}/pseudo_thresholds.log",
    benchmark:
        f"{BENCHMARKS}/{{method}}/round{{round}}/pseudo_thresholds.tsv"
    conda:
        ENV
    shell:
        "python -m dars pseudo-thresholds --hists {input.hists:q} --labeler {params.labeler} "
        "--alpha {params.alpha} --prior {input.prior:q} --out {output:q} > {log:q} 2>&1"


rule pseudo_label:
    input:
        get_dataset_files,
        shard=get_teacher_shard,
        thresholds=f"{ROUND}/thresholds.json",
    output:
        directory(f"{ROUND}/pseudo/{{shard}}"),
    params:
        root=get_dataset_root,
    log:
        f"{LOGS}/{{method}}/round{{round}}/pseudo_label{{shard}}.log",
    benchmark:
        f"{BENCHMARKS}/{{method}}/round{{round}}/pseudo_label{{shard}}.tsv"
    conda:
        ENV
    shell:
        "python -m dars pseudo-label --shard {input.shard:q} --thresholds {input.thresholds:q} "
        "--seed {wildcards.seed} --round {wildcards.round} --root {params.root:q} --out {output:q} > {log:q} 2>&1"


rule pseudo_merge:
    input:
        get_dataset_files,
        thresholds=f"{ROUND}/thresholds.json",
        labels=expand(f"{ROUND}/pseudo/{{shard}}", shard=SHARDS, allow_missing=True),
        prior=f"{RUN}/prior.json",
    output:
        stats=f"{ROUND}/pseudo_stats.json",
        labels=f"{ROUND}/pseudo_labels.txt",
    params:
        root=get_dataset_root,
    log:
        f"{LOGS}/{{method}}/round{{round}}/pseudo_merge.log",
    benchmark:
        f"{BENCHMARKS}/{{method}}/round{{round}}/pseudo_merge.tsv"
    conda:
        ENV
    shell:
        "python -m dars pseudo-merge --thresholds {input.thresholds:q} --labels {input.labels:q} "
        "--prior {input.prior:q} --root {params.root:q} --out-stats {output.stats:q} "
        "--out-list {output.labels:q} > {log:q} 2>&1"
