# Results to look at (pipeline/reporting/view.py): a map over its frame (first frame) of the
# held-out dataset and of each of the user's files (the fine-tuned U-Net's; with `mine`,
# infer.model's), and the spectral fit of each activity; both in the report.


rule plot_map:
    input:
        config="results/config/plot.yaml",
        frames=frames_of,
        map="results/maps/{name}.{method}.h5",
    output:
        report(
            "results/plots/{name}.{method}.map.png",
            caption="../report/map.rst",
            category="Maps and fits",
        ),
    log:
        "logs/plot_map/{name}.{method}.log",
    benchmark:
        "benchmarks/plot_map/{name}.{method}.tsv"
    wildcard_constraints:
        name="[^.]+",
        method="unet|init|shipped|classical",
    conda:
        "../envs/pipeline.yaml"
    threads: cpus("plot")
    resources:
        **job_resources("plot"),
    shell:
        "python -m pipeline plot --config {input.config} --frames {input.frames:q}"
        " --map {input.map} --out {output} > {log} 2>&1"


rule plot_fit:
    input:
        config="results/config/plot.yaml",
        activity="results/activity/{stem}.json",
    output:
        report(
            "results/plots/{stem}.fit.png",
            caption="../report/fit.rst",
            category="Maps and fits",
        ),
    log:
        "logs/plot_fit/{stem}.log",
    benchmark:
        "benchmarks/plot_fit/{stem}.tsv"
    conda:
        "../envs/pipeline.yaml"
    threads: cpus("plot")
    resources:
        **job_resources("plot"),
    shell:
        "python -m pipeline plot --config {input.config} --activity {input.activity}"
        " --out {output} > {log} 2>&1"


# The headline numbers (pipeline/reporting/headline.py): the report's landing page
# (report/workflow.rst includes them), from the activities and the scores; `mine` writes its own
# from the activities of the user's files.
rule headline:
    input:
        config="results/config/headline.yaml",
        activity=expand("results/activity/{name}.json", name=[HELDOUT, *INPUTS]),
        classical=f"results/activity/{HELDOUT}.classical.json",
        summary="results/evaluation/summary.json",
        suite=expand("results/suite/{name}/summary.json", name=SUITE),
    output:
        report(
            "results/report/headline.rst",
            caption="../report/headline.rst",
            category="Headline numbers",
        ),
    log:
        "logs/headline.log",
    benchmark:
        "benchmarks/headline.tsv"
    conda:
        "../envs/pipeline.yaml"
    params:
        suite=lambda wildcards, input: (
            f"--suite-summaries {' '.join(input.suite)} --names {' '.join(SUITE)}"
            if SUITE
            else ""
        ),
    shell:
        "python -m pipeline headline --config {input.config} --activity {input.activity:q}"
        " {input.classical} --summary {input.summary} {params.suite} --out {output} > {log} 2>&1"


rule headline_mine:
    input:
        config="results/config/headline.yaml",
        activity=expand("results/activity/{name}.shipped.json", name=INPUTS),
    output:
        report(
            "results/report/headline.mine.rst",
            caption="../report/headline.rst",
            category="Headline numbers",
        ),
    log:
        "logs/headline_mine.log",
    benchmark:
        "benchmarks/headline_mine.tsv"
    conda:
        "../envs/pipeline.yaml"
    shell:
        "python -m pipeline headline --config {input.config} --activity {input.activity:q}"
        " --out {output} > {log} 2>&1"


# How long to count (pipeline/reporting/forecast.py): the detection limit of the held-out
# detector against counting time, for the fine-tuned U-Net's and the classical catalogue.
rule forecast:
    input:
        config="results/config/forecast.yaml",
        unet=f"results/activity/{HELDOUT}.json",
        classical=f"results/activity/{HELDOUT}.classical.json",
    output:
        png=report(
            f"results/plots/{HELDOUT}.forecast.png",
            caption="../report/forecast.rst",
            category="Maps and fits",
        ),
        table=f"results/plots/{HELDOUT}.forecast.json",
    log:
        "logs/forecast.log",
    benchmark:
        "benchmarks/forecast.tsv"
    conda:
        "../envs/pipeline.yaml"
    params:
        names=f"{HELDOUT} {HELDOUT}.classical",
    shell:
        "python -m pipeline forecast --config {input.config} --activity {input.unet}"
        " {input.classical} --names {params.names} --out {output.png} > {log} 2>&1"
