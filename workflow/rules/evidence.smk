# The evidence target (config `evidence:`): gates (round 0 converged, labels the limit), paired
# gains against the compute-matched control, pseudo-label diagnostics; see dars/evidence.py.
rule evidence_tables:
    input:
        get_evidence_inputs,
    output:
        md=f"{EVIDENCE}/evidence.md",
        csv=f"{EVIDENCE}/evidence.csv",
        html=report(f"{EVIDENCE}/evidence.html", caption="../report/evidence.rst", category="Evidence"),
    params:
        spec=get_evidence_spec,
    log:
        "logs/evidence/evidence.log",
    benchmark:
        "benchmarks/evidence/evidence.tsv"
    conda:
        ENV
    shell:
        "python -m dars evidence --spec {params.spec:q} --out-md {output.md:q} --out-csv {output.csv:q} "
        "--out-html {output.html:q} > {log:q} 2>&1"


# The default target's finding (dars.finding): the same comparison on the configured seeds of any
# semi-supervised dataset/split, and finding.txt, the closing table the console prints.
rule finding_tables:
    input:
        get_finding_inputs,
    output:
        md=f"{FINDING}.md",
        csv=f"{FINDING}.csv",
        html=report(f"{FINDING}.html", caption="../report/evidence.rst", category="Finding"),
        txt=f"{FINDING}.txt",
    params:
        spec=get_finding_spec,
    log:
        "logs/{dataset}/split{split}/finding.log",
    benchmark:
        "benchmarks/{dataset}/split{split}/finding.tsv"
    conda:
        ENV
    shell:
        "python -m dars finding --spec {params.spec:q} --out-md {output.md:q} --out-csv {output.csv:q} "
        "--out-html {output.html:q} --out-txt {output.txt:q} > {log:q} 2>&1"
