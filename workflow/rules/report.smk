# Results over seeds: the default method's mean/std, and a per-method table with round 0.
rule aggregate:
    input:
        get_seed_runs,
    output:
        f"{AGG}/miou.json",
    log:
        f"{AGG_LOGS}/aggregate.log",
    benchmark:
        f"{AGG_BENCHMARKS}/aggregate.tsv"
    conda:
        ENV
    shell:
        "python -m dars aggregate {input:q} --out {output:q} > {log:q} 2>&1"


# methods.md is the report's per-class table (the same spec); methods.csv its per-method lines.
rule method_table:
    input:
        get_method_table_inputs,
    output:
        csv=f"{AGG}/methods.csv",
        md=f"{AGG}/methods.md",
    params:
        spec=get_method_table_spec_json,
    log:
        f"{AGG_LOGS}/method_table.log",
    benchmark:
        f"{AGG_BENCHMARKS}/method_table.tsv"
    conda:
        ENV
    shell:
        "python -m dars table --spec {params.spec:q} --out-csv {output.csv:q} --out-md {output.md:q} > {log:q} 2>&1"


# The report of a dataset/split/round (`snakemake --report report.html` for any target that
# builds them, the default one included): per-class IoU with paired gains and the pseudo-label
# statistics as tables, the class distributions and per-class IoU as figures (dars.paper.run_specs).
rule run_table:
    input:
        get_run_table_inputs,
    output:
        csv=f"{AGG}/report/{{item}}.csv",
        md=f"{AGG}/report/{{item}}.md",
        html=report(f"{AGG}/report/{{item}}.html", caption="../report/run.rst", category="{dataset} 1/{split}",
                    subcategory="round {round}", labels={"item": "{item}"}),
    wildcard_constraints:
        item="per_class|pseudo_labels",
    params:
        spec=get_run_report_spec_json,
    log:
        f"{AGG_LOGS}/report_{{item}}.log",
    benchmark:
        f"{AGG_BENCHMARKS}/report_{{item}}.tsv"
    conda:
        ENV
    shell:
        "python -m dars paper-table --spec {params.spec:q} --out-csv {output.csv:q} --out-md {output.md:q} "
        "--out-html {output.html:q} > {log:q} 2>&1"


rule run_figure:
    input:
        get_run_figure_inputs,
    output:
        report(f"{AGG}/report/{{item}}.png", caption="../report/run.rst", category="{dataset} 1/{split}",
               subcategory="round {round}", labels={"item": "{item}"}),
    wildcard_constraints:
        item="class_distribution|iou_bars",
    params:
        spec=get_run_report_spec_json,
    log:
        f"{AGG_LOGS}/report_{{item}}.log",
    benchmark:
        f"{AGG_BENCHMARKS}/report_{{item}}.tsv"
    conda:
        ENV
    shell:
        "python -m dars paper-figure --spec {params.spec:q} --out {output:q} > {log:q} 2>&1"
