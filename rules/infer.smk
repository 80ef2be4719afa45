# Per-pixel maps and cluster catalogues, by the U-Net (the held-out frames and each of the user's
# files, one job per file) and by the classical reconstruction (same formats), see
# pipeline/inference/infer.py and pipeline/inference/classical.py.


rule infer:
    input:
        config="results/config/infer.yaml",
        model="results/model/best.pt",
        frames=frames_of,
    output:
        map="results/maps/{name}.unet.h5",
        catalogue="results/catalogues/{name}.unet.parquet",
        csv="results/catalogues/{name}.unet.csv",
    params:
        tracking_uri=config["tracking"]["uri"],
    conda:
        "../envs/pipeline.yaml"
    log:
        "logs/infer/{name}.log",
    benchmark:
        "benchmarks/infer/{name}.tsv"
    threads: cpus("infer")
    resources:
        **job_resources("infer"),
    shell:
        "python -m pipeline infer --config {input.config} --model {input.model}"
        " --input {input.frames:q} --output {output.map} --catalogue {output.catalogue}"
        " --set tracking.uri={params.tracking_uri} > {log} 2>&1"


rule infer_init:
    # the model the training started from (train.init: the shipped model), scored beside it
    input:
        config="results/config/infer.yaml",
        model=INIT or [],
        frames=frames_of,
    output:
        map="results/maps/{name}.init.h5",
        catalogue="results/catalogues/{name}.init.parquet",
        csv="results/catalogues/{name}.init.csv",
    params:
        tracking_uri=config["tracking"]["uri"],
    conda:
        "../envs/pipeline.yaml"
    log:
        "logs/infer_init/{name}.log",
    benchmark:
        "benchmarks/infer_init/{name}.tsv"
    threads: cpus("infer")
    resources:
        **job_resources("infer"),
    shell:
        "python -m pipeline infer --config {input.config} --model {input.model}"
        " --input {input.frames:q} --output {output.map} --catalogue {output.catalogue}"
        " --set tracking.uri={params.tracking_uri} > {log} 2>&1"


rule classical:
    input:
        config="results/config/classical.yaml",
        frames=frames_of,
    output:
        map="results/maps/{name}.classical.h5",
        catalogue="results/catalogues/{name}.classical.parquet",
        csv="results/catalogues/{name}.classical.csv",
    conda:
        "../envs/pipeline.yaml"
    log:
        "logs/classical/{name}.log",
    benchmark:
        "benchmarks/classical/{name}.tsv"
    threads: cpus("classical")
    resources:
        **job_resources("classical"),
    shell:
        "python -m pipeline classical --config {input.config} --input {input.frames:q}"
        " --output {output.map} --catalogue {output.catalogue} > {log} 2>&1"
