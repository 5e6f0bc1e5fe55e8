# The supplementary's tables and figures (config `paper:`), mean ± std over seeds; marked for
# `snakemake --report`. Which runs each one reads is resolved by dars.paper from config.
rule paper_table:
    input:
        get_paper_table_inputs,
    output:
        csv=f"{PAPER}/{{table}}.csv",
        md=f"{PAPER}/{{table}}.md",
        html=report(f"{PAPER}/{{table}}.html", caption="../report/tables.rst", category="Tables",
                    labels={"table": "{table}"}),
    params:
        spec=get_paper_table_spec,
    log:
        "logs/paper/{table}.log",
    benchmark:
        "benchmarks/paper/{table}.tsv"
    conda:
        ENV
    shell:
        "python -m dars paper-table --spec {params.spec:q} --out-csv {output.csv:q} --out-md {output.md:q} "
        "--out-html {output.html:q} > {log:q} 2>&1"


rule paper_figure:
    input:
        get_paper_figure_inputs,
    output:
        report(f"{PAPER}/{{figure}}.png", caption="../report/figures.rst", category="Figures",
               labels={"figure": "{figure}"}),
    params:
        spec=get_paper_figure_spec,
    log:
        "logs/paper/{figure}.log",
    benchmark:
        "benchmarks/paper/{figure}.tsv"
    conda:
        ENV
    shell:
        "python -m dars paper-figure --spec {params.spec:q} --out {output:q} > {log:q} 2>&1"


rule paper_summary:
    input:
        expand(f"{PAPER}/{{table}}.csv", table=dars.paper.TABLES),
    output:
        md=f"{PAPER}/summary.md",
        csv=f"{PAPER}/summary.csv",
        html=report(f"{PAPER}/summary.html", caption="../report/summary.rst", category="Tables",
                    labels={"table": "S1-S7 vs published"}),
    params:
        spec=get_paper_summary_spec,
    log:
        "logs/paper/summary.log",
    benchmark:
        "benchmarks/paper/summary.tsv"
    conda:
        ENV
    shell:
        "python -m dars paper-summary --spec {params.spec:q} --out-md {output.md:q} --out-csv {output.csv:q} "
        "--out-html {output.html:q} > {log:q} 2>&1"
