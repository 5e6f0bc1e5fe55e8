# mIoU of a round's model on the val images (confusion matrix over the whole set).
rule evaluate:
    input:
        get_dataset_files,
        get_dataset_val_files,
        model=f"{STAGE}/model.pt",
        split=f"{RUN}/split/split.json",
    output:
        f"{STAGE}/miou.json",
    params:
        root=get_dataset_root,
        settings=get_predict_settings,
        run=get_run_identity,
        layout=get_layout,
    log:
        f"{LOGS}/{{stage}}/evaluate.log",
    benchmark:
        f"{BENCHMARKS}/{{stage}}/evaluate.tsv"
    conda:
        ENV
    shell:
        "python -m dars evaluate --ckpt {input.model:q} --root {params.root:q} --settings {params.settings:q} "
        "--layout {params.layout} --run {params.run:q} --split-json {input.split:q} --threads {threads} --out {output:q} > {log:q} 2>&1"
