# Round 0: supervised training on the labeled images only (round0_<preset>: a variant from
# pretrain_presets, e.g. the augmentation ablation). Resumable state lives in work/.
rule pretrain:
    input:
        dataset_files,
        labeled=f"{RUN}/split/labeled.txt",
    output:
        f"{RUN}/{{stage0}}/model.pt",
    params:
        root=labeled_root,
        settings=train_settings,
        work=f"{RUN}/{{stage0}}/work",
    log:
        f"{LOGS}/{{stage0}}/pretrain.log",
    benchmark:
        f"{BENCHMARKS}/{{stage0}}/pretrain.tsv"
    shell:
        "exec python -m dars train --nproc ${{DARS_TRAIN_GPUS:-1}} --settings {params.settings:q} --root {params.root:q} "
        "--labeled {input.labeled:q} --work-dir {params.work:q} --threads {threads} --out {output:q} > {log:q} 2>&1"
