# The efficiency frames of each dataset the activity is measured on: simulated once for its
# detector (the noise its file declares, its dataset's config overrides), then mapped by the
# infer rule like the data (results/maps/NAME.efficiency.unet.h5), see pipeline/measurement/efficiency.py.
# Not made where the config gives the efficiency (activity.efficiency).
# The activity's systematics re-simulate them with each term of activity.systematics that changes
# the frames at each end of its range (data/efficiency/NAME.VARIANT.h5), mapped by the same method
# as the data (results/maps/NAME.efficiency-VARIANT.METHOD.h5), made here once, not inside the
# activity job.


rule efficiency:
    input:
        config="results/config/efficiency.yaml",
        frames=frames_of,
    output:
        "data/efficiency/{name}.h5",
    log:
        "logs/efficiency/{name}.log",
    benchmark:
        "benchmarks/efficiency/{name}.tsv"
    wildcard_constraints:
        name="[^.]+",
    conda:
        "../envs/pipeline.yaml"
    threads: cpus("simulate")
    resources:
        **job_resources("simulate"),
    params:
        detector=lambda wildcards: dataset_overrides(wildcards.name),
    shell:
        "python -m pipeline efficiency --config {input.config} --frames {input.frames:q}"
        " --out {output} {params.detector} > {log} 2>&1"


rule efficiency_variant:
    input:
        config="results/config/efficiency.yaml",
        frames=frames_of,
    output:
        "data/efficiency/{name}.{variant}.h5",
    log:
        "logs/efficiency_variant/{name}.{variant}.log",
    benchmark:
        "benchmarks/efficiency_variant/{name}.{variant}.tsv"
    wildcard_constraints:
        name="[^.]+",
        variant="[a-z_]+-(low|high)",
    conda:
        "../envs/pipeline.yaml"
    threads: cpus("simulate")
    resources:
        **job_resources("simulate"),
    params:
        detector=lambda wildcards: dataset_overrides(wildcards.name),
    shell:
        "python -m pipeline efficiency --config {input.config} --frames {input.frames:q}"
        " --variant {wildcards.variant} --out {output} {params.detector} > {log} 2>&1"
