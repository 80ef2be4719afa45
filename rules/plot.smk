# Results to look at (pipeline/reporting/view.py): the U-Net's map over its frame (first frame) of
# the held-out dataset and of each of the user's files, and the spectral fit of each activity;
# both in the report.


rule plot_map:
    input:
        config="results/config/plot.yaml",
        frames=frames_of,
        map="results/maps/{name}.unet.h5",
    output:
        report(
            "results/plots/{name}.unet.map.png",
            caption="../report/map.rst",
            category="Maps and fits",
        ),
    log:
        "logs/plot_map/{name}.log",
    benchmark:
        "benchmarks/plot_map/{name}.tsv"
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
        activity="results/activity/{name}.json",
    output:
        report(
            "results/plots/{name}.fit.png",
            caption="../report/fit.rst",
            category="Maps and fits",
        ),
    log:
        "logs/plot_fit/{name}.log",
    benchmark:
        "benchmarks/plot_fit/{name}.tsv"
    conda:
        "../envs/pipeline.yaml"
    threads: cpus("plot")
    resources:
        **job_resources("plot"),
    shell:
        "python -m pipeline plot --config {input.config} --activity {input.activity}"
        " --out {output} > {log} 2>&1"
