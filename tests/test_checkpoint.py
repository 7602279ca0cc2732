import pytest
import torch
from torch import nn

import d2lcnn as d2l
from d2lcnn.checkpoint import load_checkpoint, save_checkpoint


def net(width=4):
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, width, 3), nn.ReLU(), nn.Flatten(),
                         nn.Linear(width * 36, 10))


def data():
    torch.manual_seed(1)
    X, y = torch.rand(32, 1, 8, 8), torch.randint(0, 10, (32,))
    return [(X[i:i + 8], y[i:i + 8]) for i in range(0, 32, 8)]


def train(model, epochs, **kw):
    return d2l.train_ch6(model, data(), data(), epochs, 0.1, "cpu", animator=False,
                         progress=False, verbose=False, **kw)


def test_a_run_resumes_from_its_checkpoint_with_weights_and_optimizer_state(tmp_path):
    first = net()
    optimizer = torch.optim.SGD(first.parameters(), lr=0.1, momentum=0.9)
    history = train(first, 1, optimizer=optimizer)
    save_checkpoint(tmp_path / "run.pt", first, optimizer, history, {"resize": None})

    resumed = net()
    optimizer2 = torch.optim.SGD(resumed.parameters(), lr=0.1, momentum=0.9)
    state = load_checkpoint(tmp_path / "run.pt", resumed, optimizer2)
    assert len(state["history"]) == 1 and state["settings"] == {"resize": None}
    assert optimizer2.state_dict()["state"]  # momentum buffers came back
    for a, b in zip(first.parameters(), resumed.parameters()):
        torch.testing.assert_close(a, b)
    history = train(resumed, 1, init=None, optimizer=optimizer2, history=state["history"])
    assert len(history) == 2


def test_a_checkpoint_of_another_architecture_is_refused_by_name(tmp_path):
    save_checkpoint(tmp_path / "a.pt", net(width=4))
    with pytest.raises(ValueError, match=r"0.weight: saved \[4, 1, 3, 3\], this net \[8, 1"):
        load_checkpoint(tmp_path / "a.pt", net(width=8))


def test_truncated_file_gives_a_clear_error(tmp_path):
    path = save_checkpoint(tmp_path / "a.pt", net())
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(ValueError, match="not a readable d2lcnn checkpoint"):
        load_checkpoint(path, net())


def test_loading_uses_weights_only(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    path = tmp_path / "evil.pt"
    torch.save({"format": "d2lcnn-checkpoint-1", "x": Evil()}, path)
    with pytest.raises(ValueError, match="not a readable"):
        load_checkpoint(path, net())


def test_a_failed_save_leaves_no_file_behind(tmp_path, monkeypatch):
    path = tmp_path / "a.pt"
    save_checkpoint(path, net())
    before = path.read_bytes()

    def broken_save(obj, f):
        with open(f, "wb") as handle:
            handle.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, net(width=8))
    assert path.read_bytes() == before  # the old checkpoint is intact
    assert [p.name for p in tmp_path.iterdir()] == ["a.pt"]  # no temporary left


def test_missing_file_says_so(tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint at"):
        load_checkpoint(tmp_path / "nope.pt", net())
