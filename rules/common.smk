# Shared helpers (functions only, no rules): per-stage config slices, the simulated datasets, the
# user's own frame files, and each job's resources from the config's `workflow` section.
import glob
import re
import os
from pathlib import Path

from snakemake.exceptions import WorkflowError

from pipeline.config import validate_config, write_config_sections
from pipeline.commands import STAGES, stage_sections
from pipeline.core.errors import CheckpointError
from pipeline.measurement.variants import variant_names
from pipeline.network.shipped import resolve_model

# the sections each stage reads: the fields of its typed settings (pipeline/config/stages.py)
STAGE_SECTIONS = {stage: stage_sections(stage) for stage in STAGES}
SIMULATED = config["simulate"]["datasets"]
SUITE = config["workflow"]["suite"]  # simulated detectors both methods are scored on
HELDOUT = config["workflow"][
    "heldout"
]  # the simulated dataset of the evaluation and activity
for _name in SUITE:
    if _name not in SIMULATED:
        raise WorkflowError(
            f"workflow.suite: {_name!r} is not a dataset of simulate.datasets"
        )


def dataset_overrides(name):
    """`--set key=value` flags of a simulated dataset's config overrides (e.g. its detector)."""
    overrides = SIMULATED.get(name, {}).get("overrides", {})
    return " ".join(f"--set {key}={value}" for key, value in overrides.items())


def user_inputs():
    """name -> path of each of the user's frame files (`workflow.inputs`: paths or globs).
    A missing file, a glob that matches nothing or two files of one name stop the workflow
    before any job runs."""
    found = {}
    for pattern in config["workflow"]["inputs"]:
        paths = sorted(glob.glob(pattern)) if glob.has_magic(pattern) else [pattern]
        if not paths:
            raise WorkflowError(f"workflow.inputs: {pattern!r} matches no file")
        for path in paths:
            if not Path(path).is_file():
                raise WorkflowError(f"workflow.inputs: {path}: no such file")
            name = Path(path).name.split(".")[0]
            if name in found or name in SIMULATED:
                raise WorkflowError(
                    f"workflow.inputs: {path}: a second input named {name!r}"
                )
            found[name] = path
    return found


INPUTS = user_inputs()


def init_model():
    """The checkpoint train.init names (a path or a shipped model), or None: a missing one stops
    the workflow before any job runs. Its maps are scored beside the fine-tuned model's.
    """
    if not config["train"]["init"]:
        return None
    try:
        return str(resolve_model(config["train"]["init"], config["release"]["dir"]))
    except CheckpointError as exc:
        raise WorkflowError(f"train.init: {exc}")


INIT = init_model()


def shipped_model():
    """The checkpoint infer.model names (what `pipeline infer` maps with, and `snakemake mine`),
    or None where it names none that exists yet (mine then stops with the reason)."""
    try:
        return str(resolve_model(config["infer"]["model"], config["release"]["dir"]))
    except CheckpointError:
        return None


SHIPPED = shipped_model()


def compared_models():
    """workflow.compare_models: method (the model's name) -> its checkpoint, scored beside the
    fine-tuned model and its starting point (the starting point itself is not repeated).
    """
    found = {}
    for name in config["workflow"]["compare_models"]:
        try:
            path = str(resolve_model(name, config["release"]["dir"]))
        except CheckpointError as exc:
            raise WorkflowError(f"workflow.compare_models: {exc}")
        if path != INIT:
            found[Path(name).stem] = path
    return found


COMPARED = compared_models()
CEILING = ["ceiling"] if config["workflow"]["ceiling"] else []
METHODS = ["unet", *(["init"] if INIT else []), *COMPARED, *CEILING, "classical"]


def scored_maps(name):
    """The map of each scored method on dataset `name`, in METHODS order."""
    return [f"results/maps/{name}.{method}.h5" for method in METHODS]


EFFICIENCY = ".efficiency"  # NAME.efficiency: the efficiency frames of dataset NAME
VARIANT_OF = ".efficiency-"  # NAME.efficiency-VARIANT: a variant of the systematics


