# Simulated frames with per-pixel truth (training and held-out sets), see pipeline/simulation/simulate.py.


rule simulate:
    input:
        config="results/config/simulate.yaml",
    output:
        "data/sim/{name}.h5",
    log:
        "logs/simulate/{name}.log",
    benchmark:
        "benchmarks/simulate/{name}.tsv"
    wildcard_constraints:
        name="|".join(SIMULATED),
    conda:
        "../envs/pipeline.yaml"
    threads: cpus("simulate")
    resources:
        **job_resources("simulate"),
    params:
        frames=lambda wildcards: SIMULATED[wildcards.name]["frames"],
        seed=lambda wildcards: SIMULATED[wildcards.name]["seed"],
        overrides=lambda wildcards: dataset_overrides(wildcards.name),
    shell:
        "python -m pipeline simulate --config {input.config} --out {output}"
        " --frames {params.frames} --seed {params.seed} {params.overrides} > {log} 2>&1"
