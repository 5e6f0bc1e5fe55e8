# Round 0: supervised training on the labeled images only. Resumable state lives in work/.
rule pretrain:
    input:
        dataset_files,
        labeled=f"{RUN}/split/labeled.txt",
    output:
        f"{RUN}/round0/model.pt",
    params:
        root=dataset_root,
        settings=train_settings,
        work=f"{RUN}/round0/work",
    log:
        f"{LOGS}/round0/pretrain.log",
    benchmark:
        f"{BENCHMARKS}/round0/pretrain.tsv"
    shell:
        "exec python -m dars train --settings {params.settings:q} --root {params.root} "
        "--labeled {input.labeled} --work-dir {params.work} --threads {threads} --out {output} > {log} 2>&1"
