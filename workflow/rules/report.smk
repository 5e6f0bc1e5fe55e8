# Results over seeds: the default method's mean/std, and a per-method table with round 0.
AGG = "results/{dataset}/split{split}/round{round}"


rule aggregate:
    input:
        seed_runs,
    output:
        f"{AGG}/miou.json",
    log:
        "logs/{dataset}/split{split}/round{round}/aggregate.log",
    benchmark:
        "benchmarks/{dataset}/split{split}/round{round}/aggregate.tsv"
    shell:
        "python -m dars aggregate {input:q} --out {output:q} > {log:q} 2>&1"


rule method_table:
    input:
        method_runs,
    output:
        csv=f"{AGG}/methods.csv",
        md=f"{AGG}/methods.md",
    log:
        "logs/{dataset}/split{split}/round{round}/method_table.log",
    benchmark:
        "benchmarks/{dataset}/split{split}/round{round}/method_table.tsv"
    shell:
        "python -m dars table {input:q} --out-csv {output.csv:q} --out-md {output.md:q} > {log:q} 2>&1"
