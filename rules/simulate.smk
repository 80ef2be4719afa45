# Simulated frames with per-pixel truth (training and held-out sets), see pipeline/simulation/simulate.py.


rule simulate:
    input:
        config="results/config/simulate.yaml",
    output:
        "data/sim/{name}.h5",
    params:
        frames=lambda wildcards: SIMULATED[wildcards.name]["frames"],
        seed=lambda wildcards: SIMULATED[wildcards.name]["seed"],
        overrides=lambda wildcards: dataset_overrides(wildcards.name),
    conda:
        "../envs/pipeline.yaml"
    log:
        "logs/simulate/{name}.log",
    benchmark:
        "benchmarks/simulate/{name}.tsv"
    wildcard_constraints:
        name="|".join(SIMULATED),
    threads: cpus("simulate")
    resources:
        **job_resources("simulate"),
    shell:
        "python -m pipeline simulate --config {input.config} --out {output}"
        " --frames {params.frames} --seed {params.seed} {params.overrides} > {log} 2>&1"
