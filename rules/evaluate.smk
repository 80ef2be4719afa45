# The U-Net and the classical reconstruction scored side by side on the held-out frames and on
# each detector of the generalisation suite, and the tritium activity of each file (held-out and
# the user's), see pipeline/evaluation/evaluate.py, pipeline/evaluation/suite.py and pipeline/measurement/activity.py.


rule evaluate:
    input:
        config="results/config/evaluate.yaml",
        truth=f"data/sim/{HELDOUT}.h5",
        maps=scored_maps(HELDOUT),
    output:
        summary="results/evaluation/summary.json",
        table="results/evaluation/comparison.md",
        html=report(
            "results/evaluation/comparison.html",
            caption="../report/comparison.rst",
            category="Evaluation",
        ),
        confusion=report(
            "results/evaluation/confusion.png",
            caption="../report/confusion.rst",
            category="Evaluation",
        ),
        spectra=report(
            "results/evaluation/spectra.png",
            caption="../report/spectra.rst",
            category="Evaluation",
        ),
        example=report(
            "results/evaluation/example_frame.png",
            caption="../report/example_frame.rst",
            category="Evaluation",
        ),
    log:
        "logs/evaluate.log",
    benchmark:
        "benchmarks/evaluate.tsv"
    conda:
        "../envs/pipeline.yaml"
    threads: cpus("evaluate")
    resources:
        **job_resources("evaluate"),
    params:
        out=lambda wildcards, output: Path(output.summary).parent,
        tracking_uri=config["tracking"]["uri"],
        methods=" ".join(METHODS),
    shell:
        "python -m pipeline evaluate --config {input.config} --truth {input.truth}"
        " --pred {input.maps} --names {params.methods} --out {params.out}"
        " --set tracking.uri={params.tracking_uri} > {log} 2>&1"


rule activity:
    input:
        # the efficiency: frames of the same detector, mapped by the same model (rules/efficiency.smk)
        unpack(efficiency_inputs),
        config="results/config/activity.yaml",
        catalogue="results/catalogues/{name}.unet.parquet",
        frames=frames_of,
    output:
        "results/activity/{name}.json",
    log:
        "logs/activity/{name}.log",
    benchmark:
        "benchmarks/activity/{name}.tsv"
    wildcard_constraints:
        name="[^.]+",
    conda:
        "../envs/pipeline.yaml"
    threads: cpus("activity")
    resources:
        **job_resources("activity"),
    params:
        efficiency=efficiency_flags,
    shell:
        "python -m pipeline activity --config {input.config} --catalogue {input.catalogue}"
        " --frames {input.frames:q} {params.efficiency} --out {output} > {log} 2>&1"


# the activity measured with the model training started from (train.init, no fine-tuning), with
# `pipeline infer`'s model (infer.model: `snakemake mine`, the user's files only) or with the
# classical reconstruction's catalogue, beside the fine-tuned U-Net's
use rule activity as activity_method with:
    input:
        unpack(efficiency_inputs),
        config="results/config/activity.yaml",
        catalogue="results/catalogues/{name}.{method}.parquet",
        frames=frames_of,
    output:
        "results/activity/{name}.{method}.json",
    log:
        "logs/activity/{name}.{method}.log",
    benchmark:
        "benchmarks/activity/{name}.{method}.tsv"
    wildcard_constraints:
        name="[^.]+",
        method="init|shipped|classical",


rule evaluate_detector:
    input:
        config="results/config/evaluate.yaml",
        truth="data/sim/{name}.h5",
        maps=lambda wildcards: scored_maps(wildcards.name),
    output:
        summary="results/suite/{name}/summary.json",
    log:
        "logs/evaluate/{name}.log",
    benchmark:
        "benchmarks/evaluate/{name}.tsv"
    wildcard_constraints:
        name="|".join(SUITE) or "^$",
    conda:
        "../envs/pipeline.yaml"
    threads: cpus("evaluate")
    resources:
        **job_resources("evaluate"),
    params:
        out=lambda wildcards, output: Path(output.summary).parent,
        tracking_uri=config["tracking"]["uri"],
        methods=" ".join(METHODS),
    shell:
        "python -m pipeline evaluate --config {input.config} --truth {input.truth}"
        " --pred {input.maps} --names {params.methods} --out {params.out}"
        " --set tracking.uri={params.tracking_uri} > {log} 2>&1"


rule suite:
    input:
        config="results/config/suite.yaml",
        summaries=expand("results/suite/{name}/summary.json", name=SUITE),
    output:
        table="results/evaluation/suite.md",
        html=report(
            "results/evaluation/suite.html",
            caption="../report/suite.rst",
            category="Evaluation",
        ),
    log:
        "logs/suite.log",
    benchmark:
        "benchmarks/suite.tsv"
    conda:
        "../envs/pipeline.yaml"
    threads: cpus("evaluate")
    resources:
        **job_resources("evaluate"),
    params:
        names=" ".join(SUITE),
        tracking_uri=config["tracking"]["uri"],
    shell:
        "python -m pipeline suite --config {input.config} --summaries {input.summaries}"
        " --names {params.names} --out {output.table}"
        " --set tracking.uri={params.tracking_uri} > {log} 2>&1"
