"""inference.convergence on made-up loss curves and snapshots, where the answer is known by construction.

The backends' use of it (a default SVI run that converges is not warned about, one cut short is)
is tested on the exact conjugate posterior in tests/test_svi_conjugate.py.
"""
import numpy as np
import pytest

from inference.convergence import (
    MAX_WANDER,
    NUM_GRADIENT_PARTICLES,
    NUM_SNAPSHOTS,
    Snapshots,
    convergence_warnings,
    loss_trend,
    snapshot_steps,
    split_at,
)


def test_snapshot_steps_and_pieces():
    assert snapshot_steps(5000) == [4000, 4200, 4400, 4600, 4800, 5000]
    assert snapshot_steps(10) == []  # too short to judge
    assert split_at([(0, 1000), (1000, 5000)], [4000, 4500, 5000]) == [(0, 1000), (1000, 4000), (4000, 4500),
                                                                       (4500, 5000)]
    taken = Snapshots(5000, lambda x: {"loc": x})
    for step in range(1, 5001):
        taken.after(step, step)
    assert [s["loc"] for s in taken] == snapshot_steps(5000)
    assert Snapshots(5000).steps == []  # nothing to read: nothing recorded


def test_a_flat_noisy_loss_passes_and_a_falling_one_is_flagged():
    rng = np.random.default_rng(0)
    noise = rng.normal(0, 1.0, 5000)
    assert convergence_warnings(100 + noise) == []
    # 2 nats down over the last 1000 steps, in noise of sd 1 per step: the block means' line sees it
    # at about 2 / (1 * sqrt(12 / 1000)) = 18 standard errors
    falling = 100 + noise - np.linspace(0, 10, 5000)
    change, se = loss_trend(falling)
    assert change == pytest.approx(-2.0, abs=4 * se) and -change / se > 10
    (message,) = convergence_warnings(falling)
    assert message.startswith("not converged: the loss still fell") and "num_steps" in message


def test_false_alarms_are_rare():
    """A converged run's losses (independent noise) are flagged in about 5e-4 of runs (t > 5 with 8
    degrees of freedom); 2000 runs would show 1 on average, and more than 6 with probability 1e-4."""
    flagged = sum(bool(convergence_warnings(np.random.default_rng(seed).normal(0, 1, 500))) for seed in range(2000))
    assert flagged <= 6


def test_a_loss_without_noise_is_not_flagged_for_a_negligible_fall():
    """A delta guide's loss is exact: a slope is always 'significant'; under MIN_DECREASE it is not news."""
    settled = 10 + 1e-3 * np.exp(-np.arange(2000) / 300)
    assert convergence_warnings(settled) == []
    assert convergence_warnings(10 + np.exp(-np.arange(2000) / 1000))  # still 0.07 nats to go down


def test_wandering_locations_are_flagged_relative_to_the_guide_scale():
    rng = np.random.default_rng(1)
    flat = np.zeros(1000)
    sds = {"loc": np.array([1.0, 0.01])}
    quiet = [{"loc": np.array([5.0, 1.0]) + rng.normal(0, 0.2 * MAX_WANDER, 2) * sds["loc"]}
             for _ in range(NUM_SNAPSHOTS + 1)]
    assert convergence_warnings(flat, quiet, sds) == []
    # the second coordinate moves by 0.005 between snapshots: small, but half its own sd
    drifting = [{"loc": np.array([5.0, 1.0 + 0.005 * k])} for k in range(NUM_SNAPSHOTS + 1)]
    (message,) = convergence_warnings(flat, drifting, sds)
    assert message.startswith("not converged: the guide's locations still move") and "loc[1]" in message
    assert convergence_warnings(flat, drifting[:3], sds) == []  # a resumed run that saw part of the stretch


def test_a_gradient_away_from_zero_is_flagged_by_the_distance_it_implies():
    rng = np.random.default_rng(2)
    sds = {"loc": np.array([2.0, 0.1])}
    noise = rng.normal(0, 1.0, (NUM_GRADIENT_PARTICLES, 2))
    assert convergence_warnings(np.zeros(1000), sds=sds, gradients={"loc": noise}) == []  # at the optimum
    # a mean gradient of 0.5 (4 standard errors of 1/8) times sd 2: a Newton step of 1 sd, but not significant
    assert convergence_warnings(np.zeros(1000), sds=sds, gradients={"loc": noise + [0.5 - noise[:, 0].mean(), 0]}) == []
    # 3 (24 standard errors) on the second coordinate, whose sd is 0.1: 0.3 sd away; flagged, named
    far = noise + [0, 3.0]
    (message,) = convergence_warnings(np.zeros(1000), sds=sds, gradients={"loc": far})
    assert message.startswith("not converged: the objective's gradient at the end is not zero") and "loc[1]" in message
    distance = float(message.split("about ")[1].split(" of")[0])
    assert distance == pytest.approx(0.3, abs=4 * 0.1 / np.sqrt(NUM_GRADIENT_PARTICLES))  # 4 se of the mean, x sd
    # significant but tiny: 3 * 0.01 = 0.03 sd, under MAX_WANDER
    assert convergence_warnings(np.zeros(1000), sds={"loc": np.array([2.0, 0.01])}, gradients={"loc": far}) == []
