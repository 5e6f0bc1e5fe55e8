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
