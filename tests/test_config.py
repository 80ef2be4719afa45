"""The one config system: defaults, merging, one-line errors, and the schema kept in sync."""

import jsonschema
import pytest
import yaml

from pipeline.config import (
    DEFAULT_CONFIG,
    SCHEMA_PATH,
    Config,
    ConfigError,
    json_schema,
    load_config,
)


def test_default_config_loads_into_typed_models():
    cfg = load_config()
    assert isinstance(cfg, Config)
    assert cfg.classes == ["background", "muon", "electron", "tritium", "xray", "alpha", "artefact"]
    assert cfg.physics.pair_energy_ev == 3.75
    assert cfg.detector.thickness_um == 675.0


@pytest.mark.parametrize(
    "name", sorted(p.name for p in DEFAULT_CONFIG.parent.glob("*.yaml") if p != SCHEMA_PATH)
)
def test_every_shipped_config_validates(name):
    cfg = load_config(DEFAULT_CONFIG.parent / name)
    assert cfg.model.in_channels == cfg.normalise.channels
    if name == "release.yaml":  # the recipe streams every tile and validates on fixed files
        train_rule = (DEFAULT_CONFIG.parents[1] / "rules" / "train.smk").read_text()
        assert cfg.stream.weight == 1.0 and "--val-frames {input.val_frames}" in train_rule


def test_committed_schema_is_generated_from_the_models():
    assert yaml.safe_load(SCHEMA_PATH.read_text()) == json_schema()


def test_schema_accepts_default_and_rejects_unknown_keys():
    schema = yaml.safe_load(SCHEMA_PATH.read_text())
    default = yaml.safe_load(DEFAULT_CONFIG.read_text())
    jsonschema.validate(default, schema)
    default["detector"]["hieght"] = 5
    with pytest.raises(jsonschema.ValidationError, match="hieght"):
        jsonschema.validate(default, schema)


def test_user_file_is_merged_over_the_default(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text("detector:\n  readout_noise_e: 0.15\nsimulate:\n  frames: 7\n")
    cfg = load_config(path)
    assert cfg.detector.readout_noise_e == 0.15
    assert cfg.simulate.frames == 7
    assert cfg.detector.thickness_um == 675.0  # untouched keys keep their default


@pytest.mark.parametrize(
    ("text", "pattern"),
    [
        (
            "detector:\n  hieght: 5\n",
            r"unknown config key 'detector\.hieght' \(valid keys here: .*height",
        ),
        ("detector:\n  height: -5\n", r"config key 'detector\.height': .*greater than 0"),
        ("detector:\n  height: lots\n", r"config key 'detector\.height': .*integer"),
        (
            "sources:\n  tritium:\n    sample: {kind: soil}\n",
            r"config key 'sources\.tritium\.sample\.kind'.*'surface' or 'layer'",
        ),
        ("classes: [a, a]\n", r"class names must be unique"),
        ("normalise:\n  kind: asinh_noise\n", r"model\.in_channels is 3, but .* makes 2 input"),
        ("- just\n- a list\n", r"top level must be a mapping"),
        ("detector: [unclosed\n", r"not valid YAML"),
        ("detector:\n  height: 64\n  height: 32\n", r"key 'height' appears twice .*lines 2 and 3"),
        ("activity:\n  exposure_s: .inf\n", r"'activity\.exposure_s': .*finite"),
    ],
)
def test_bad_config_is_one_line_naming_file_and_key(tmp_path, text, pattern):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=pattern) as info:
        load_config(path)
    message = str(info.value)
    assert message.startswith(str(path))
    assert "\n" not in message


def test_missing_config_file_is_named(tmp_path):
    with pytest.raises(ConfigError, match=r"nope\.yaml: config file not found"):
        load_config(tmp_path / "nope.yaml")


def test_overrides_use_dotted_keys_and_are_validated():
    cfg = load_config(overrides={"detector.height": 64, "sources.alpha.rate_per_frame": 0})
    assert cfg.detector.height == 64 and cfg.sources.alpha.rate_per_frame == 0
    with pytest.raises(ConfigError, match=r"unknown config key 'sources\.alfa'"):
        load_config(overrides={"sources.alfa.rate_per_frame": 1})


def test_every_key_of_the_schema_has_a_description():
    """The schema describes every key: a field's description, else its comment in default.yaml
    (pipeline/config/describe.py)."""
    from pipeline.config.describe import undescribed

    schema = json_schema()
    assert undescribed(schema) == []
    runtime = schema["$defs"]["InferConfig"]["properties"]["runtime"]["description"]
    assert runtime.startswith("what runs the network") and "auto: onnxruntime" in runtime


