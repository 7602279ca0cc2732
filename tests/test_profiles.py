"""d2lcnn.settings: the profile choice, a chapter's Settings, the registry and its lookups."""

import dataclasses

import pytest
import torch
from torch import nn

from d2lcnn import settings
from d2lcnn.settings import (
    PROFILES,
    Settings,
    build_model,
    choose_profile,
    get_model,
    list_models,
    profile_name,
    register_model,
    settings_for,
)

SETTINGS = {p: Settings(lr=0.9, num_epochs=n, batch_size=256)
            for p, n in (("full", 10), ("cpu", 3), ("smoke", 1))}  # fmt: skip
CHAPTER_MODELS = ["lenet", "lenet_modern", "alexnet", "vgg11", "nin", "googlenet",
                  "lenet_bn", "resnet18", "densenet", "mobilenet_v1"]  # fmt: skip


@pytest.fixture
def registry(monkeypatch):
    """The chapters' models; whatever the test registers is gone afterwards."""
    list_models()  # the chapters register first
    monkeypatch.setattr(settings, "_MODELS", dict(settings._MODELS))


# ------------------------------------------------------------------ profiles


def test_environment_variable_selects_and_is_printed(monkeypatch, capsys):
    monkeypatch.setenv("D2LCNN_PROFILE", "cpu")
    assert choose_profile(SETTINGS) is SETTINGS["cpu"]
    out = capsys.readouterr().out
    assert out.startswith("profile: cpu ($D2LCNN_PROFILE): lr=0.9, num_epochs=3, ")
    assert out.count("\n") == 1 and "source=auto" in out


def test_automatic_choice_follows_the_device(monkeypatch):
    monkeypatch.delenv("D2LCNN_PROFILE", raising=False)
    monkeypatch.setattr(settings, "best_device", lambda: torch.device("cpu"))
    assert profile_name() == "cpu"
    monkeypatch.setattr(settings, "best_device", lambda: torch.device("cuda"))
    assert profile_name() == "full"


def test_unknown_profile_names_the_valid_ones(monkeypatch):
    monkeypatch.setenv("D2LCNN_PROFILE", "fast")
    with pytest.raises(ValueError, match="full, cpu, smoke"):
        profile_name()


def test_every_profile_must_be_given():
    with pytest.raises(ValueError, match="every profile"):
        choose_profile({"full": SETTINGS["full"], "cpu": SETTINGS["cpu"]})


def test_plain_dicts_as_keywords_become_a_namespace(monkeypatch, capsys):
    monkeypatch.setenv("D2LCNN_PROFILE", "smoke")
    hp = choose_profile(full=dict(lr=0.3, source="auto"), cpu=dict(lr=0.3, source="auto"),
                        smoke=dict(lr=0.1, source="mini"), verbose=False)  # fmt: skip
    assert (hp.lr, hp.source) == (0.1, "mini")
    assert capsys.readouterr().out == ""


def test_plain_dicts_must_set_the_same_keys():
    with pytest.raises(ValueError, match="num_epochs"):
        choose_profile(full=dict(lr=1, num_epochs=2), cpu=dict(lr=1), smoke=dict(lr=1))


# ------------------------------------------------------------------ Settings


@pytest.mark.parametrize("field, value, message", [
    ("lr", 0, "lr must be a finite number > 0"),
    ("lr", "0.1", "lr must be a number"),
    ("num_epochs", 2.5, "num_epochs must be a positive integer"),
    ("batch_size", 0, "batch_size must be a positive integer"),
])  # fmt: skip
def test_settings_refuse_invalid_values(field, value, message):
    values = dict(lr=0.1, num_epochs=1, batch_size=8)
    values[field] = value
    with pytest.raises(ValueError, match=message):
        Settings(**values)


def test_settings_are_frozen_keyword_only_and_replaced_by_copy():
    hp = Settings(lr=0.1, num_epochs=1, batch_size=8)
    assert (hp.resize, hp.subset, hp.precision, hp.recipe, hp.source) == (
        None, None, "fp32", None, "auto")  # fmt: skip
    with pytest.raises(dataclasses.FrozenInstanceError):
        hp.lr = 1.0
    with pytest.raises(TypeError):
        Settings(0.1, 1, 8)
    assert (hp.replace(lr=0.2).lr, hp.lr) == (0.2, 0.1)


