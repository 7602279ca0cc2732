import pytest


@pytest.fixture
def isolated_data(monkeypatch, tmp_path):
    """No test sees the real data root, a Kaggle input folder or torchvision's mirrors.

    ``source='auto'`` then finds only what a test puts under ``$D2LCNN_DATA`` (or the
    ``root=`` it passes): a download fails at once, as offline, and the Kaggle source
    finds no input folder.
    """
    monkeypatch.setenv("D2LCNN_DATA", str(tmp_path / "default-root"))
    monkeypatch.setenv("D2LCNN_PROFILE", "cpu")
    monkeypatch.setattr("d2lcnn.data.KAGGLE_INPUT", tmp_path / "no-kaggle-input")
    monkeypatch.setattr("torchvision.datasets.FashionMNIST.mirrors", [])
