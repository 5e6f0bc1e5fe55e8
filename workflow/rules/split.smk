# Labeled / unlabeled image lists of a 1/N split (seeded, nested across N), or an imported list.
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
        list_arg=split_list_arg,
    log:
        f"{LOGS}/split.log",
    benchmark:
        f"{BENCHMARKS}/split.tsv"
    shell:
        "python -m dars split --root {params.root} --dataset {wildcards.dataset} --split {wildcards.split} "
        "--seed {wildcards.seed} --out-dir $(dirname {output.labeled}) {params.list_arg} > {log} 2>&1"
