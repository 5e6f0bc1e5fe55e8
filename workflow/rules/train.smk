# Round k >= 1: the student continues from the teacher's weights and optimizer state on
# labeled + pseudo-labeled batches (or labeled-only for the `supervised` control).
rule train:
    input:
        get_dataset_files,
        check_backbone_weights,
        teacher=get_teacher_checkpoint,
        labeled=f"{RUN}/split/labeled.txt",
        unlabeled=f"{RUN}/split/unlabeled.txt",
        pseudo=get_pseudo_list,
    output:
        f"{ROUND}/model.pt",
    params:
        root=get_dataset_root,
        labeled_root=get_labeled_root,
        settings=get_train_settings,
        pseudo_arg=get_pseudo_arg,
        work=f"{ROUND}/work",
    log:
        f"{LOGS}/{{method}}/round{{round}}/train.log",
    benchmark:
        f"{BENCHMARKS}/{{method}}/round{{round}}/train.tsv"
    conda:
        ENV
    shell:
        "exec python -m dars train --nproc ${{DARS_TRAIN_GPUS:-1}} --settings {params.settings:q} --root {params.root:q} "
        "--labeled {input.labeled:q} --labeled-root {params.labeled_root:q} --unlabeled {input.unlabeled:q} {params.pseudo_arg:q} "
        "--init {input.teacher:q} --work-dir {params.work:q} --threads {threads} --out {output:q} > {log:q} 2>&1"
