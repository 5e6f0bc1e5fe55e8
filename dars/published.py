"""The paper's published numbers, printed beside ours by `python -m dars paper-summary`.

Source: the supplementary material of R. He, J. Yang, X. Qi, "Re-distributing Biased Pseudo
Labels for Semi-supervised Semantic Segmentation: A Baseline Investigation", ICCV 2021, tables
S1-S7 (mIoU in %, as printed there). They are the authors' results on Cityscapes, ScanNet and
GTA5 -> Cityscapes with PSPNet-50, not this project's: the embedded tables reproduce each table's
*comparison* on generated data, so a row is compared by its direction, never by its value.

Rows are keyed by the labels of config.yaml's `paper:` section (its defaults); a renamed row
shows no published value. `best` is the row the paper finds best; `order` the rows from best to
worst mIoU; `kl_order` from smallest to largest D_KL(true || pseudo); `direction` says the
paper's finding in words."""

SOURCE = ("R. He, J. Yang, X. Qi, \"Re-distributing Biased Pseudo Labels for Semi-supervised Semantic "
          "Segmentation: A Baseline Investigation\", ICCV 2021, supplementary tables S1-S7")

TABLES = {
    "s1": dict(setting="Cityscapes 1/8, crop 361, DARS round 2 (round 1 at alpha 20%: 68.01)",
               values={"20%": "68.27 ± 0.12", "30%": "68.54 ± 0.31", "40%": "68.77 ± 0.10",
                       "50%": "68.93 ± 0.16", "60%": "68.75 ± 0.04", "round 1": "68.01"},
               best="50%", reference="round 1",
               direction="mIoU rises with alpha to a best at 50%, then falls slightly; every alpha beats round 1"),
    "s2": dict(setting="Cityscapes 1/8, alpha 50%, DARS round 2",
               values={"(0, 0)": "68.93 ± 0.16", "(0.2, 0)": "69.16 ± 0.03", "(0, 0.5)": "69.52 ± 0.03",
                       "(0.2, 0.5)": "69.64 ± 0.01"},
               best="(0.2, 0.5)",
               direction="moderate enlargement helps; (0.2, 0.5) is best"),
    "s3": dict(setting="Cityscapes, all 2975 labeled images, crop 361, supervised",
               values={"none": "70.24", "photometric": "70.84", "rotation": "70.26", "scaling": "74.36"},
               best="scaling",
               direction="random scaling dominates; photometric and rotation add little"),
    "s4": dict(setting="ScanNet 1/8, round 1, alpha 50%, single-scale test",
               values={"Baseline": "52.8", "ST": "55.0", "CBST": "55.4", "DARS": "56.2"},
               order=["DARS", "CBST", "ST", "Baseline"],
               direction="DARS > CBST > ST > Baseline (DARS best on 15 of 20 classes)"),
    "s5": dict(setting="ScanNet, iterative DARS (baseline -> result; oracle 61.69)",
               values={"1/8": "52.84 -> 56.58 (+3.74)", "1/4": "56.61 -> 58.35 (+1.74)"},
               direction="iterating gains at both splits, more at 1/8 than at 1/4; all below the oracle"),
    "s6": dict(setting="GTA5 -> Cityscapes, per class, against earlier work (CyCADA 44.2, CBST 47.0, "
                       "CRST 49.8, RPT 53.2)",
               values={"DARS (TD)": "55.0 (iterative)"},
               best="DARS (TD)",
               direction="DARS (TD) is the best row (its other rows are earlier work, not run here)"),
    "s7": dict(setting="GTA5 -> Cityscapes, round 1; D_KL between the pseudo-label and true target distributions",
               values={"Source only": "43.43 ± 0.01", "ST": "48.04 ± 0.69 (D_KL 0.0727)",
                       "CBST": "48.74 ± 0.16 (D_KL 0.0196)", "DARS (SD)": "47.01 ± 0.42 (D_KL 0.1558)",
                       "DARS (TD)": "51.01 ± 0.05 (D_KL 0.0006)"},
               order=["DARS (TD)", "CBST", "ST", "DARS (SD)", "Source only"],
               kl_order=["DARS (TD)", "CBST", "ST", "DARS (SD)"],
               direction="smaller D_KL, higher mIoU: DARS (TD) > CBST > ST > DARS (SD) > Source only"),
}
