# The embedded synthetic datasets, generated from a seed: domain city in Cityscapes get_layout,
# domain game (the GTA5 stand-in) in GTA5 layout.
rule synthesize:
    output:
        directory(DATA),
    params:
        args=get_synthetic_args,
    log:
        "logs/{dataset}/synthesize.log",
    benchmark:
        "benchmarks/{dataset}/synthesize.tsv"
    conda:
        ENV
    shell:
        "python -m dars synthesize --out {output:q} {params.args:q} > {log:q} 2>&1"
