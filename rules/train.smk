# Training of the U-Net on the simulated (or the user's labelled) frames, see pipeline/learning/train.py;
# by default it fine-tunes the shipped model (train.init).
# With more than one GPU it launches through torchrun: one DDP process per GPU.


rule train:
    input:
        config="results/config/train.yaml",
        frames=config["workflow"]["train_frames"],
        val_frames=config["workflow"]["val_frames"],
        init=[INIT] if INIT else [],
    output:
        model="results/model/best.pt",
        card="results/model/model_card.json",
        curves=report(
            "results/model/training_curves.png",
            caption="../report/training_curves.rst",
            category="Training",
        ),
    log:
        "logs/train.log",
    benchmark:
        "benchmarks/train.tsv"
    conda:
        "../envs/pipeline.yaml"
    threads: cpus("train")
    resources:
        **job_resources("train"),
    params:
        out=lambda wildcards, output: Path(output.model).parent,
        tracking_uri=config["tracking"]["uri"],
        launcher=train_launcher(),
        init=f" --init {INIT}" if INIT else "",
    shell:
        "{params.launcher} train --config {input.config} --frames {input.frames:q}"
        " --val-frames {input.val_frames} --out {params.out}"
        " --tracking-uri {params.tracking_uri}{params.init} > {log} 2>&1"
