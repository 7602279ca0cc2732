"""The league (benchmarks/league.py): each net's lr chosen on validation, one budget per
tier, several seeds, paired tests, costs; resumable."""

import dataclasses
import json
import math

import numpy as np
import pytest
import torch
from torch import nn

from benchmarks import league
from benchmarks.league import (
    BUDGETS,
    NETS,
    RECIPE,
    TIERS,
    Chunks,
    best_lr,
    estimate,
    front,
    league_path,
    league_table,
    main,
    next_lrs,
    pack_correct,
    paired_gaps,
    run_league,
    sweeps_path,
    unpack_correct,
)
from benchmarks.league_nets import LADDER, build, with_batchnorm
from d2lcnn import Recipe, count_flops, count_params, mean_interval


def batch_norms(net):
    return [m for m in net.modules() if isinstance(m, nn.BatchNorm2d | nn.BatchNorm1d)]


# --- the nets ---------------------------------------------------------------------------

@pytest.mark.parametrize("name", list(NETS))
def test_every_league_net_takes_its_tiers_images(name):
    size = TIERS[NETS[name].tier]
    net = build(name).eval()
    with torch.no_grad():
        assert net(torch.zeros(2, 1, size, size)).shape == (2, 10)
    assert NETS[name].bn == bool(batch_norms(net))
    assert set(NETS[name].lrs) <= set(LADDER) and len(NETS[name].lrs) == 3


@pytest.mark.parametrize("base", ["alexnet", "vgg11_r4", "nin", "googlenet"])
def test_a_bn_variant_is_its_net_plus_batch_norm_after_each_conv(base):
    plain, normed = build(base), build(f"{base}_bn")
    assert not batch_norms(plain) and f"{base}_bn" in NETS
    layers = [m for m in plain.modules() if isinstance(m, nn.Conv2d | nn.Linear)]
    convs = [m for m in layers if isinstance(m, nn.Conv2d) and m is not layers[-1]]
    assert [bn.num_features for bn in batch_norms(normed)] == [c.out_channels for c in convs]
    # one change only: the other parameters and the dropout stay as they were
    assert count_params(normed) - count_params(plain) == 2 * sum(c.out_channels for c in convs)
    dropouts = [m.p for m in plain.modules() if isinstance(m, nn.Dropout)]
    assert dropouts == [m.p for m in normed.modules() if isinstance(m, nn.Dropout)]


def test_the_default_league_holds_every_tier_and_the_bn_variants_the_issue_asks_for():
    from benchmarks.league import DEFAULT

    assert {NETS[n].tier for n in DEFAULT} == set(TIERS)
    assert {"vgg11_r4_bn", "nin_bn", "googlenet_bn"} <= set(DEFAULT) <= set(NETS)
    assert all(n.removesuffix("_bn") in NETS for n in NETS if n.endswith("_bn"))


def test_with_batchnorm_leaves_a_class_score_conv_plain_and_refuses_a_bn_net():
    net = with_batchnorm(nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Conv2d(4, 10, 1),
                                       nn.AdaptiveAvgPool2d(1), nn.Flatten()))
    assert isinstance(net[0][1], nn.BatchNorm2d) and isinstance(net[2], nn.Conv2d)
    with pytest.raises(ValueError, match="already has batch norm"):
        with_batchnorm(net)


def test_the_matched_tier_is_matched_in_parameters_and_sees_28_px():
    matched = [n for n in NETS if NETS[n].tier == "matched"]
    assert TIERS["matched"] == 28 and "resnet20" in matched and len(matched) >= 3
    reference = count_params(build("resnet20"))
    for name in matched:
        assert 0.75 < count_params(build(name)) / reference < 1.25, name


