import pytest

from d2lcnn import sources


@pytest.fixture
def isolated_data(monkeypatch, tmp_path):
    """No test sees the real data root, Kaggle folder, npm or network mirrors."""
    monkeypatch.setenv("D2LCNN_DATA", str(tmp_path / "default-root"))
    monkeypatch.setenv("D2LCNN_PROFILE", "cpu")
    monkeypatch.setenv("D2LCNN_SOURCES", "local")  # auto: no network, Kaggle or npm
    sources.clear_cache()
    yield
    sources.clear_cache()
