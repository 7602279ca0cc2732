"""DDP through torchrun: 2 gloo processes on this CPU train as one process does."""

import os
import subprocess
from pathlib import Path

import pytest
import torch
from torch import nn

import d2lcnn as d2l
from d2lcnn.data import FashionMNISTBatches
from d2lcnn.distributed import RankShard, train_ddp
from d2lcnn.recipe import xavier_init

HERE = Path(__file__).resolve().parent
RUN = dict(num_epochs=1, lr=0.1, batch_size=64, subset=512, test_subset=128, source="mini",
           seed=0, animator=False, verbose=False)


@pytest.fixture(autouse=True)
def importable_nets(monkeypatch):
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]))
    monkeypatch.syspath_prepend(str(HERE))


def _children() -> list[str]:
    """Processes this test process started that are still alive (not zombies)."""
    out = subprocess.run(["ps", "-o", "pid=,stat=,args=", "--ppid", str(os.getpid())],
                         capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if " Z" not in line and "ps -o" not in line]


def _leftover(history) -> list[str]:
    """torchrun or a rank of this run still alive (their command lines name its folder)."""
    out = subprocess.run(["ps", "-eo", "pid=,args="], capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if history.settings["run_folder"] in line]


def test_two_processes_match_one(tmp_path):
    import ddp_nets

    history = train_ddp("ddp_nets:tiny", nproc=2, checkpoint=tmp_path / "two.pt", **RUN)
    assert history.status == "completed", history.message
    assert len(history) == 1 and history.points["train loss"][0]  # rank 0's points came
    assert history.settings["data_source"] == "mini"  # so save_result refuses to record it
    two = torch.load(tmp_path / "two.pt", weights_only=False)["model"]

    torch.manual_seed(0)  # the same run in this process: one rank of one, plain train_ch6
    train, test = d2l.load_data_fashion_mnist(64, subset=512, test_subset=128,
                                              source="mini", seed=0, verbose=False)
    net = ddp_nets.tiny()
    net.apply(xavier_init)
    one = d2l.train_ch6(net, RankShard(train, 0, 1, seed=0), RankShard(test, 0, 1,
                        shuffle=False), 1, 0.1, "cpu", init=None, animator=False,
                        verbose=False, channels_last=False)
    for name, value in net.state_dict().items():
        torch.testing.assert_close(two[name], value, atol=1e-5, rtol=1e-4)
    assert history.test_acc[0] == pytest.approx(one.test_acc[0], abs=1 / 128)
    assert not _children() and not _leftover(history)


def test_a_rank_that_raises_ends_the_run_with_its_error():
    with pytest.raises(RuntimeError, match="on rank 1: ValueError: rank 1 broke on purpose"
                       ) as failed:
        train_ddp("ddp_nets:failing", nproc=2, **RUN)
    assert failed.value.history.status == "failed"
    assert not _children() and not _leftover(failed.value.history)


@pytest.mark.parametrize("how", ["stopped", "interrupted"])
def test_stop_and_ctrl_c_end_every_rank(how):
    history = d2l.History()

    def stop():  # the panel's Stop, or Ctrl-C in the kernel, once rank 0's first point came
        if history.points["train loss"][0] and how == "interrupted":
            raise KeyboardInterrupt
        return bool(history.points["train loss"][0])
    train_ddp("ddp_nets:tiny", nproc=2, history=history, stop=stop,
              **{**RUN, "num_epochs": 50})
    assert history.status == how and len(history) < 50
    assert not _children() and not _leftover(history)


def test_a_net_from_a_cell_is_refused_with_the_way_out():
    net = nn.Sequential(nn.Flatten(), nn.Linear(784, 10))
    train, test = d2l.load_data_fashion_mnist(64, subset=128, test_subset=64, source="mini",
                                              verbose=False)
    with pytest.raises(TypeError, match="registry name"):
        d2l.train_ch6(net, train, test, 1, 0.1, devices=[torch.device("cpu")] * 2)


def test_rank_shards_cover_each_epoch_once():
    images = torch.arange(10, dtype=torch.uint8).view(10, 1, 1).expand(10, 2, 2).contiguous()
    batches = FashionMNISTBatches(images, torch.arange(10), 4)
    shards = [RankShard(batches, rank, 2, seed=3) for rank in range(2)]
    seen = [torch.cat([y for _, y in shard]) for shard in shards]
    assert [len(shard) for shard in shards] == [3, 3] and sorted(torch.cat(seen).tolist()) == \
        list(range(10))
    one = torch.cat([y for _, y in RankShard(batches, 0, 1, seed=3)])
    assert torch.equal(torch.stack(seen, 1).flatten(), one)  # interleaved: the same order


def test_a_validation_split_is_not_sent_to_several_devices():
    train_iter, valid_iter, _ = d2l.load_data_fashion_mnist(64, subset=512, valid=600,
                                                            source="mini", verbose=False)
    with pytest.raises(ValueError, match="evaluates on the test set, but got the 'valid'"):
        d2l.train_ch6("lenet", train_iter, valid_iter, 1, 0.1,
                      devices=[torch.device("cpu")] * 2)


def test_a_data_parallel_run_names_its_devices():
    from d2lcnn.utils import cpu_model, device_name

    assert device_name("2 x cpu") == cpu_model()  # what save_result records
