"""Config defaults, overrides and every class of bad input, each with a clear message."""

from __future__ import annotations

import pytest

from cockpit.config import Config, ConfigError, diff_from_defaults, dump_config, load_config, load_config_text
from cockpit.config.starter import STARTER


def load_text(tmp_path, text: str, overrides=()):
    path = tmp_path / "run.toml"
    path.write_text(text)
    return load_config(path, overrides)


def messages(error: ConfigError) -> list[str]:
    return [str(problem) for problem in error.problems]


def test_defaults_follow_the_torchvision_recipe(tmp_path):
    config = load_text(tmp_path, "")
    assert (config.optim.lr, config.optim.momentum, config.optim.weight_decay) == (0.005, 0.9, 0.0005)
    assert (config.optim.step_size, config.optim.gamma) == (3, 0.1)
    assert config.model.weights == "none"
    assert config.data.num_classes == len(config.data.classes) + 1


def test_every_field_has_a_docstring():
    for section in Config.model_fields.values():
        for name, field in section.annotation.model_fields.items():
            assert field.description, f"{section.annotation.__name__}.{name} has no docstring"


def test_paths_resolve_relative_to_the_config_file(tmp_path):
    config = load_text(tmp_path, '[data]\ntrain = "data/train.json"\n')
    assert config.resolve_path(config.data.train) == tmp_path / "data" / "train.json"


def test_set_overrides_are_typed(tmp_path):
    config = load_text(tmp_path, "", ["optim.lr=0.01", "run.name=demo", "optim.amp=true", 'data.classes=["a","b"]'])
    assert config.optim.lr == 0.01 and config.run.name == "demo" and config.optim.amp is True
    assert config.data.classes == ["a", "b"]


def test_unknown_key_says_did_you_mean_with_the_line(tmp_path):
    with pytest.raises(ConfigError) as caught:
        load_text(tmp_path, "[run]\nname = 'x'\nepochz = 3\n")
    assert messages(caught.value) == ["line 3: run.epochz: unknown key (did you mean 'epochs'?)"]
    assert str(tmp_path / "run.toml") in str(caught.value)


def test_unknown_section_says_did_you_mean(tmp_path):
    with pytest.raises(ConfigError) as caught:
        load_text(tmp_path, "[optimizer]\nlr = 1\n")
    assert "unknown section [optimizer] (did you mean 'optim'?)" in str(caught.value)


def test_wrong_type_and_range_name_section_key_and_line(tmp_path):
    with pytest.raises(ConfigError) as caught:
        load_text(tmp_path, "[optim]\nlr = -1\nmomentum = 'high'\n")
    text = "\n".join(messages(caught.value))
    assert "line 2: optim.lr:" in text and "greater than 0" in text
    assert "line 3: optim.momentum:" in text


def test_broken_toml_gives_file_and_line(tmp_path):
    with pytest.raises(ConfigError) as caught:
        load_text(tmp_path, "[run]\nname = \n")
    assert messages(caught.value)[0].startswith("line 2: invalid TOML")


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(ConfigError, match="file not found"):
        load_config(tmp_path / "nope.toml")
    with pytest.raises(ConfigError, match="is a folder"):
        load_config(tmp_path)


def test_unknown_arch_lists_the_choices(tmp_path):
    with pytest.raises(ConfigError) as caught:
        load_text(tmp_path, "[model]\narch = 'resnet'\n")
    assert "unknown arch 'resnet'" in str(caught.value) and "tiny" in str(caught.value)


def test_empty_classes_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="at least one foreground class"):
        load_text(tmp_path, "[data]\nclasses = []\n")


def test_bad_override_syntax(tmp_path):
    with pytest.raises(ConfigError, match="section.key=value"):
        load_text(tmp_path, "", ["optim.lr"])


def test_dump_round_trips_and_diff_lists_changes(tmp_path):
    config = load_text(tmp_path, "[optim]\nlr = 0.01\n")
    again = load_config_text(dump_config(config), base_dir=tmp_path)
    assert again.model_dump() == config.model_dump()
    assert diff_from_defaults(config) == {"optim.lr": (0.005, 0.01)}


