# Labeled / unlabeled image lists of a 1/N split (seeded, nested across N), or an imported list;
# split 0 (domain adaptation): the source's train images are labeled, the target's unlabeled.
rule split:
    input:
        get_dataset_train_files,
        list_file=get_split_list_file,
    output:
        labeled=f"{RUN}/split/labeled.txt",
        unlabeled=f"{RUN}/split/unlabeled.txt",
        info=f"{RUN}/split/split.json",
    params:
        root=get_dataset_root,
        args=get_split_args,
        out_dir=f"{RUN}/split",
    log:
        f"{LOGS}/split.log",
    benchmark:
        f"{BENCHMARKS}/split.tsv"
    conda:
        ENV
    shell:
        "python -m dars split --root {params.root:q} --dataset {wildcards.dataset:q} --split {wildcards.split} "
        "--seed {wildcards.seed} --out-dir {params.out_dir:q} {params.args:q} > {log:q} 2>&1"