def frames_of(wildcards):
    """The frame file behind a map's name: the user's file, a simulated dataset, or the
    efficiency frames of either (data/efficiency/NAME.h5), or of one of their variants
    (data/efficiency/NAME.VARIANT.h5)."""
    name = wildcards.name
    if name.endswith(EFFICIENCY):
        return f"data/efficiency/{name.removesuffix(EFFICIENCY)}.h5"
    if VARIANT_OF in name:
        base, variant = name.split(VARIANT_OF, 1)
        return f"data/efficiency/{base}.{variant}.h5"
    return INPUTS.get(name, f"data/sim/{name}.h5")


def cpus(stage):
    """Threads of a stage's jobs: Snakemake caps them at --cores on one machine, and asks a
    cluster scheduler for them (cpus_per_task) as they are."""
    return config["workflow"]["resources"][stage]["cpus"]


def gpus(stage):
    return config["workflow"]["resources"][stage]["gpus"]


def job_resources(stage):
    """Scheduler requests (names of the Snakemake SLURM executor: mem_mb, runtime, gpu)."""
    wanted = config["workflow"]["resources"][stage]
    return {
        "mem_mb": wanted["mem_mb"],
        "runtime": wanted["runtime_min"],
        "gpu": wanted["gpus"],
    }


# Every job runs the package of this checkout: installed (pip install -e .) or, in a rule's
# conda environment (envs/pipeline.yaml: its dependencies only), from the workflow's directory,
# which jobs find first on their PYTHONPATH (inherited, also by cluster jobs).
_PATHS = [workflow.basedir, os.getenv("PYTHONPATH")]
os.environ.update(PYTHONPATH=os.pathsep.join(filter(None, _PATHS)))


def train_launcher():
    """`python -m pipeline`, or torchrun with one DDP process per GPU when train asks for more
    than one (each process gets its share of the job's CPU threads)."""
    n = gpus("train")
    if n > 1:
        threads = max(1, cpus("train") // n)
        return f"OMP_NUM_THREADS={threads} torchrun --standalone --nproc_per_node {n} -m pipeline"
    return "python -m pipeline"


VARIANTS = variant_names(
    validate_config(config)
)  # the systematics' re-simulated variants


def efficiency_inputs(wildcards):
    """The efficiency frames of dataset `name` and the catalogue of them by the same method as
    the data's (`method`: unet, init, the model training started from, or classical), and the
    same of every variant of the systematics, unless the config gives the efficiency."""
    if config["activity"]["efficiency"] is not None:
        return {}
    method, name = wildcards.get("method", "unet"), wildcards.name
    return {
        "efficiency_frames": f"data/efficiency/{name}.h5",
        "efficiency_catalogue": f"results/catalogues/{name}.efficiency.{method}.parquet",
        "variants": [f"data/efficiency/{name}.{v}.h5" for v in VARIANTS],
        "variant_catalogues": [
            f"results/catalogues/{name}.efficiency-{v}.{method}.parquet"
            for v in VARIANTS
        ],
    }


def efficiency_flags(wildcards, input):
    if "efficiency_frames" not in input.keys():
        return ""
    flags = (
        f"--efficiency-frames {input.efficiency_frames}"
        f" --efficiency-catalogue {input.efficiency_catalogue}"
    )
    if VARIANTS:
        flags += f" --variants {' '.join(input.variants)}"
        flags += f" --variant-catalogues {' '.join(input.variant_catalogues)}"
    return flags


def mine_outputs(wildcards):
    """What `snakemake mine` makes of each of the user's files, with `pipeline infer`'s model
    (infer.model, paired as infer.particles_from says) and nothing trained: the map and
    catalogue, the map drawn, the activity and its fit drawn."""
    if not INPUTS:
        raise WorkflowError(
            "workflow.inputs is empty: name your frame files, e.g. "
            "--config 'workflow={inputs: [run42.fits]}' or a config file of your own"
        )
    if not SHIPPED:
        try:  # says why it is not there
            resolve_model(config["infer"]["model"], config["release"]["dir"])
        except CheckpointError as exc:
            raise WorkflowError(f"infer.model: {exc}")
    return [
        path
        for name in INPUTS
        for path in (
            f"results/maps/{name}.shipped.h5",
            f"results/plots/{name}.shipped.map.png",
            f"results/activity/{name}.shipped.json",
            f"results/plots/{name}.shipped.fit.png",
        )
    ] + ["results/report/headline.mine.rst"]