def test_starter_config_is_valid(tmp_path):
    config = load_text(tmp_path, STARTER)
    assert config.model.arch == "tiny"


def test_copy_with_validates(tmp_path):
    config = load_text(tmp_path, "")
    assert config.copy_with({"optim.lr": 0.1}).optim.lr == 0.1
    with pytest.raises(Exception):
        config.copy_with({"optim.lr": -1})


def test_run_threads_is_auto_or_a_positive_whole_number():
    import pytest as _pytest
    from pydantic import ValidationError

    assert Config().run.threads == "auto"
    assert Config.model_validate({"run": {"threads": 3}}).run.threads == 3
    assert Config.model_validate({"run": {"threads": "2"}}).run.threads == 2  # from --set run.threads=2
    for bad in (0, -1, "many", 1.5, True):
        with _pytest.raises(ValidationError):
            Config.model_validate({"run": {"threads": bad}})


def test_a_bad_set_value_is_reported_as_coming_from_set(tmp_path):
    with pytest.raises(ConfigError) as caught:
        load_text(tmp_path, "[optim]\nlr = 0.01\n", overrides=["optim.lr=abc"])
    (line,) = str(caught.value).splitlines()
    assert line.startswith("--set optim.lr=abc: optim.lr:") and "line" not in line
    with pytest.raises(ConfigError) as caught:
        load_text(tmp_path, "[optim]\nlr = 0.01\n", overrides=["optim.lrr=1"])
    assert str(caught.value).startswith("--set optim.lrr=1: optim.lrr: unknown key (did you mean 'lr'?)")


def test_loss_and_sampler_defaults_are_torchvisions(tmp_path):
    config = load_text(tmp_path, "")
    assert (config.loss.box, config.loss.box_beta, config.loss.classifier) == ("smooth_l1", 1 / 9, "ce")
    assert config.loss.hard_negatives is False and config.loss.focal_gamma == 2.0
    s = config.sampler
    assert (s.rpn_positive_fraction, s.rpn_fg_iou_thresh, s.rpn_bg_iou_thresh) == (0.5, 0.7, 0.3)
    assert (s.roi_positive_fraction, s.roi_fg_iou_thresh, s.roi_bg_iou_thresh) == (0.25, 0.5, 0.5)
    # Unset batch sizes mean the architecture's own (torchvision's 256 / 512).
    assert s.rpn_batch_size_per_image is None and s.roi_batch_size_per_image is None


def test_unknown_loss_name_says_did_you_mean_with_the_line(tmp_path):
    with pytest.raises(ConfigError) as caught:
        load_text(tmp_path, '[loss]\nbox = "gio"\nclassifier = "focall"\n')
    text = messages(caught.value)
    assert text[0].startswith("line 2: loss.box: unknown box loss 'gio' (did you mean 'giou'?)")
    assert "smooth_l1, l1, giou, diou, ciou" in text[0]
    assert text[1].startswith("line 3: loss.classifier: unknown classifier loss 'focall' (did you mean 'focal'?)")


def test_sampler_fraction_and_threshold_order_are_checked(tmp_path):
    with pytest.raises(ConfigError) as caught:
        load_text(tmp_path, "[sampler]\nroi_positive_fraction = 1.5\nrpn_fg_iou_thresh = 0.4\nrpn_bg_iou_thresh = 0.6\n")
    text = "\n".join(messages(caught.value))
    assert "line 2: sampler.roi_positive_fraction:" in text and "less than or equal to 1" in text
    assert "line 4: sampler.rpn_bg_iou_thresh: must not be above rpn_fg_iou_thresh (0.4)" in text


def test_loss_and_sampler_fields_are_live():
    from cockpit.config import LIVE_FIELDS

    for section in ("loss", "sampler"):
        for name in Config.model_fields[section].annotation.model_fields:
            assert f"{section}.{name}" in LIVE_FIELDS
