# Class prior pi from the labeled ground truth (DARS's target class distribution).
rule distribution:
    input:
        dataset_files,
        labeled=f"{RUN}/split/labeled.txt",
    output:
        f"{RUN}/prior.json",
    params:
        root=dataset_root,
    log:
        f"{LOGS}/distribution.log",
    benchmark:
        f"{BENCHMARKS}/distribution.tsv"
    shell:
        "python -m dars prior --root {params.root} --list {input.labeled} --out {output} > {log} 2>&1"
