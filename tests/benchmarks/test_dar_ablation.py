"""The DAR ablation harness at toy size: statistics by hand, output structure, resumption."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import shutil

import pytest

from benchmarks import dar_ablation as ab
from benchmarks.ablation import base_tuning, search
from benchmarks.ablation import cells as ac
from benchmarks.ablation import statistics as st


def test_paired_difference_matches_a_hand_computation() -> None:
    treated = {0: 91.0, 1: 93.5, 2: 92.0, 7: 50.0}  # seed 7 has no partner: ignored
    control = {0: 90.0, 1: 91.5, 2: 92.0, 3: 10.0}
    mean, std, half, n = st.paired_difference(treated, control)
    # d = (1.0, 2.0, 0.0): mean 1, sample std 1, t(0.975, 2) = 4.303, half = 4.303 / sqrt(3)
    assert n == 3
    assert mean == pytest.approx(1.0)
    assert std == pytest.approx(1.0)
    assert half == pytest.approx(4.303 / math.sqrt(3), rel=1e-9)
    assert math.isnan(st.paired_difference({0: 1.0}, {0: 0.5})[2])  # one seed: no interval


def test_grid_and_finalist_selection() -> None:
    cells = ac.grid(["npair"], ["signed", "abs"], ["l2", "l1"], ["exact", "chain"], ["l2"])
    keys = [c.key for c in cells]
    assert keys[0] == "npair/baseline"
    assert "npair/abs/l1/exact" in keys and "npair/abs/l1/chain" not in keys
    assert len(cells) == 1 + 2 * (2 + 1)
    assert all(ac.Cell.from_key(k).key == k for k in keys)
    plan = search.Plan("digits", None, cells, [0.1, 1.0], [1e-3], 5, 2)  # type: ignore[arg-type]
    val = {
        "npair/signed/l2/exact": {0.1: 0.50, 1.0: 0.55},
        "npair/signed/l2/chain": {0.1: 0.56, 1.0: 0.40},
        "npair/signed/l1/exact": {0.1: 0.30, 1.0: 0.20},
        "npair/abs/l2/exact": {0.1: 0.52, 1.0: 0.10},
        "npair/abs/l2/chain": {0.1: 0.51, 1.0: 0.10},
        "npair/abs/l1/exact": {0.1: 0.10, 1.0: 0.53},
        "npair/baseline": {1e-3: 0.45},
    }
    screen = {k: {v: {"val_map@r": s} for v, s in runs.items()} for k, runs in val.items()}
    chosen, finalists = search.select(plan, screen)
    assert chosen["npair/signed/l2/exact"] == 1.0 and chosen["npair/abs/l1/exact"] == 1.0
    # best signed cell 0.56 (chain l2, lambda 0.1), best abs 0.53 (exact l1, lambda 1)
    assert finalists == {"npair": ["npair/signed/l2/chain", "npair/abs/l1/exact"]}


def test_dar_cells_train_at_the_baseline_lr_and_only_finalists_get_more_lambdas() -> None:
    """``--dar-at-baseline-lr``: every DAR cell of a base trains at the lr its baseline chose
    on validation (baselines screened first); ``--tune-lambdas``: only the finalists are
    trained at the extra lambdas, and they keep the best one."""
    from dasl.config import load_config

    base_cfg = load_config(packaged="fmnist_demo")
    cells = ac.grid(["npair"], ["signed", "abs"], ["l2"], ["exact"], None)
    plan = search.Plan("digits", base_cfg, cells, [1.0], [1e-3, 1e-2], 2, 1, [], [0.3, 3.0], True)
    calls: list[tuple[str, float, int]] = []
    val = {  # validation MAP@R by (cell, tuning value)
        ("npair/baseline", 1e-3): 0.40,
        ("npair/baseline", 1e-2): 0.45,
        ("npair/signed/l2/exact", 1.0): 0.50,
        ("npair/abs/l2/exact", 1.0): 0.30,
        ("npair/signed/l2/exact", 0.3): 0.55,
        ("npair/signed/l2/exact", 3.0): 0.20,
    }

    def fetch(tid: str, cfg):  # type: ignore[no-untyped-def]
        key = tid.split("__v")[0].replace("__", "/")
        value = cfg.optim.lr if key.endswith("baseline") else cfg.dar.lam
        calls.append((key, cfg.optim.lr, cfg.seed))
        test = {"recall@1": 0.0, "map@r": 0.0}
        return {"val_map@r": val[(key, value)], "test": test, "best_epoch": 0, "step_s": 0.1,
                "seconds": 1.0}  # fmt: skip

    result = search.execute(plan, fetch, log=lambda s: None)
    screened = [(k, lr) for k, lr, seed in calls if seed == 0]
    # Baselines first; every DAR run at the baseline's chosen lr (1e-2), never the config's.
    assert screened[:2] == [("npair/baseline", 1e-3), ("npair/baseline", 1e-2)]
    assert all(lr == 1e-2 for k, lr, _ in calls if not k.endswith("baseline"))
    assert result["finalists"] == {"npair": ["npair/signed/l2/exact"]}
    # The extra lambdas ran for the finalist only; it keeps lambda 0.3 (0.55 > 0.50 > 0.20).
    assert set(result["screen"]["npair/signed/l2/exact"]) == {0.3, 1.0, 3.0}
    assert set(result["screen"]["npair/abs/l2/exact"]) == {1.0}
    assert result["chosen"]["npair/signed/l2/exact"] == 0.3
    assert sorted(result["finals"]["npair/signed/l2/exact"]) == [0, 1]

    # --final-seeds: this process trains only seed 1 of the finals (another takes seed 0).
    calls.clear()
    plan.final_seeds = [1]
    result = search.execute(plan, fetch, log=lambda s: None)
    assert sorted(result["finals"]["npair/signed/l2/exact"]) == [1]
    assert {seed for _, _, seed in calls} == {0, 1}  # 0: the screening runs


@pytest.mark.parametrize(
    ("v", "up", "expected"),
    [(3.0, True, 10.0), (1.0, True, 3.0), (0.1, False, 0.03), (0.03, False, 0.01),
     (0.3, False, 0.1), (0.5, True, 1.0), (0.5, False, 0.3), (1e-3, False, 3e-4)],
)  # fmt: skip
def test_series_step_walks_the_1_3_series(v: float, up: bool, expected: float) -> None:
    assert search.series_step(v, up) == expected  # exactly: a cached config must compare equal


def test_extend_edges_steps_past_an_edge_until_the_best_is_inside() -> None:
    """``--extend-edges``: a finalist whose best lambda is the largest tried gets 10, then 30,
    and stops once the best is inside; one whose best is inside gets nothing; the budget caps
    the steps; the chosen lambda is the best over everything tried."""
    from dasl.config import load_config

    cells = ac.grid(["npair"], ["signed", "abs"], ["l2"], ["exact"], None)
    plan = search.Plan(
        "digits", load_config(packaged="fmnist_demo"), cells, [1.0, 3.0], [1e-3], 1, 2,
        extend_edges=3,
    )  # fmt: skip
    val = {
        ("npair/baseline", 1e-3): 0.40,
        ("npair/signed/l2/exact", 1.0): 0.50,
        ("npair/signed/l2/exact", 3.0): 0.52,  # edge: best at the top
        ("npair/signed/l2/exact", 10.0): 0.56,  # still the top: one more
        ("npair/signed/l2/exact", 30.0): 0.30,  # inside now: stop
        ("npair/abs/l2/exact", 1.0): 0.45,  # best at the bottom edge
        ("npair/abs/l2/exact", 3.0): 0.41,
        ("npair/abs/l2/exact", 0.3): 0.46,
        ("npair/abs/l2/exact", 0.1): 0.47,
        ("npair/abs/l2/exact", 0.03): 0.48,  # budget of 3 spent although still at the edge
    }
    tried: list[tuple[str, float]] = []

    def fetch(tid: str, cfg):  # type: ignore[no-untyped-def]
        key = tid.split("__v")[0].replace("__", "/")
        value = cfg.optim.lr if key.endswith("baseline") else cfg.dar.lam
        tried.append((key, value))
        return {"val_map@r": val[(key, value)], "test": {"recall@1": 0.0, "map@r": 0.0},
                "best_epoch": 0, "step_s": 0.1, "seconds": 1.0}  # fmt: skip

    result = search.execute(plan, fetch, log=lambda s: None)
    assert set(result["screen"]["npair/signed/l2/exact"]) == {1.0, 3.0, 10.0, 30.0}
    assert set(result["screen"]["npair/abs/l2/exact"]) == {0.03, 0.1, 0.3, 1.0, 3.0}
    assert result["chosen"] == {
        "npair/baseline": 1e-3, "npair/signed/l2/exact": 10.0, "npair/abs/l2/exact": 0.03
    }  # fmt: skip
    assert ("npair/signed/l2/exact", 10.0) in tried and ("npair/abs/l2/exact", 0.01) not in tried


def test_smoke_run_on_digits_writes_tables_json_plots_and_resumes(tmp_path, monkeypatch) -> None:
    argv = [
        "--datasets", "digits", "--bases", "proxyanchor", "--differences", "signed",
        "--measures", "l2sq", "--estimators", "chain", "--lambdas", "1", "--seeds", "1",
        "--finalists", "1", "--threads", "1", "--out", str(tmp_path),
        "data.batches_per_epoch=2", "data.eval_max_per_class=40",
    ]  # fmt: skip
    assert ab.main(argv) == 0
    out = json.loads((tmp_path / "dar_ablation.json").read_text())
    ds = out["datasets"]["digits"]
    assert ds["cells"] == ["proxyanchor/baseline", "proxyanchor/signed/l2sq/chain"]
    assert ds["finalists"] == {"proxyanchor": ["proxyanchor/signed/l2sq/chain"]}
    base = ds["finals"]["proxyanchor/baseline"]["0"]
    dar = ds["finals"]["proxyanchor/signed/l2sq/chain"]["0"]
    for rec in (base, dar):
        assert set(rec["test"]) >= {"recall@1", "map@r", "nmi"}
        assert [e["epoch"] for e in rec["epochs"]] == [0, 1]
        assert all(0 <= e["train_map@r"] <= 1 and 0 <= e["val_map@r"] <= 1 for e in rec["epochs"])
        assert rec["interclass"]["cv"] == pytest.approx(
            rec["interclass"]["std"] / rec["interclass"]["mean"]
        )
        assert rec["gap_map@r"] == pytest.approx(rec["train_map@r"] - rec["test"]["map@r"])
        assert rec["steps"] == 4 and rec["step_s"] > 0
    row = ds["summary"]["proxyanchor/signed/l2sq/chain"]
    delta = row["delta_recall@1"]
    assert delta[0] == pytest.approx(100 * (dar["test"]["recall@1"] - base["test"]["recall@1"]))
    assert delta[3] == 1 and math.isnan(delta[2])
    md = (tmp_path / "dar_ablation.md").read_text()
    assert "proxyanchor/signed/l2sq/chain" in md and "train-class MAP@R" in md
    for plot in ds["plots"]:
        assert (tmp_path / plot).stat().st_size > 1000
    assert {"dar_ablation_digits_forest.png", "dar_ablation_digits_overfit.png"} <= set(ds["plots"])

    # A second run trains nothing: every trial comes from the cache.
    def no_training(*args, **kwargs):
        raise AssertionError("a cached trial was trained again")

    monkeypatch.setattr("dasl.training.run.train_variant", no_training)
    for extra in ([], ["--report-only"]):
        assert ab.main(argv + extra) == 0
        again = json.loads((tmp_path / "dar_ablation.json").read_text())["datasets"]["digits"]
        assert json.dumps(again["summary"]) == json.dumps(ds["summary"])
        assert again["screen"].keys() == ds["screen"].keys()

    # The run folder: a manifest of the run, and a summary holding every trial the report is
    # made from (config included), from which --report-only rebuilds it without the cache.
    info = json.loads((tmp_path / "manifest.json").read_text())
    assert info["command"].startswith("python -m benchmarks.dar_ablation --datasets digits")
    assert set(info) >= {"command", "commit", "date", "machine", "load"}
    summary = json.loads((tmp_path / "dar_ablation_summary.json").read_text())
    trials = summary["datasets"]["digits"]["trials"]
    listed = {r["trial"] for part in ("screen", "finals") for runs in ds[part].values()
              for r in runs.values()}  # fmt: skip
    assert set(trials) == listed and len(listed) == 2
    assert all("config" in rec for rec in trials.values())
    md = (tmp_path / "dar_ablation.md").read_text()
    shutil.rmtree(tmp_path / "dar_ablation_cache")
    (tmp_path / "dar_ablation.md").unlink()
    assert ab.main([*argv, "--report-only"]) == 0
    assert (tmp_path / "dar_ablation.md").read_text() == md
    again = json.loads((tmp_path / "dar_ablation.json").read_text())["datasets"]["digits"]
    assert json.dumps(again["summary"]) == json.dumps(ds["summary"])
    # A trial whose config differs from the one asked for is not taken from the summary.
    other = [*argv[:-2], "--report-only", "data.batches_per_epoch=3", "data.eval_max_per_class=40"]
    assert ab.main(other) == 0
    empty = json.loads((tmp_path / "dar_ablation.json").read_text())["datasets"]
    assert empty == {} or not empty["digits"]["finals"]


def test_bad_variant_is_one_line_and_status_2(capsys) -> None:
    assert ab.main(["--plan", "--measure-stage", "l3/exact"]) == 2
    out = capsys.readouterr().err
    assert out.count("\n") == 1 and "l3/exact" in out and "MEASURE/ESTIMATOR" in out


def test_control_cells_and_base_options_round_trip_into_configs() -> None:
    """#18: ``BASE/control/KIND`` cells set ``dar.kind`` at the base's lr; a base with options
    (``proxyanchor~alpha16~margin0``) sets ``loss.alpha``/``loss.margin``; the untuned base
    keeps the plain name, and its configs match the runs cached before ``dar.kind`` existed."""
    from dasl.config import load_config

    base_cfg = load_config(packaged="fmnist_demo")
    ctl = ac.Cell("proxyanchor", control="compact_inter")
    assert ctl.key == "proxyanchor/control/compact_inter" and not ctl.is_baseline
    assert ac.Cell.from_key(ctl.key) == ctl
    cfg = ac.trial_config(base_cfg, ctl, 3.0, 2, lr=0.01)
    assert (cfg.dar.kind, cfg.dar.lam, cfg.optim.lr, cfg.seed) == ("compact_inter", 3.0, 0.01, 2)
    assert ac.parse_base("proxyanchor~alpha16~margin0") == (
        "proxyanchor",
        {"alpha": 16.0, "margin": 0.0},
    )
    assert (
        ac.base_name("proxyanchor", {"margin": 0.2, "alpha": 8.0}) == "proxyanchor~alpha8~margin0.2"
    )
    tuned = ac.Cell("proxyanchor~alpha16")
    cfg = ac.trial_config(base_cfg, tuned, 0.01, 0)
    assert (cfg.loss.alpha, cfg.loss.margin, cfg.dar.lam) == (16.0, None, 0.0)
    plain = ac.comparable(ac.trial_config(base_cfg, ac.Cell("proxyanchor"), 0.01, 0))
    # keys added after runs were cached drop out at their defaults, on both sides
    assert "kind" not in plain["dar"] and "scale" not in plain["loss"]
    stored = json.loads(json.dumps(plain))
    stored["loss"]["scale"], stored["dar"]["kind"] = None, "dar"  # a record written with them
    assert ac.normalized(stored) == plain
    assert ac.comparable(cfg)["loss"]["alpha"] == 16.0
    with pytest.raises(ValueError, match="unknown option"):
        ac.parse_base("proxyanchor~beta3")
    with pytest.raises(ValueError, match="OPTION=V1,V2"):
        base_tuning.parse_base_grid(["gamma=1,2"])


def _fake_fetch(val: dict[tuple[str, float], float], calls: list):  # type: ignore[no-untyped-def]
    def fetch(tid: str, cfg):  # type: ignore[no-untyped-def]
        key = tid.split("__v")[0].replace("__", "/")
        value = cfg.optim.lr if key.endswith("baseline") else cfg.dar.lam
        calls.append((key, value, cfg.seed))
        score = val.get((key, value), 0.1)
        return {"val_map@r": score, "test": {"recall@1": 0.5, "map@r": score, "nmi": 0.5},
                "best_epoch": 0, "step_s": 0.1, "seconds": 1.0, "gap_map@r": 0.0,
                "interclass": {"mean": 1.0, "std": 0.1, "cv": 0.1}}  # fmt: skip

    return fetch


def _tune(
    base: str, lr: float, scores: dict[str, float], grid: list[str], extend_edges: int = 0
) -> tuple[list[str], str]:
    """Tune ``base`` on fake validation ``scores`` (per base variant): the variants tried, in
    order, and the one chosen."""
    from dasl.config import load_config

    plan = search.Plan(
        "digits", load_config(packaged="fmnist_demo"), [ac.Cell(base)], [1.0], [lr], 1, 1
    )
    plan.extend_edges = extend_edges
    val = {(f"{b}/baseline", lr): v for b, v in scores.items()}
    calls: list = []
    parsed = base_tuning.parse_base_grid(grid)
    out = base_tuning.tune_bases(plan, parsed, _fake_fetch(val, calls), log=lambda s: None)
    return [k.split("/")[0] for k, _, _ in calls], out[base]["chosen"]


def test_controls_are_tuned_like_finalists_and_run_the_finals() -> None:
    from dasl.config import load_config

    base_cfg = load_config(packaged="fmnist_demo")
    cells = ac.grid(["proxyanchor"], ["signed"], ["l2sq"], ["exact"], None)
    cells.append(ac.Cell("proxyanchor", control="compact_inter"))
    plan = search.Plan(
        "digits", base_cfg, cells, [0.1, 1.0], [0.01], 2, 1, [], [3.0], True, None, 1
    )
    ctl = "proxyanchor/control/compact_inter"
    val = {(ctl, 0.1): 0.2, (ctl, 1.0): 0.3, (ctl, 3.0): 0.4, (ctl, 10.0): 0.35}
    calls: list = []
    result = search.execute(plan, _fake_fetch(val, calls), log=lambda s: None)
    # screened on the grid, tuned on --tune-lambdas, one edge step past 3 (best at the edge),
    # then the seed-0 final at the chosen 3 (a cache hit in a real run: the same trial)
    assert [v for k, v, s in calls if k == ctl and s == 0] == [0.1, 1.0, 3.0, 10.0, 3.0]
    assert result["chosen"][ctl] == 3.0
    assert result["finalists"] == {"proxyanchor": ["proxyanchor/signed/l2sq/exact"]}
    assert sorted(result["finals"][ctl]) == [0, 1]
    rows = st.summarize(result)
    assert rows[ctl]["delta_map@r"][3] == 2  # paired with the baseline's seeds
    pairs = st.contrast_pairs(result)
    dar = "proxyanchor/signed/l2sq/exact"
    assert (dar, ctl) in pairs and (ctl, "proxyanchor/baseline") in pairs
    contrast = st.contrasts(result, pairs)
    # the fake runs score 0.4 (control, lambda 3) and 0.1 (DAR): every seed differs by -30
    row = next(r for r in contrast if (r["treated"], r["control"]) == (dar, ctl))
    assert row["map@r"]["mean"] == pytest.approx(-30.0) and row["map@r"]["n"] == 2
    assert row["comparisons"] == 3 * len(pairs)


def test_base_tuning_one_option_at_a_time_then_together() -> None:
    scores = {
        "proxyanchor": 0.50,
        "proxyanchor~alpha16": 0.55,
        "proxyanchor~alpha64": 0.40,
        "proxyanchor~margin0.2": 0.52,
        "proxyanchor~margin0": 0.45,
        "proxyanchor~alpha16~margin0.2": 0.54,
    }
    tried, chosen = _tune("proxyanchor", 0.01, scores, ["alpha=16,64", "margin=0,0.2"])
    assert tried == [
        "proxyanchor",
        "proxyanchor~alpha16",
        "proxyanchor~alpha64",
        "proxyanchor~margin0",
        "proxyanchor~margin0.2",
        "proxyanchor~alpha16~margin0.2",  # both moved: tried together
    ]
    assert chosen == "proxyanchor~alpha16"  # 0.55 beats the pair's 0.54


def test_base_tuning_steps_past_an_edge_like_lambda() -> None:
    """With ``extend_edges``, a chosen option at the edge of its grid gets steps past it (the
    grid's last gap for margin) until the best is inside or the steps are used up."""
    scores = {
        "proxyanchor": 0.50,
        "proxyanchor~margin0.2": 0.55,
        "proxyanchor~margin0.3": 0.57,
        "proxyanchor~margin0.4": 0.56,
    }
    tried, chosen = _tune("proxyanchor", 0.01, scores, ["margin=0,0.2"], extend_edges=2)
    assert tried[-2:] == ["proxyanchor~margin0.3", "proxyanchor~margin0.4"]
    assert chosen == "proxyanchor~margin0.3"


def test_cached_lambdas_are_looked_up_never_trained() -> None:
    """``--cached-lambdas``: a tuned cell takes values trained earlier from the cache (here
    lambda 30, best on validation) and its lambda is the best over all it has; a value not in
    the cache is skipped, not trained."""
    from dasl.config import load_config

    base_cfg = load_config(packaged="fmnist_demo")
    ctl = "proxyanchor/control/batch_variance"
    cells = [ac.Cell("proxyanchor"), ac.Cell("proxyanchor", control="batch_variance")]
    plan = search.Plan("digits", base_cfg, cells, [0.1, 1.0], [0.01], 1, 1, [], [], True)
    plan.cached_lambdas = [30.0, 100.0]
    val = {(ctl, 0.1): 0.3, (ctl, 1.0): 0.2, (ctl, 30.0): 0.5}
    trained: list = []
    looked_up: list = []
    fake = _fake_fetch(val, looked_up)

    def lookup(tid, cfg):  # type: ignore[no-untyped-def]
        return fake(tid, cfg) if cfg.dar.lam == 30.0 else None

    result = search.execute(plan, _fake_fetch(val, trained), log=lambda s: None, lookup=lookup)
    assert result["chosen"][ctl] == 30.0
    # screened at 0.1 and 1, never at 30 or 100; then the seed-0 final at the chosen 30 (in a
    # real run that final is the cached screening run itself)
    assert [v for k, v, _ in trained if k == ctl] == [0.1, 1.0, 30.0]
    assert [v for k, v, _ in looked_up if k == ctl] == [30.0]


# The cache key of a trial is its id (the file name) plus its config as compared
# (``comparable``); computed with the harness before it became a library (14c078c) and pinned,
# so that a change that would orphan the cached and committed trials fails here.
PINNED_KEYS = [
    ("glyphs", ("proxyanchor",), 0.01, 0, None, "proxyanchor__baseline__v0.01__s0",
     "77c829085083dba645d6b142db6575415ae1ac8949d0e3d9ace1b626c8554afa"),
    ("glyphs", ("proxyanchor", "signed", "l2sq", "exact"), 0.3, 2, 0.01,
     "proxyanchor__signed__l2sq__exact__v0.3__s2",
     "5ffbd1f51fec19b06f1e72f54d72b25ae271ce2a337dce91060ea133c79f70dc"),
    ("glyphs", ("proxyanchor~margin0.4", None, None, None, "within_scatter"), 10.0, 1, 0.01,
     "proxyanchor~margin0.4__control__within_scatter__v10__s1",
     "31639ee8c25b15197b25b2a5f57163c37cf891d186f9a97b036975910e2dd98d"),
    ("glyphs", ("npair", "abs", "l1", "chain"), 3.0, 4, None, "npair__abs__l1__chain__v3__s4",
     "68501d2da9b6de61ee07d56161d81d90e1f315a6aa0d687eeec2c840d5275056"),
    ("fashion-mnist", ("npair",), 0.001, 3, None, "npair__baseline__v0.001__s3",
     "ab8f50a9ee768278fb1537e137eeb935864a6da5dea8b901f5d607e77e2c7d9e"),
]  # fmt: skip


@pytest.mark.parametrize(("dataset", "cell", "value", "seed", "lr", "tid", "digest"), PINNED_KEYS)
def test_cache_keys_are_unchanged(dataset, cell, value, seed, lr, tid, digest) -> None:  # type: ignore[no-untyped-def]
    from benchmarks.ablation.presets import base_config

    c = ac.Cell(*cell)
    cfg = ac.trial_config(base_config(dataset, {}), c, value, seed, lr)
    assert ac.trial_id(c, value, seed) == tid
    text = json.dumps(ac.comparable(cfg), sort_keys=True)
    assert hashlib.sha256(text.encode()).hexdigest() == digest


def test_npair_options_round_trip_and_reach_the_loss() -> None:
    """``npair~scale8~ereg0.01`` (#18): parsed, named back, and set as ``loss.scale`` and
    ``loss.embedding_reg_weight``; the plain base keeps its config and cache key."""
    from benchmarks.ablation.presets import base_config

    assert ac.parse_base("npair~scale8~ereg0.01") == ("npair", {"scale": 8.0, "ereg": 0.01})
    assert ac.base_name("npair", {"ereg": 0.001, "scale": 4.0}) == "npair~scale4~ereg0.001"
    for name in ("npair~ereg0.1", "npair~scale16", "npair~scale2~ereg1e-05"):
        assert ac.base_name(*ac.parse_base(name)) == name
    cfg_glyphs = base_config("glyphs", {})
    cfg = ac.trial_config(cfg_glyphs, ac.Cell("npair~scale8~ereg0.01"), 0.003, 0)
    assert (cfg.loss.name, cfg.loss.scale, cfg.loss.embedding_reg_weight) == ("npair", 8.0, 0.01)
    assert ac.comparable(cfg)["loss"]["embedding_reg_weight"] == 0.01
    plain = ac.comparable(ac.trial_config(cfg_glyphs, ac.Cell("npair"), 0.003, 0))
    assert "embedding_reg_weight" not in plain["loss"]
    stored = json.loads(json.dumps(plain))
    stored["loss"]["embedding_reg_weight"] = None  # a record written with the new key
    assert ac.normalized(stored) == plain
    assert base_tuning.parse_base_grid(["ereg=0.001,0.01", "scale=4,16"]) == {
        "ereg": [0.001, 0.01],
        "scale": [4.0, 16.0],
    }


def test_npair_tuning_starts_from_its_defaults_and_steps_past_edges() -> None:
    """N-pair's defaults (scale 1, ereg 0) are the untuned ``npair``; a multiplicative edge
    step for scale (x2 on 4, 8) and none below ereg 0."""
    scores = {
        "npair": 0.30,
        "npair~scale4": 0.40,
        "npair~scale8": 0.45,
        "npair~scale16": 0.44,
        "npair~ereg0.01": 0.20,
        "npair~ereg0.1": 0.10,
    }
    grid = ["scale=4,8", "ereg=0.01,0.1"]
    tried, chosen = _tune("npair", 0.003, scores, grid, extend_edges=1)
    assert tried == [
        "npair",
        "npair~scale4",
        "npair~scale8",
        "npair~ereg0.01",
        "npair~ereg0.1",
        "npair~scale16",  # scale 8 at the top edge: one step of the grid's ratio 2
    ]  # ereg 0 (the default) at the bottom edge: no step below it
    assert chosen == "npair~scale8"


def test_backbone_option_fine_tunes_the_packaged_efficientnet_at_toy_size(tmp_path) -> None:
    """``--backbone efficientnet_lite0`` (#18, 3b): every trial's config (and so its cache key)
    names the pretrained EfficientNet-Lite0 (BatchNorm trained) on 1-channel input; the default
    ``small_cnn`` leaves the preset's config as it was."""
    from benchmarks.ablation.presets import base_config

    for ds in ("glyphs", "digits"):
        assert base_config(ds, {}, "small_cnn") == base_config(ds, {})
    cfg = base_config("glyphs", {}, "efficientnet_lite0")
    assert (cfg.model.backbone, cfg.model.pretrained, cfg.model.freeze_bn) == (
        "efficientnet_lite0",
        True,
        False,
    )
    assert (cfg.data.in_channels, cfg.data.image_size, cfg.trainer.epochs) == (1, None, 4)
    argv = [
        "--datasets", "digits", "--bases", "proxyanchor", "--no-dar", "--seeds", "1",
        "--backbone", "efficientnet_lite0", "--threads", "1", "--out", str(tmp_path),
        "--no-plots", "trainer.epochs=1", "data.batches_per_epoch=2",
        "data.eval_max_per_class=10",
    ]  # fmt: skip
    assert ab.main(argv) == 0
    ds = json.loads((tmp_path / "dar_ablation.json").read_text())["datasets"]["digits"]
    rec = ds["finals"]["proxyanchor/baseline"]["0"]
    summary = json.loads((tmp_path / "dar_ablation_summary.json").read_text())
    stored = summary["datasets"]["digits"]["trials"][rec["trial"]]["config"]
    assert stored["model"]["backbone"] == "efficientnet_lite0"
    assert stored["model"]["pretrained"] is True and stored["data"]["in_channels"] == 1
    assert rec["steps"] == 2 and 0 <= rec["test"]["map@r"] <= 1
    with pytest.raises(SystemExit):
        ab.main(["--plan", "--backbone", "resnet9"])


def test_plan_counts_bound_the_runs_with_controls_and_base_tuning() -> None:
    """``--plan``'s counts (#18): with every edge step taken (validation rising with lambda and
    with the option), the runs made equal the printed bounds, the control's included."""
    from benchmarks.ablation.cli import build_parser, make_plans, planned_base_trials
    from benchmarks.ablation.cli import planned_runs as counts

    args = build_parser().parse_args(
        ["--datasets", "digits", "--bases", "npair", "--differences", "signed", "--measures",
         "l2sq", "--estimators", "exact", "--finalists", "1", "--lambdas", "0.01", "0.1",
         "--tune-lambdas", "0.03", "--extend-edges", "2", "--controls", "compact_inter",
         "--seeds", "3", "--base-grid", "scale=2,4", "ereg=0.01"]
    )  # fmt: skip
    plan = make_plans(args, ["signed"], ["npair"])[0]
    made: set[str] = set()

    def fetch(tid: str, cfg):  # type: ignore[no-untyped-def]
        made.add(tid)
        _, opts = ac.parse_base(tid.split("__")[0])
        score = cfg.dar.lam + opts.get("scale", 0) + opts.get("ereg", 0)
        return {"val_map@r": score, "test": {"recall@1": 0.5, "map@r": 0.5, "nmi": 0.5},
                "best_epoch": 0, "step_s": 0.1, "seconds": 1.0, "gap_map@r": 0.0,
                "interclass": {"mean": 1.0, "std": 0.1, "cv": 0.1}}  # fmt: skip

    grid = base_tuning.parse_base_grid(args.base_grid)
    tuning = base_tuning.tune_bases(plan, grid, fetch, log=lambda s: None)
    n_tuning = len(made)
    assert n_tuning == planned_base_trials(grid, 2) == 1 + 3 + 1 + 2 * 2
    plan.cells = [dataclasses.replace(c, base=tuning[c.base]["chosen"]) for c in plan.cells]
    search.execute(plan, fetch, log=lambda s: None)
    n_screen, n_final = counts(plan, args)
    # the tuned base's own baseline trial is one of the tuning runs
    assert len(made) - n_tuning == n_screen + n_final - 1
    assert (n_screen, n_final) == (1 + 2 + 2 + (1 + 2) * 2, 2 * 3)


def test_supcon_temperature_is_a_tunable_base_option() -> None:
    """``supcon~temperature0.05`` sets ``loss.temperature`` (#18: SupCon tuned as hard as
    lambda); the untuned ``supcon`` is PML's 0.1 and keeps its plain name, and a chosen
    temperature at the grid's edge steps on by the grid's ratio."""
    import torch
    from pytorch_metric_learning.losses import SupConLoss

    from benchmarks.ablation.presets import base_config
    from dasl.objective import build_objective

    cfg_glyphs = base_config("glyphs", {})
    cfg = ac.trial_config(cfg_glyphs, ac.Cell("supcon~temperature0.05"), 0.01, 0)
    assert (cfg.loss.name, cfg.loss.temperature) == ("supcon", 0.05)
    assert ac.base_name(*ac.parse_base("supcon~temperature0.05")) == "supcon~temperature0.05"
    # the option reaches the loss: equal to PML's SupCon at that temperature, not at 0.1
    cfg.dar.lam = 0.0
    loss = build_objective(cfg.loss, cfg.dar, num_classes=4, embedding_dim=8)
    gen = torch.Generator().manual_seed(0)
    z = torch.nn.functional.normalize(torch.randn(12, 8, generator=gen))
    y = torch.arange(12) % 4
    assert torch.allclose(loss(z, y), SupConLoss(temperature=0.05)(z, y), atol=1e-6)
    assert not torch.allclose(loss(z, y), SupConLoss(temperature=0.1)(z, y), atol=1e-3)

    scores = {
        "supcon": 0.50,
        "supcon~temperature0.05": 0.55,
        "supcon~temperature0.2": 0.40,
        "supcon~temperature0.025": 0.52,
    }
    tried, chosen = _tune("supcon", 0.01, scores, ["temperature=0.05,0.2"], extend_edges=1)
    assert tried == [
        "supcon",
        "supcon~temperature0.05",
        "supcon~temperature0.2",
        "supcon~temperature0.025",  # 0.05 at the bottom edge: one step of the ratio 2
    ]
    assert chosen == "supcon~temperature0.05"
