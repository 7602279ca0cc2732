import pytest

from d2lcnn import sources


@pytest.fixture
def isolated_data(monkeypatch, tmp_path):
    """No test sees the real data root, Kaggle folder, npm or network mirrors."""
    monkeypatch.setenv("D2LCNN_DATA", str(tmp_path / "default-root"))
    monkeypatch.setenv("D2LCNN_PROFILE", "cpu")
    monkeypatch.setattr(sources, "MIRRORS", [])
    monkeypatch.setattr(sources, "KAGGLE_GLOB", str(tmp_path / "no-kaggle/**/x.csv"))
    monkeypatch.setattr(sources, "NPM_COMMAND", "d2lcnn-no-such-npm")
    sources.clear_cache()
    yield
    sources.clear_cache()
