# The embedded synthetic dataset, generated from a seed in Cityscapes layout.
rule synthesize:
    output:
        directory("results/{dataset}/data"),
    params:
        args=synthetic_args,
    log:
        "logs/{dataset}/synthesize.log",
    benchmark:
        "benchmarks/{dataset}/synthesize.tsv"
    shell:
        "python -m dars synthesize --out {output} {params.args} > {log} 2>&1"
