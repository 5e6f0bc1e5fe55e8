# mIoU of a round's model on the val images (confusion matrix over the whole set).
rule evaluate:
    input:
        dataset_files,
        dataset_val_files,
        model=f"{RUN}/{{stage}}/model.pt",
        split=f"{RUN}/split/split.json",
    output:
        f"{RUN}/{{stage}}/miou.json",
    params:
        root=dataset_root,
        settings=predict_settings,
        run=run_identity,
        layout=layout,
    log:
        f"{LOGS}/{{stage}}/evaluate.log",
    benchmark:
        f"{BENCHMARKS}/{{stage}}/evaluate.tsv"
    shell:
        "python -m dars evaluate --ckpt {input.model:q} --root {params.root:q} --settings {params.settings:q} "
        "--layout {params.layout} --run {params.run:q} --split-json {input.split:q} --threads {threads} --out {output:q} > {log:q} 2>&1"
