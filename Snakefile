# The workflow: simulate -> train -> infer and classical -> evaluate. Run: snakemake --cores 8
from snakemake.utils import min_version, validate

min_version("8.0")


configfile: "configs/default.yaml"


validate(config, "configs/schema.yaml")


include: "rules/common.smk"
include: "rules/simulate.smk"
include: "rules/train.smk"
include: "rules/infer.smk"
include: "rules/evaluate.smk"


rule all:
    input:
        expand("data/sim/{name}.h5", name=config["simulate"]["datasets"]),
        "results/model/best.pt",
        "results/evaluation/summary.json",
        "results/activity.json",
    default_target: True
