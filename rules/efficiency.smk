# The efficiency frames of each dataset the activity is measured on: simulated once for its
# detector (the noise its file declares, its dataset's config overrides), then mapped by the
# infer rule like the data (results/maps/NAME.efficiency.unet.h5), see pipeline/measurement/efficiency.py.
# Not made where the config gives the efficiency (activity.efficiency).
# The activity's systematics rest on the truth efficiency of the same detector, nominal and with
# each simulated term of activity.systematics at both ends of its range: one dataset each
# (data/efficiency/NAME.VARIANT.parquet), made here once, not inside the activity job.


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
        "data/efficiency/{name}.{variant}.parquet",
    log:
        "logs/efficiency_variant/{name}.{variant}.log",
    benchmark:
        "benchmarks/efficiency_variant/{name}.{variant}.tsv"
    wildcard_constraints:
        variant="nominal|[a-z_]+-(low|high)",
    conda:
        "../envs/pipeline.yaml"
    threads: cpus("simulate")
    resources:
        **job_resources("simulate"),
    shell:
        "python -m pipeline variant --config {input.config} --frames {input.frames:q}"
        " --variant {wildcards.variant} --out {output} > {log} 2>&1"
