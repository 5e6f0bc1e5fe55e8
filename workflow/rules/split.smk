# Labeled / unlabeled image lists of a 1/N split (seeded, nested across N), or an imported list;
# split 0 (domain adaptation): the source's train images are labeled, the target's unlabeled.
rule split:
    input:
        dataset_files,
        list_file=split_list_file,
    output:
        labeled=f"{RUN}/split/labeled.txt",
        unlabeled=f"{RUN}/split/unlabeled.txt",
        info=f"{RUN}/split/split.json",
    params:
        root=dataset_root,
        args=split_args,
    log:
        f"{LOGS}/split.log",
    benchmark:
        f"{BENCHMARKS}/split.tsv"
    shell:
        "python -m dars split --root {params.root} --dataset {wildcards.dataset} --split {wildcards.split} "
        "--seed {wildcards.seed} --out-dir $(dirname {output.labeled}) {params.args} > {log} 2>&1"
