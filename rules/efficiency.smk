# The efficiency frames of each dataset the activity is measured on: simulated once for its
# detector (the noise its file declares, its dataset's config overrides), then mapped by the
# infer rule like the data (results/maps/NAME.efficiency.unet.h5), see pipeline/efficiency.py.
# Not made where the config gives the efficiency (activity.efficiency).


def efficiency_inputs(wildcards):
    """The efficiency frames of dataset `name` and the model's catalogue of them, unless the
    config gives the efficiency."""
    if config["activity"]["efficiency"] is not None:
        return {}
    return {
        "efficiency_frames": f"data/efficiency/{wildcards.name}.h5",
        "efficiency_catalogue": f"results/catalogues/{wildcards.name}.efficiency.unet.parquet",
    }


def efficiency_flags(wildcards, input):
    if "efficiency_frames" not in input.keys():
        return ""
    return (
        f"--efficiency-frames {input.efficiency_frames}"
        f" --efficiency-catalogue {input.efficiency_catalogue}"
    )


rule efficiency:
    input:
        config="results/config/efficiency.yaml",
        frames=frames_of,
    output:
        "data/efficiency/{name}.h5",
    params:
        detector=lambda wildcards: dataset_overrides(wildcards.name),
    conda:
        "../envs/pipeline.yaml"
    log:
        "logs/efficiency/{name}.log",
    benchmark:
        "benchmarks/efficiency/{name}.tsv"
    threads: cpus("simulate")
    resources:
        **job_resources("simulate"),
    shell:
        "{PIPELINE} efficiency --config {input.config} --frames {input.frames:q}"
        " --out {output} {params.detector} > {log} 2>&1"
