# Teacher inference on the unlabeled images, one job per shard: argmax + float16 confidence.
rule infer:
    input:
        get_dataset_files,
        model=f"{STAGE}/model.pt",
        unlabeled=f"{RUN}/split/unlabeled.txt",
    output:
        shard_output(f"{STAGE}/shards/{{shard}}"),
    params:
        root=get_dataset_root,
        settings=get_predict_settings,
        num_shards=config["num_shards"],
    log:
        f"{LOGS}/{{stage}}/infer{{shard}}.log",
    benchmark:
        f"{BENCHMARKS}/{{stage}}/infer{{shard}}.tsv"
    conda:
        ENV
    shell:
        "python -m dars infer --ckpt {input.model:q} --root {params.root:q} --list {input.unlabeled:q} "
        "--num-shards {params.num_shards} --shard {wildcards.shard} --settings {params.settings:q} "
        "--threads {threads} --out {output:q} > {log:q} 2>&1"