def test_key_comments_reads_a_commented_yaml_file():
    from pipeline.config.describe import key_comments

    text = (
        "a:                 # section a\n"
        "  b: 1             # the b, which\n"
        "                   #   continues here\n"
        "  # the c, above it\n"
        "  c: 'x # not a comment'\n"
        "d: 2\n"
    )
    assert key_comments(text) == {
        "a": "section a",
        "a.b": "the b, which continues here",
        "a.c": "the c, above it",
    }


def test_class_weights_are_by_name_and_every_class_needs_one():
    """A class inserted into `classes` cannot shift the others' weights: they are keyed by name,
    and a class without a weight is refused at load time, naming it."""
    classes = ["background", "muon", "recoil", "electron", "tritium", "xray", "alpha"]
    unsourced = {"simulate.unsourced_classes": ["recoil"]}  # a class only labelled data has
    config = load_config(
        overrides={"classes": classes, "train.class_weights.recoil": 3.0, **unsourced}
    )
    weights = config.train.class_weights
    assert (weights["tritium"], weights["recoil"], weights["electron"]) == (2.0, 3.0, 1.0)
    with pytest.raises(ConfigError, match=r"train.class_weights: .* none for \['recoil'\]"):
        load_config(overrides={"classes": classes, **unsourced})


def test_every_class_but_the_first_needs_a_source_or_is_said_to_have_none():
    classes = [*load_config().classes, "recoil"]
    weights = {"train.class_weights.recoil": 1.0}
    with pytest.raises(ConfigError, match=r"classes \['recoil'\]: no source labels them"):
        load_config(overrides={"classes": classes, **weights})
    added = {"sources.recoil": {"label": "recoil", "rate_per_frame": 2.0, "energy_kev": [1, 9]}}
    config = load_config(overrides={"classes": classes, **weights, **added})
    assert config.sources.labels()["recoil"] == "recoil"
    assert config.sources.recoil.model_dump()["energy_kev"] == [1, 9]  # its own parameters


def _float_keys(node, prefix=""):
    """The dotted keys of every float value of a config mapping, lists' items included."""
    for name, value in node.items():
        key = f"{prefix}{name}"
        if isinstance(value, dict):
            yield from _float_keys(value, key + ".")
        elif isinstance(value, float) or (
            isinstance(value, list) and value and all(isinstance(v, float) for v in value)
        ):
            yield key, value


FLOAT_KEYS = sorted(_float_keys(yaml.safe_load(DEFAULT_CONFIG.read_text())))


def _with(key: str, value) -> dict:
    """The overrides that set `key`; a simulated dataset's override keys are dotted themselves."""
    if ".overrides." not in key:
        return {key: value}
    dataset, leaf = key.split(".overrides.")
    return {f"{dataset}.overrides": {leaf: value}}


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_no_float_key_of_the_config_takes_a_non_finite_value(bad):
    """By rule, not by case: every float of the default config (a simulated dataset's
    overrides included), set to NaN or an infinity (one item of a list), is refused at load
    time in one line naming its key."""
    assert len(FLOAT_KEYS) > 50
    for key, value in FLOAT_KEYS:
        changed = [bad, *value[1:]] if isinstance(value, list) else bad
        named = key.split(".overrides.")[-1].replace(".", r"\.")
        with pytest.raises(ConfigError, match=rf"'{named}(\.0)?'") as info:
            load_config(overrides=_with(key, changed))
        assert "\n" not in str(info.value)


def test_yaml_1_1_words_are_strings_and_booleans_still_read():
    """`off` is a value of infer.amp, not YAML 1.1's false; a boolean key still takes
    true/false (and pydantic's on/off/yes/no)."""
    from pipeline.cli import _parse_set

    assert _parse_set("infer.amp=off") == ("infer.amp", "off")
    assert load_config(overrides=dict([_parse_set("infer.amp=off")])).infer.amp == "off"
    assert load_config(overrides={"simulate.root": "yes"}).simulate.root is True
    assert load_config(overrides=dict([_parse_set("simulate.root=true")])).simulate.root is True


def test_the_parsed_default_is_reused_but_never_shared():
    """The default file is parsed once per version; each load gets its own copy, so one load's
    overrides never reach the next."""
    first = load_config(overrides={"infer.overlap": 0.5, "simulate.datasets.train.frames": 3})
    second = load_config()
    assert first.infer.overlap == 0.5 and second.infer.overlap == 0.125
    assert second.simulate.datasets["train"].frames == 8
