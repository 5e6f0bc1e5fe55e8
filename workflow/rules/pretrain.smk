# Round 0: supervised training on the labeled images only (round0_<preset>: a variant from
# pretrain_presets, e.g. the augmentation ablation). Resumable state lives in work/.
rule pretrain:
    input:
        get_dataset_files,
        check_backbone_weights,
        labeled=f"{RUN}/split/labeled.txt",
    output:
        f"{STAGE0}/model.pt",
    params:
        root=get_labeled_root,
        settings=get_train_settings,
        work=f"{STAGE0}/work",
    log:
        f"{LOGS}/{{stage0}}/pretrain.log",
    benchmark:
        f"{BENCHMARKS}/{{stage0}}/pretrain.tsv"
    conda:
        ENV
    shell:
        "exec python -m dars train --nproc ${{DARS_TRAIN_GPUS:-1}} --settings {params.settings:q} --root {params.root:q} "
        "--labeled {input.labeled:q} --work-dir {params.work:q} --threads {threads} --out {output:q} > {log:q} 2>&1"