@pytest.mark.parametrize("name", ["mobilenet_v1", "mobilenet_v1_025"])
def test_mobilenets_training_flops_match_the_analytic_count(name):
    """Depthwise convolutions: C_in / groups = 1 input channel per filter."""
    size, net = TIERS[NETS[name].tier], build(name).eval()
    forward = []

    def hook(module, inputs, output):
        if isinstance(module, nn.Conv2d):
            k = module.kernel_size[0] * module.kernel_size[1]
            forward.append(2 * output[0].numel() * module.in_channels // module.groups * k)
        else:
            forward.append(2 * module.in_features * module.out_features)

    for m in net.modules():
        if isinstance(m, nn.Conv2d | nn.Linear):
            m.register_forward_hook(hook)
    with torch.no_grad():
        net(torch.zeros(1, 1, size, size))
    analytic = 3 * sum(forward) - forward[0]  # the images need no gradient
    counted = count_flops(build(name), (1, 1, size, size), backward=True)
    assert abs(counted / analytic - 1) < 0.10


# --- the budget ---------------------------------------------------------------------------

@pytest.mark.parametrize("budget", list(BUDGETS))
def test_each_tier_has_whole_steps_and_a_schedule_that_decays_to_zero(budget):
    spec = BUDGETS[budget]
    assert set(spec.tiers) == set(TIERS) and spec.seeds >= 2
    for tier in spec.tiers.values():
        assert tier.steps * tier.batch_size == tier.images * tier.passes
        assert tier.steps % tier.points == 0
        optimizer, scheduler = Recipe.of(RECIPE).optimizer(nn.Linear(2, 2), 1.0, tier.steps)
        lrs = []
        for _ in range(tier.steps):
            lrs.append(optimizer.param_groups[0]["lr"])
            optimizer.step()
            scheduler.step()
        peak = lrs.index(max(lrs))
        assert lrs[peak:] == sorted(lrs[peak:], reverse=True)  # down from the peak
        assert lrs[-1] < (0.001 if tier.steps > 100 else 0.1)  # ~0 by the last step


def test_the_cpu_budget_is_five_seeds_tuned_on_validation_with_he_init():
    spec = BUDGETS["cpu"]
    assert spec.seeds >= 5 and spec.valid == 5_000 and spec.test_subset is None
    assert spec.sweep_seed >= spec.seeds  # the sweep's runs are not final runs
    assert RECIPE["init"] == "kaiming" and spec.gate == 0.5


def test_chunks_cut_one_runs_batches_into_equal_slices():
    data = [(torch.full((2, 1), float(i)), torch.zeros(2)) for i in range(5)]
    chunks = Chunks(data, steps=6, points=3)
    seen = [[float(X[0, 0]) for X, _ in chunks] for _ in range(3)]
    assert len(chunks) == 2 and seen == [[0, 1], [2, 3], [4, 0]]  # a second pass follows
    assert chunks.images == [4, 4, 4]
    with pytest.raises(ValueError, match="multiple of points"):
        Chunks(data, steps=5, points=2)


def test_train_ch6_reads_the_validation_split_once_per_slice():
    from d2lcnn.data import FashionMNISTBatches
    from d2lcnn.train import train_ch6

    images, labels = torch.zeros(64, 28, 28, dtype=torch.uint8), torch.arange(64) % 10
    train = FashionMNISTBatches(images, labels, 16, shuffle=True, seed=0)
    valid = FashionMNISTBatches(images, labels, 16, split="valid")
    chunks = Chunks(train, steps=8, points=4)
    history = train_ch6(nn.Sequential(nn.Flatten(), nn.Linear(784, 10)), chunks, valid, 4,
                        0.1, "cpu", recipe=RECIPE, animator=False, verbose=False)
    assert len(history.test_acc) == 4 and chunks.images == [32] * 4
    assert history.settings["train_examples"] == 64  # the distinct images


@pytest.mark.parametrize("n", [1, 7, 8, 10_000])
def test_per_example_correctness_packs_into_bits_and_back(n):
    correct = np.random.default_rng(n).random(n) < 0.8
    packed = pack_correct(correct)
    assert len(packed) <= 4 * math.ceil(math.ceil(n / 8) / 3)
    assert (unpack_correct(packed, n) == correct).all()
    with pytest.raises(ValueError, match="fewer than"):
        unpack_correct(packed, n + 8)


# --- the sweep ----------------------------------------------------------------------------

def test_the_sweep_grows_by_a_rung_while_the_best_lr_is_at_an_edge():
    first = (0.02, 0.05, 0.1)
    assert next_lrs(first, {}, 2) == list(first)
    assert next_lrs(first, {0.02: 0.5}, 2) == [0.05, 0.1]
    assert next_lrs(first, {0.02: 0.5, 0.05: 0.7, 0.1: 0.6}, 2) == []  # inside: settled
    assert next_lrs(first, {0.02: 0.5, 0.05: 0.6, 0.1: 0.7}, 2) == [0.2]
    assert next_lrs(first, {0.02: 0.7, 0.05: 0.6, 0.1: None}, 2) == [0.01]
    assert next_lrs(first, {0.02: None, 0.05: None, 0.1: None}, 2) == [0.01]  # diverged
    grown = {0.02: 0.5, 0.05: 0.6, 0.1: 0.7, 0.2: 0.8, 0.5: 0.9}
    assert next_lrs(first, grown, 2) == []  # at most max_extensions rungs
    top = LADDER[-3:]
    assert next_lrs(top, dict(zip(top, (0.1, 0.2, 0.3))), 2) == []  # the ladder's end


def test_the_choice_is_lr_sweeps_rule():
    assert best_lr({0.1: 0.8, 0.05: 0.8, 0.2: None}) == 0.05  # a tie: the smaller lr
    assert best_lr({0.1: None, 0.2: 0.3}) == 0.2  # a diverged run is never chosen
    assert best_lr({0.1: None}) is None


# --- reading the results ------------------------------------------------------------------

def final_row(net, seed, correct, tier="book", lr=0.05):
    correct = np.asarray(correct, dtype=bool)
    return dict(kind="final", net=net, seed=seed, tier=tier, bn=False, status="completed",
                lr=lr, test_acc=float(correct.mean()), test_correct=pack_correct(correct),
                test_examples=correct.size, parameters=10, flops_per_example=100,
                train_seconds=5.0, peak_rss_training_bytes=1)


def correctness(right, seed, n=1000):
    order = np.random.default_rng(seed).permutation(n)
    correct = np.zeros(n, dtype=bool)
    correct[order[:right]] = True
    return correct


def test_the_table_gives_each_net_its_mean_interval_and_lowest_seed():
    accs = {0: 800, 1: 820, 2: 790}
    rows = [final_row("a", seed, correctness(right, seed)) for seed, right in accs.items()]
    rows.append(dict(final_row("a", 3, correctness(100, 3)), status="interrupted"))
    (t,) = league_table(rows)
    mean, half = mean_interval([right / 1000 for right in accs.values()])
    assert (t["net"], t["seeds"], t["min"]) == ("a", 3, 0.79)
    assert t["mean"] == pytest.approx(mean) and t["half_width"] == pytest.approx(half)
    assert t["left_chance"] and t["lr"] == 0.05


def test_a_gap_is_beyond_noise_only_when_seeds_and_test_images_both_say_so():
    rows = []
    for seed in range(5):
        base = correctness(800 + seed, seed)
        rows.append(final_row("strong", seed, base | correctness(900, 99 + seed)))
        rows.append(final_row("middle", seed, base))
        close = base.copy()  # always 2 test images fewer: no seed noise, too few images
        close[np.flatnonzero(base)[:2]] = False
        rows.append(final_row("close", seed, close))
    first, second = paired_gaps(rows, "book")
    assert (first["better"], first["worse"], first["beyond_noise"]) == ("strong", "middle",
                                                                       True)
    assert first["mcnemar_beyond"] == 5 and first["seeds"] == 5
    assert (second["better"], second["worse"]) == ("middle", "close")
    assert "beyond noise" in second["t_interval"] and second["mcnemar_beyond"] == 0
    assert second["beyond_noise"] is False
    assert "McNemar" in second["test"] and "t interval" in second["test"]


def test_the_front_holds_the_nets_no_other_beats_on_accuracy_and_cost():
    table = [dict(net="big", mean=0.92, flops_per_example=9),
             dict(net="small", mean=0.85, flops_per_example=1),
             dict(net="worse", mean=0.80, flops_per_example=3)]
    assert front(table) == ["small", "big"]


def test_the_estimate_counts_sweeps_seeds_and_latency_and_shares_the_workers():
    runs, alone = estimate("cpu", nets=["lenet", "resnet20"], workers=1)
    assert runs == 2 * (3 + BUDGETS["cpu"].seeds + 1)
    more, longer = estimate("cpu", nets=["lenet", "resnet20"], seeds=8, workers=1)
    assert more == runs + 2 * 3 and longer > alone
    assert estimate("cpu", nets=["lenet", "resnet20"], workers=2)[1] < alone


# --- running a league, with stand-in runs ------------------------------------------------

class FakeChild:
    """A run that ends at once: the sweep peaks at each net's middle lr."""

    started: list = []
    running = 0
    most = 0
    fail: set = set()  # these runs are interrupted (Ctrl-C)
    broken: set = set()  # these runs crash
    val_acc = None

    def __init__(self, job, budget, root, threads, cpu):
        self.job, self.budget, self.polls = job, budget, 0
        FakeChild.started.append(job)
        FakeChild.running += 1
        FakeChild.most = max(FakeChild.most, FakeChild.running)
        if league._key(job) in FakeChild.fail:
            raise KeyboardInterrupt

    def done(self):
        self.polls += 1
        if self.polls == 2:
            FakeChild.running -= 1
        return self.polls >= 2

    def row(self):
        if league._key(self.job) in FakeChild.broken:
            raise RuntimeError("exit 1:\nboom")
        job, spec = self.job, BUDGETS[self.budget]
        net = NETS[job["net"]]
        common = dict(net=job["net"], tier=net.tier, bn=net.bn, status="completed",
                      spec=spec.spec(net.tier), wall_seconds=1.0, precision="fp32",
                      channels_last=False, train_seconds=1.0, images_seen=256)
        if job["kind"] == "sweep":
            accs = FakeChild.val_acc or (lambda name, lr: 0.9 - abs(
                math.log(lr / net.lrs[1])))
            return dict(common, kind="sweep", lr=job["lr"], val_acc=accs(job["net"], job["lr"]))
        if job["kind"] == "cost":
            return dict(kind="cost", net=job["net"], latency_ms={
                "fp32": {"1": 1.0, "64": 9.0}, "bf16": {"1": 2.0, "64": 5.0}})
        correct = correctness(150, job["seed"], n=200)
        return {**final_row(job["net"], job["seed"], correct, net.tier, job["lr"]),
                **common, "selected_on": "validation"}

    def stop(self):
        pass


@pytest.fixture
def fake(monkeypatch):
    monkeypatch.setattr(league, "_Child", FakeChild)
    monkeypatch.setattr(league, "_check_data", lambda budget, root: "stand-in data")
    FakeChild.started, FakeChild.running, FakeChild.most = [], 0, 0
    FakeChild.fail, FakeChild.broken, FakeChild.val_acc = set(), set(), None
    return FakeChild


def test_finals_train_the_lr_chosen_on_validation_on_every_seed(tmp_path, fake):
    rows = run_league("smoke", nets=["lenet", "lenet_bn"], directory=tmp_path)
    kinds = [job["kind"] for job in fake.started]
    assert kinds == ["sweep"] * 6 + ["final"] * 4 + ["cost"] * 2  # sweeps first, latency last
    assert fake.most <= 2
    for row in rows:
        assert row["lr"] == NETS[row["net"]].lrs[1] and row["selected_on"] == "validation"
        assert row["sweep"]["lrs"] == list(NETS[row["net"]].lrs)
        assert row["sweep"]["chosen"] == row["lr"] and row["latency_ms"]["fp32"]["64"] == 9
    t = league_table([r for r in rows if r["net"] == "lenet"])
    assert (t[0]["latency_ms_1"], t[0]["latency_format_1"]) == (1.0, "fp32")
    assert (t[0]["latency_ms_64"], t[0]["latency_format_64"]) == (5.0, "bf16")
    assert sorted((r["net"], r["seed"]) for r in rows) == [
        ("lenet", 0), ("lenet", 1), ("lenet_bn", 0), ("lenet_bn", 1)]
    assert json.loads(league_path("smoke", tmp_path).read_text()) == rows
    assert len(json.loads(sweeps_path("smoke", tmp_path).read_text())) == 6


def test_the_first_sweep_run_of_a_net_chooses_the_format_the_others_reuse(tmp_path, fake):
    run_league("smoke", nets=["lenet"], directory=tmp_path, workers=2)
    formats = [job["format"] for job in fake.started if job["kind"] == "sweep"]
    assert formats == [None, ["fp32", False], ["fp32", False]]
    assert all(job["format"] == ["fp32", False] for job in fake.started[3:])


def test_a_finished_league_is_not_trained_again(tmp_path, fake, monkeypatch):
    rows = run_league("smoke", nets=["lenet_bn"], directory=tmp_path)

    def must_not_run(*args):
        raise AssertionError("a recorded run was trained again")

    monkeypatch.setattr(league, "_Child", must_not_run)
    assert run_league("smoke", nets=["lenet_bn"], directory=tmp_path) == rows


def test_an_interrupted_league_keeps_its_finished_runs(tmp_path, fake):
    fake.fail = {("final", "lenet_bn", 1)}
    with pytest.raises(KeyboardInterrupt):
        run_league("smoke", nets=["lenet_bn"], directory=tmp_path, workers=1)
    saved = json.loads(league_path("smoke", tmp_path).read_text())
    assert [(r["net"], r["seed"]) for r in saved] == [("lenet_bn", 0)]
    fake.fail, fake.started = set(), []
    run_league("smoke", nets=["lenet_bn"], directory=tmp_path, workers=1)
    assert [(j["kind"], j.get("seed")) for j in fake.started] == [("final", 1), ("cost", None)]


def test_a_sweep_at_an_edge_grows_and_the_finals_wait_for_it(tmp_path, fake, monkeypatch):
    monkeypatch.setitem(league.BUDGETS, "smoke",
                        dataclasses.replace(BUDGETS["smoke"], max_extensions=2))
    fake.val_acc = lambda name, lr: 0.5 + lr / 10  # better and better upwards
    rows = run_league("smoke", nets=["lenet_bn"], directory=tmp_path)
    sweeps = [job["lr"] for job in fake.started if job["kind"] == "sweep"]
    assert sweeps == [0.1, 0.2, 0.5, 1.0, 2.0]  # two rungs beyond the first grid, no more
    assert {row["lr"] for row in rows} == {2.0}
    assert rows[0]["sweep"]["lrs"] == sweeps


def test_a_tier_whose_sweep_stays_at_chance_gets_no_final_runs(tmp_path, fake, monkeypatch,
                                                               capsys):
    monkeypatch.setitem(league.BUDGETS, "smoke",
                        dataclasses.replace(BUDGETS["smoke"], gate=0.5))
    fake.val_acc = lambda name, lr: 0.1 if name == "lenet" else 0.8
    assert run_league("smoke", nets=["lenet", "lenet_bn", "resnet20"],
                      directory=tmp_path) != []
    ran = {(job["kind"], job["net"]) for job in fake.started}
    assert ("final", "resnet20") in ran
    assert ("final", "lenet") not in ran and ("final", "lenet_bn") not in ran
    assert "BUDGET TOO SMALL for tier lenet: lenet (best val acc 0.100)" in (
        capsys.readouterr().out)


def test_a_failed_run_is_reported_and_retried_next_time(tmp_path, fake, capsys):
    fake.broken = {("final", "lenet", 0)}
    rows = run_league("smoke", nets=["lenet"], directory=tmp_path)
    assert [r["seed"] for r in rows] == [1]
    assert "run failed: final lenet seed 0: exit 1:\nboom" in capsys.readouterr().out
    fake.broken, fake.started = set(), []
    rows = run_league("smoke", nets=["lenet"], directory=tmp_path)
    assert sorted(r["seed"] for r in rows) == [0, 1]
    assert [job["kind"] for job in fake.started] == ["final", "cost"]


# --- mistakes -----------------------------------------------------------------------------

def test_bad_budget_nets_or_seeds_are_named_before_anything_runs(tmp_path):
    with pytest.raises(ValueError, match="unknown budget 'gpu'; choose one of cpu"):
        run_league("gpu", directory=tmp_path)
    with pytest.raises(ValueError, match=r"not league nets: \['resnet50'\]"):
        run_league("smoke", nets=["resnet50"], directory=tmp_path)
    with pytest.raises(ValueError, match="seeds must be a positive integer, got 0"):
        run_league("smoke", seeds=0, directory=tmp_path)
    with pytest.raises(ValueError, match="unknown league net 'vgg11'"):
        build("vgg11")
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("text, says", [
    ("{not json", "not a league results file"),
    ('[{"net": "lenet", "seed": 0, "status": "completed"}]', "written by an older league"),
])
def test_a_damaged_or_older_results_file_is_refused_not_replaced(tmp_path, text, says):
    path = league_path("smoke", tmp_path)
    path.write_text(text)
    with pytest.raises(ValueError, match=says):
        run_league("smoke", nets=["lenet"], directory=tmp_path)
    assert path.read_text() == text


def test_runs_of_another_budget_are_never_mixed_in(tmp_path, fake, monkeypatch):
    run_league("smoke", nets=["lenet"], directory=tmp_path)
    bigger = dataclasses.replace(BUDGETS["smoke"], tiers={
        tier: dataclasses.replace(t, images=512) for tier, t in BUDGETS["smoke"].tiers.items()})
    monkeypatch.setitem(league.BUDGETS, "smoke", bigger)
    with pytest.raises(ValueError, match="holds runs of another smoke budget"):
        run_league("smoke", nets=["lenet"], directory=tmp_path)


def test_the_command_line_answers_mistakes_without_a_traceback(tmp_path, capsys,
                                                               monkeypatch):
    for argv in (["--budget", "gpu"], ["--seeds", "0"], ["--nets", "resnet50"],
                 ["--nets", "lenet", "--tiers", "book"]):
        with pytest.raises(SystemExit) as exit_:
            main(argv)
        assert exit_.value.code == 2
    assert "Traceback" not in capsys.readouterr().err
    a_file = tmp_path / "a-file"
    a_file.write_text("")
    assert main(["--budget", "smoke", "--out", str(a_file)]) == 2
    damaged = tmp_path / "damaged"
    damaged.mkdir()
    league_path("smoke", damaged).write_text("{not json")
    assert main(["--budget", "smoke", "--out", str(damaged)]) == 2
    err = capsys.readouterr().err
    assert err.count("error: ") == 2 and "Traceback" not in err


def test_the_plan_prints_the_budget_and_an_estimate_and_trains_nothing(tmp_path, capsys,
                                                                       monkeypatch):
    def must_not_run(*args):
        raise AssertionError("--plan trained")

    monkeypatch.setattr(league, "_Child", must_not_run)
    assert main(["--budget", "cpu", "--plan", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "estimated" in out and all(f"{tier}: {TIERS[tier]} px" in out for tier in TIERS)
    assert not list(tmp_path.iterdir())


# --- a real league, on the mini set -------------------------------------------------------

@pytest.mark.slow
def test_a_smoke_league_records_what_a_reader_needs(tmp_path, monkeypatch):
    rows = run_league("smoke", nets=["lenet_bn"], directory=tmp_path, workers=2)
    spec = BUDGETS["smoke"]
    tier = spec.tiers["lenet"]
    assert sorted(r["seed"] for r in rows) == list(range(spec.seeds))
    for row in rows:
        assert row["status"] == "completed" and row["selected_on"] == "validation"
        assert row["sweep"]["lrs"] == list(NETS["lenet_bn"].lrs)
        assert row["lr"] == best_lr(dict(zip(row["sweep"]["lrs"], row["sweep"]["val_acc"])))
        correct = unpack_correct(row["test_correct"], row["test_examples"])
        assert correct.size == spec.test_subset and row["test_acc"] == correct.mean()
        assert np.trace(row["confusion"]) == correct.sum()
        assert np.sum(row["confusion"]) == row["test_examples"]
        curve = row["val_curve"]
        assert len(curve["val_acc"]) == tier.points and curve["images"][-1] == tier.images
        assert curve["training_flops"][-1] == row["training_flops"] > 0
        assert np.all(np.diff(curve["train_seconds"]) > 0)
        assert all(set(t) == {"1", "64"} for t in row["latency_ms"].values())
        assert "fp32" in row["latency_ms"] and row["parameters"] > 0
        assert row["data_source"] == "mini" and row["cpu_model"] and row["d2lcnn"]
        assert row["threads"] == 1 and row["spec"] == spec.spec("lenet")

    def must_not_run(*args):
        raise AssertionError("a recorded run was trained again")

    monkeypatch.setattr(league, "_Child", must_not_run)
    assert run_league("smoke", nets=["lenet_bn"], directory=tmp_path) == rows
