# Each stage reads its own slice of the validated config from results/config/<stage>.yaml, so
# editing a key reruns only the stages that use it.


rule stage_config:
    output:
        "results/config/{stage}.yaml",
    log:
        "logs/stage_config/{stage}.log",
    benchmark:
        "benchmarks/stage_config/{stage}.tsv"
    wildcard_constraints:
        stage="|".join(STAGE_SECTIONS),
    localrule: True
    params:
        sections=lambda wildcards: {
            key: config[key] for key in STAGE_SECTIONS[wildcards.stage]
        },
    run:
        write_config_sections(params.sections, output[0])
