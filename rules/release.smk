# A shipped model of this run (`snakemake release`, with release.name set, as configs/release.yaml
# does): the trained model in float16 without the weights it never uses, its card holding how it
# was made and its scores on the generalisation suite, see pipeline/network/shipped.py. Copy
# results/release/NAME.pt and NAME.json to models/ to ship it.


rule release:
    input:
        config="results/config/export.yaml",
        model="results/model/best.pt",
        train_config="results/config/train.yaml",
        summaries=expand("results/suite/{name}/summary.json", name=SUITE),
    output:
        model=f"results/release/{config['release']['name']}.pt",
        card=f"results/release/{config['release']['name']}.json",
    log:
        "logs/release.log",
    benchmark:
        "benchmarks/release.tsv"
    conda:
        "../envs/pipeline.yaml"
    threads: cpus("evaluate")
    resources:
        **job_resources("evaluate"),
    params:
        run=lambda wildcards, input: Path(input.model).parent,
        suite="results/suite",
        out=lambda wildcards, output: Path(output.model).parent,
        name=config["release"]["name"],
        tracking_uri=config["tracking"]["uri"],
    shell:
        "python -m pipeline export --config {input.config} --run {params.run}"
        " --train-config {input.train_config} --suite {params.suite} --name {params.name}"
        " --dir {params.out} --set tracking.uri={params.tracking_uri} > {log} 2>&1"
