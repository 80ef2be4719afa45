# The workflow: simulate -> train -> infer and classical -> evaluate; efficiency frames -> activity.
#   snakemake --cores 8                         (this machine, embedded default config)
#   snakemake --profile profiles/slurm          (a SLURM cluster; see README)
#   snakemake --report report.html              (HTML report of the results)
from snakemake.utils import min_version, validate

min_version("8.0")


configfile: "configs/default.yaml"


validate(config, "configs/schema.yaml")


report: "report/workflow.rst"


include: "rules/common.smk"
include: "rules/config.smk"
include: "rules/simulate.smk"
include: "rules/train.smk"
include: "rules/infer.smk"
include: "rules/efficiency.smk"
include: "rules/evaluate.smk"
include: "rules/plot.smk"


if config["release"]["name"]:

    include: "rules/release.smk"


rule all:
    default_target: True
    input:
        "results/model/best.pt",
        "results/evaluation/summary.json",
        ["results/evaluation/suite.md"] if SUITE else [],
        f"results/activity/{HELDOUT}.json",
        f"results/activity/{HELDOUT}.classical.json",
        expand("results/maps/{name}.unet.h5", name=INPUTS),
        expand("results/activity/{name}.json", name=INPUTS),
        expand("results/plots/{name}.unet.map.png", name=[HELDOUT, *INPUTS]),
        expand("results/plots/{name}.fit.png", name=[HELDOUT, *INPUTS]),
        "results/report/headline.rst",
        f"results/plots/{HELDOUT}.forecast.png",


# only the user's files (workflow.inputs), with `pipeline infer`'s model (infer.model, paired
# as infer.particles_from says): no training, no suite; see README "Your own frames"
rule mine:
    input:
        mine_outputs,


onsuccess:
    print(
        "Results: results/ (model/best.pt, maps/, catalogues/, evaluation/comparison.md and "
        "suite.md, plots/, "
        f"activity/). MLflow runs: mlflow ui --backend-store-uri {config['tracking']['uri']}. "
        "Report: snakemake --report report.html"
    )
