# Per-pixel maps and cluster catalogues, by the U-Net (the held-out frames and each of the user's
# files, one job per file) and by the classical reconstruction (same formats), see
# pipeline/inference/infer.py and pipeline/inference/classical.py.


# one rule per U-Net: the fine-tuned model, and the model its training started from (train.init:
# the shipped model), scored beside it
NOT_A_WORD = r"\W"  # a rule's name is a Python identifier
UNETS = {"unet": ("infer", "results/model/best.pt")}
if INIT:
    UNETS["init"] = ("infer_init", INIT)
if SHIPPED:  # `snakemake mine`: the user's files mapped as `pipeline infer` maps them
    UNETS["shipped"] = ("infer_shipped", SHIPPED)
for method, checkpoint in COMPARED.items():  # workflow.compare_models
    UNETS[method] = (f"infer_{re.sub(NOT_A_WORD, '_', method)}", checkpoint)

for method, (rule_name, checkpoint) in UNETS.items():

    rule:
        name:
            rule_name
        input:
            config="results/config/infer.yaml",
            model=checkpoint,
            frames=frames_of,
        output:
            map=f"results/maps/{{name}}.{method}.h5",
            catalogue=f"results/catalogues/{{name}}.{method}.parquet",
            csv=f"results/catalogues/{{name}}.{method}.csv",
        log:
            f"logs/{rule_name}/{{name}}.log",
        benchmark:
            f"benchmarks/{rule_name}/{{name}}.tsv"
        conda:
            "../envs/pipeline.yaml"
        threads: cpus("infer")
        resources:
            **job_resources("infer"),
        params:
            tracking_uri=config["tracking"]["uri"],
        shell:
            "python -m pipeline infer --config {input.config} --model {input.model}"
            " --input {input.frames:q} --output {output.map} --catalogue {output.catalogue}"
            " --set tracking.uri={params.tracking_uri} --set tracking.register_shipped=true"
            " > {log} 2>&1"


rule classical:
    input:
        config="results/config/classical.yaml",
        frames=frames_of,
    output:
        map="results/maps/{name}.classical.h5",
        catalogue="results/catalogues/{name}.classical.parquet",
        csv="results/catalogues/{name}.classical.csv",
    log:
        "logs/classical/{name}.log",
    benchmark:
        "benchmarks/classical/{name}.tsv"
    conda:
        "../envs/pipeline.yaml"
    threads: cpus("classical")
    resources:
        **job_resources("classical"),
    shell:
        "python -m pipeline classical --config {input.config} --input {input.frames:q}"
        " --output {output.map} --catalogue {output.catalogue} > {log} 2>&1"


# the ceiling: gradient-boosted trees trained on frames simulated like the file (its recorded
# simulator config), see pipeline/inference/ceiling.py; simulated files only
rule ceiling:
    input:
        config="results/config/ceiling.yaml",
        frames=frames_of,
    output:
        map="results/maps/{name}.ceiling.h5",
        catalogue="results/catalogues/{name}.ceiling.parquet",
        csv="results/catalogues/{name}.ceiling.csv",
    log:
        "logs/ceiling/{name}.log",
    benchmark:
        "benchmarks/ceiling/{name}.tsv"
    conda:
        "../envs/pipeline.yaml"
    threads: cpus("ceiling")
    resources:
        **job_resources("ceiling"),
    shell:
        "python -m pipeline ceiling --config {input.config} --input {input.frames:q}"
        " --output {output.map} --catalogue {output.catalogue} > {log} 2>&1"
