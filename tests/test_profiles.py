import pytest

from d2lcnn import profiles

SETTINGS = dict(full=dict(lr=0.9, num_epochs=10), cpu=dict(lr=0.9, num_epochs=3),
                smoke=dict(lr=0.9, num_epochs=1))


def test_environment_variable_selects_and_is_printed(monkeypatch, capsys):
    monkeypatch.setenv("D2LCNN_PROFILE", "cpu")
    hp = profiles.choose(**SETTINGS)
    assert (hp.profile, hp.num_epochs) == ("cpu", 3)
    assert capsys.readouterr().out == (
        "profile: cpu (from $D2LCNN_PROFILE): lr=0.9, num_epochs=3\n"
    )


def test_automatic_choice_follows_the_device(monkeypatch):
    monkeypatch.delenv("D2LCNN_PROFILE", raising=False)
    monkeypatch.setattr(profiles, "best_device", lambda: __import__("torch").device("cpu"))
    assert profiles.profile_name() == "cpu"
    monkeypatch.setattr(profiles, "best_device", lambda: __import__("torch").device("cuda"))
    assert profiles.profile_name() == "full"


def test_unknown_profile_names_the_valid_ones(monkeypatch):
    monkeypatch.setenv("D2LCNN_PROFILE", "fast")
    with pytest.raises(ValueError, match="full, cpu, smoke"):
        profiles.profile_name()


def test_profiles_must_set_the_same_keys():
    with pytest.raises(ValueError, match="num_epochs"):
        profiles.choose(full=dict(lr=1, num_epochs=2), cpu=dict(lr=1), smoke=dict(lr=1))
