# Predictions of a round's model on val (to check with the official evaluator) or test (to
# submit), in the dataset's official format (dars/export.py; Cityscapes: labelIds PNGs).
# Asked for by path only, e.g. results/cityscapes/split8/seed0/dars/round2/export/test
rule export:
    input:
        get_dataset_files,
        model=f"{STAGE}/model.pt",
    output:
        directory(f"{STAGE}/export/{{export_split}}"),
    wildcard_constraints:
        export_split="val|test",
    params:
        root=get_dataset_root,
        settings=get_predict_settings,
        layout=get_layout,
    log:
        f"{LOGS}/{{stage}}/export_{{export_split}}.log",
    benchmark:
        f"{BENCHMARKS}/{{stage}}/export_{{export_split}}.tsv"
    conda:
        ENV
    shell:
        "python -m dars export --ckpt {input.model:q} --root {params.root:q} --split {wildcards.export_split:q} "
        "--settings {params.settings:q} --layout {params.layout:q} --threads {threads} --out {output:q} > {log:q} 2>&1"
