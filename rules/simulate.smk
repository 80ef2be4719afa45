# Simulated frames with per-pixel truth (training and held-out sets), see pipeline/simulate.py.


def sim_dataset(wildcards):
    return config["simulate"]["datasets"][wildcards.name]


rule simulate:
    input:
        config="results/config/simulate.yaml",
    output:
        "data/sim/{name}.h5",
    params:
        frames=lambda w: sim_dataset(w)["frames"],
        seed=lambda w: sim_dataset(w)["seed"],
        overrides=lambda w: dataset_overrides(w.name),
    log:
        "logs/simulate/{name}.log",
    benchmark:
        "benchmarks/simulate/{name}.tsv"
    shell:
        "python -m pipeline simulate --config {input.config} --out {output}"
        " --frames {params.frames} --seed {params.seed} {params.overrides} > {log} 2>&1"
