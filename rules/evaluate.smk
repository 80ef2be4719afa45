# The U-Net and the classical reconstruction scored side by side on the held-out frames.


rule evaluate:
    input:
        config="results/config/evaluate.yaml",
        truth="data/sim/heldout.h5",
        unet="results/maps/heldout.unet.h5",
        classical="results/maps/heldout.classical.h5",
    output:
        summary="results/evaluation/summary.json",
        table="results/evaluation/comparison.md",
    params:
        out=lambda wildcards, output: Path(output.summary).parent,
        tracking_uri=config["tracking"]["uri"],
    log:
        "logs/evaluate.log",
    benchmark:
        "benchmarks/evaluate.tsv"
    shell:
        "python -m pipeline evaluate --config {input.config} --truth {input.truth}"
        " --pred {input.unet} {input.classical} --names unet classical --out {params.out}"
        " --set tracking.uri={params.tracking_uri} > {log} 2>&1"


rule activity:
    input:
        config="results/config/activity.yaml",
        catalogue="results/catalogues/heldout.unet.parquet",
        frames="data/sim/heldout.h5",
        model="results/model/best.pt",
    output:
        "results/activity.json",
    params:
        # the efficiency is measured through the same model, on frames of the same detector
        detector=lambda wildcards: dataset_overrides("heldout"),
    log:
        "logs/activity.log",
    benchmark:
        "benchmarks/activity.tsv"
    shell:
        "python -m pipeline activity --config {input.config} --catalogue {input.catalogue}"
        " --frames {input.frames} --model {input.model} --out {output} {params.detector}"
        " > {log} 2>&1"
