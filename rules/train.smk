# Training of the U-Net on the simulated (or the user's labelled) frames, see pipeline/train.py.


rule train:
    input:
        config="results/config/train.yaml",
        frames=config["train"]["frames"],
        val_frames=config["train"]["val_frames"],
    output:
        model="results/model/best.pt",
        card="results/model/model_card.json",
    params:
        out=lambda wildcards, output: Path(output.model).parent,
        tracking_uri=config["tracking"]["uri"],
    log:
        "logs/train.log",
    benchmark:
        "benchmarks/train.tsv"
    threads: workflow.cores
    shell:
        "python -m pipeline train --config {input.config} --frames {input.frames}"
        " --val-frames {input.val_frames} --out {params.out}"
        " --tracking-uri {params.tracking_uri} > {log} 2>&1"
