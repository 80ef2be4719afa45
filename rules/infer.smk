# Per-pixel maps and cluster catalogues of the held-out frames, by the U-Net and by the classical
# reconstruction (same formats), see pipeline/infer.py and pipeline/classical.py.


rule infer:
    input:
        config="results/config/infer.yaml",
        model="results/model/best.pt",
        frames="data/sim/{name}.h5",
    output:
        map="results/maps/{name}.unet.h5",
        catalogue="results/catalogues/{name}.unet.parquet",
        csv="results/catalogues/{name}.unet.csv",
    log:
        "logs/infer/{name}.log",
    benchmark:
        "benchmarks/infer/{name}.tsv"
    shell:
        "python -m pipeline infer --config {input.config} --model {input.model}"
        " --input {input.frames} --output {output.map} --catalogue {output.catalogue}"
        " > {log} 2>&1"


rule classical:
    input:
        config="results/config/classical.yaml",
        frames="data/sim/{name}.h5",
    output:
        map="results/maps/{name}.classical.h5",
        catalogue="results/catalogues/{name}.classical.parquet",
        csv="results/catalogues/{name}.classical.csv",
    log:
        "logs/classical/{name}.log",
    benchmark:
        "benchmarks/classical/{name}.tsv"
    shell:
        "python -m pipeline classical --config {input.config} --input {input.frames}"
        " --output {output.map} --catalogue {output.catalogue} > {log} 2>&1"