def test_a_chapter_subclass_adds_its_experiments():
    @dataclasses.dataclass(frozen=True, kw_only=True)
    class ChapterSettings(Settings):
        exp_resize: int = 32
        exp_epochs: int  # no default: every profile must state it

    hp = ChapterSettings(lr=0.1, num_epochs=1, batch_size=8, exp_epochs=2)
    assert (hp.exp_resize, hp.exp_epochs) == (32, 2)
    assert str(hp).startswith("lr=0.1, num_epochs=1, ") and str(hp).endswith("exp_epochs=2")
    with pytest.raises(TypeError, match="exp_epochs"):
        ChapterSettings(lr=0.1, num_epochs=1, batch_size=8)
    with pytest.raises(ValueError, match="batch_size"):
        ChapterSettings(lr=0.1, num_epochs=1, batch_size=0, exp_epochs=2)  # still checked


# ------------------------------------------------------------------ the registry


def test_register_model_refuses_a_taken_name(registry):
    def resnet18(num_classes=10):  # a learner's own net under the chapter's name
        return nn.Linear(4, num_classes)

    with pytest.raises(ValueError) as error:
        register_model("resnet18")(resnet18)
    message = str(error.value)
    assert "'resnet18' is taken by d2lcnn.models.resnet.resnet18" in message
    assert "choose another name" in message and "replace=True" in message
    assert type(get_model("resnet18")).__name__ == "ResNet"  # the chapter's net stays


def test_register_model_replaces_when_asked(registry):
    @register_model("resnet18", replace=True)
    def my_resnet(num_classes=10):
        return nn.Linear(4, num_classes)

    assert isinstance(get_model("resnet18"), nn.Linear)


def test_registering_the_same_builder_again_is_allowed(registry):
    def tiny(num_classes=10):
        return nn.Linear(4, num_classes)

    register_model("tiny_twice")(tiny)
    register_model("tiny_twice", settings=SETTINGS)(tiny)  # a cell run again
    assert settings_for("tiny_twice", "smoke") is SETTINGS["smoke"]


def test_unknown_model_lists_the_known_ones():
    with pytest.raises(ValueError, match="unknown model 'lenet6'; choose one of: alexnet"):
        get_model("lenet6")


# ------------------------------------------------------------------ lookups


@pytest.mark.parametrize("name", CHAPTER_MODELS)
def test_every_chapter_model_has_settings_for_every_profile(name):
    chosen = [settings_for(name, profile) for profile in PROFILES]
    assert all(isinstance(hp, Settings) for hp in chosen)
    assert [hp.source for hp in chosen] == ["auto", "auto", "mini"]  # smoke: mini set


def test_settings_for_reads_the_chapters_settings(monkeypatch):
    from d2lcnn.models import lenet, vgg

    assert settings_for("vgg11", "cpu") is vgg.SETTINGS["cpu"]
    assert settings_for("vgg11", "cpu").ratio == 4  # a chapter's own field
    assert settings_for("lenet", "full").lr == 0.9
    assert settings_for("lenet_modern", "full") == lenet.SETTINGS["full"].replace(lr=0.3)
    monkeypatch.setenv("D2LCNN_PROFILE", "smoke")
    assert settings_for("alexnet") is settings_for("alexnet", "smoke")


def test_settings_for_says_what_is_missing(registry):
    register_model("no_settings_net")(lambda num_classes=10: nn.Linear(4, num_classes))
    with pytest.raises(ValueError, match="registered without settings"):
        settings_for("no_settings_net", "cpu")
    with pytest.raises(ValueError, match="profile must be one of full, cpu, smoke"):
        settings_for("lenet", "fast")
    assert build_model("no_settings_net").out_features == 10  # the builder's defaults


def test_build_model_builds_the_net_as_its_chapter_trains_it():
    assert build_model("vgg11", "cpu", 64).features[0][0].out_channels == 64 // 4
    at_72 = get_model("alexnet", resolution=72).classifier[0].in_features
    assert build_model("alexnet", "cpu").classifier[0].in_features == at_72  # its resize
    assert build_model("mobilenet_v1", "cpu").features[0][0].out_channels == 32  # alpha 1
    assert sum(p.numel() for p in build_model("lenet", "smoke").parameters()) == 61_706


def test_a_partial_or_callable_object_registers(registry):
    import functools

    def wide(width, num_classes=10):
        return nn.Linear(width, num_classes)

    register_model("wide8")(functools.partial(wide, 8))
    assert get_model("wide8").in_features == 8
    with pytest.raises(ValueError, match="'wide8' is taken"):
        register_model("wide8")(functools.partial(wide, 16))  # another builder
