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


# The report of a dataset/split/round (`snakemake --report report.html` for any target that
# builds them, the default one included): per-class IoU with paired gains and the pseudo-label
# statistics as tables, the class distributions and per-class IoU as figures (dars.paper.run_specs).
rule run_table:
    input:
        run_table_inputs,
    output:
        csv=f"{AGG}/report/{{item}}.csv",
        md=f"{AGG}/report/{{item}}.md",
        html=report(f"{AGG}/report/{{item}}.html", caption="../report/run.rst", category="{dataset} 1/{split}",
                    subcategory="round {round}", labels={"item": "{item}"}),
    wildcard_constraints:
        item="per_class|pseudo_labels",
    params:
        spec=run_report_spec_json,
    log:
        "logs/{dataset}/split{split}/round{round}/report_{item}.log",
    benchmark:
        "benchmarks/{dataset}/split{split}/round{round}/report_{item}.tsv"
    shell:
        "python -m dars paper-table --spec {params.spec:q} --out-csv {output.csv:q} --out-md {output.md:q} "
        "--out-html {output.html:q} > {log:q} 2>&1"


rule run_figure:
    input:
        run_figure_inputs,
    output:
        report(f"{AGG}/report/{{item}}.png", caption="../report/run.rst", category="{dataset} 1/{split}",
               subcategory="round {round}", labels={"item": "{item}"}),
    wildcard_constraints:
        item="class_distribution|iou_bars",
    params:
        spec=run_report_spec_json,
    log:
        "logs/{dataset}/split{split}/round{round}/report_{item}.log",
    benchmark:
        "benchmarks/{dataset}/split{split}/round{round}/report_{item}.tsv"
    shell:
        "python -m dars paper-figure --spec {params.spec:q} --out {output:q} > {log:q} 2>&1"
