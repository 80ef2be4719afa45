# Shared helpers: each stage reads its own slice of the validated config from
# results/config/<stage>.yaml, so editing a key reruns only the stages that use it.
from pipeline.config import write_config_sections

STAGE_SECTIONS = {
    "simulate": ["classes", "detector", "physics", "sources", "io"],
    "train": [
        "classes", "io", "calibrate", "normalise", "tiles", "augment", "model", "train",
        "tracking", "physics",
    ],
    "infer": ["classes", "io", "calibrate", "physics", "infer"],
    "classical": ["classes", "io", "calibrate", "physics", "classical"],
    "evaluate": ["classes", "io", "calibrate", "physics", "evaluate", "tracking"],
    "activity": [
        "classes", "io", "physics", "detector", "sources", "activity", "calibrate", "infer",
        "train",
    ],
}


def dataset_overrides(name):
    """`--set key=value` flags of a simulated dataset's config overrides (e.g. its detector)."""
    overrides = config["simulate"]["datasets"][name].get("overrides", {})
    return " ".join(f"--set {key}={value}" for key, value in overrides.items())


rule stage_config:
    output:
        "results/config/{stage}.yaml",
    params:
        sections=lambda wildcards: {
            key: config[key] for key in STAGE_SECTIONS[wildcards.stage]
        },
    log:
        "logs/stage_config/{stage}.log",
    benchmark:
        "benchmarks/stage_config/{stage}.tsv"
    wildcard_constraints:
        stage="|".join(STAGE_SECTIONS),
    run:
        write_config_sections(params.sections, output[0])
