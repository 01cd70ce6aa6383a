"""The likelihood table's own logic (benchmarks/likelihood_table.py): the batched, resumable
importance-sampling scorer against a linear-Gaussian latent model whose log evidence is exact,
the timing ledger, the CSV's resume, and the VAE's shuffled test subsets."""
import csv

import numpy as np
import pytest

import inference
from benchmarks import likelihood_table as lt
from ppl_models.generic import dist, for_backends, pyro
from ppl_models.latent_gaussian.ppca import exact_log_evidence, exact_posterior
from ppl_models.spec import Minibatch, ModelSpec

NUM, PIXELS, LATENT = 12, 6, 2


def linear_gaussian(x, num_data, W, b, sigma, A, c, post_sd, inflate):
    """z_n ~ Normal(0, I), x_n | z_n ~ Normal(W z_n + b, sigma^2 I): probabilistic PCA, log p(x_n) exact."""
    with pyro.plate("data", num_data, subsample_size=x.shape[0]):
        z = pyro.sample("z", dist.Normal(0.0, 1.0).expand([W.shape[1]]).to_event(1))
        pyro.sample("x", dist.Normal(z @ W.T + b, sigma).to_event(1), obs=x)


def posterior_guide(x, num_data, W, b, sigma, A, c, post_sd, inflate):
    """q(z_n | x_n) = Normal(A x_n + c, inflate * post_sd): the exact posterior when inflate = 1 (W's
    columns are orthogonal, so the posterior covariance is diagonal), an amortized proposal otherwise."""
    with pyro.plate("data", num_data, subsample_size=x.shape[0]):
        pyro.sample("z", dist.Normal(x @ A.T + c, inflate * post_sd).to_event(1))


def linear_gaussian_spec(inflate: float) -> tuple[ModelSpec, np.ndarray]:
    """The spec on NUM points drawn from the model, and their exact log evidence."""
    rng = np.random.default_rng(0)
    W = np.linalg.qr(rng.normal(size=(PIXELS, LATENT)))[0] * np.array([2.0, 1.0])
    b, sigma = rng.normal(size=PIXELS), 0.5
    x = rng.normal(size=(NUM, LATENT)) @ W.T + b + sigma * rng.normal(size=(NUM, PIXELS))
    M = W.T @ W + sigma**2 * np.eye(LATENT)
    A = np.linalg.solve(M, W.T)
    _, cov = exact_posterior(x, W, b, sigma**2)
    assert np.allclose(exact_posterior(x, W, b, sigma**2)[0], x @ A.T - A @ b)
    data = dict(x=x, num_data=NUM, W=W, b=b, sigma=sigma, A=A, c=-A @ b, post_sd=np.sqrt(np.diag(cov)),
                inflate=inflate)
    spec = ModelSpec(name="toy-linear_gaussian", data=data, model=for_backends(linear_gaussian),
                     guide=for_backends(posterior_guide), minibatch=Minibatch(keys=("x",)))
    return spec, exact_log_evidence(x, W, b, sigma**2)


def test_with_the_exact_posterior_as_proposal_the_batched_scorer_gives_the_exact_evidence():
    """Every log weight is log p(x_n): batches that dropped, repeated or rescaled points would show."""
    spec, exact = linear_gaussian_spec(inflate=1.0)
    scores = lt.importance_nll(spec, {}, num_samples=8, batch_size=5)
    assert scores["nll"] == pytest.approx(-exact.mean(), rel=1e-10)
    assert scores["test_se"] == pytest.approx(exact.std(ddof=1) / np.sqrt(NUM), rel=1e-8)
    assert scores["se"] < 1e-6


def test_the_batched_scorer_is_unbiased_and_one_batch_is_the_layers_estimate():
    spec, exact = linear_gaussian_spec(inflate=1.5)
    batched = lt.importance_nll(spec, {}, num_samples=300, batch_size=5, seed=3)
    assert abs(batched["nll"] + exact.mean()) < 4 * batched["se"]
    assert batched["se"] > 0
    whole = lt.importance_nll(spec, {}, num_samples=300, batch_size=NUM, seed=3)
    direct = inference.run(spec, method="is", backend="numpyro", num_samples=300, seed=3)
    assert whole["nll"] == pytest.approx(-direct.log_evidence / NUM, rel=1e-12)
    assert whole["se"] == pytest.approx(direct.log_evidence_se / NUM, rel=1e-12)


def test_a_killed_scoring_resumes_at_the_next_batch_and_ends_as_an_uninterrupted_one(tmp_path, monkeypatch):
    spec, _ = linear_gaussian_spec(inflate=1.5)
    options = dict(num_samples=50, batch_size=5, seed=1)
    uninterrupted = lt.importance_nll(spec, {}, partial=tmp_path / "whole.npz", **options)
    real_run, calls, killed = inference.run, [], []

    def dies_once_at_the_second_batch(*args, **kwargs):
        calls.append(kwargs["seed"])
        if len(calls) == 2 and not killed:
            killed.append(True)
            raise KeyboardInterrupt
        return real_run(*args, **kwargs)

    monkeypatch.setattr(inference, "run", dies_once_at_the_second_batch)
    with pytest.raises(KeyboardInterrupt):
        lt.importance_nll(spec, {}, partial=tmp_path / "killed.npz", **options)
    calls.clear()
    resumed = lt.importance_nll(spec, {}, partial=tmp_path / "killed.npz", **options)
    assert calls == [2, 3]  # batches 1 and 2 (seeds 1 + b); batch 0 came from the partial file
    assert resumed == {**uninterrupted, "seconds": resumed["seconds"]}
    with pytest.raises(ValueError, match="other settings"):
        lt.importance_nll(spec, {}, partial=tmp_path / "killed.npz", **{**options, "num_samples": 60})


def test_the_ledger_adds_up_the_time_of_interrupted_pieces(tmp_path):
    path = tmp_path / "row.time.json"
    with pytest.raises(KeyboardInterrupt), lt.ledger(path, "train_s"):
        raise KeyboardInterrupt
    first = lt.read_times(path)["train_s"]
    with lt.ledger(path, "train_s"):
        pass
    assert lt.read_times(path)["train_s"] > first > 0


def test_a_row_in_the_csv_is_not_run_again(tmp_path, monkeypatch, capsys):
    out = tmp_path / "table.csv"
    args = lt.parse(["--rows", "gan", "--csv", str(out), "--implicit-steps", "7", "--out", str(tmp_path)])
    lt.append_rows(out, lt.FIELDS, [dict(row="gan", model="mnist-implicit", backend="numpyro", epochs="", steps=7,
                                         seed=0, train_s=1.0, score_s=2.0, metric="mmd2", value=0.0123, se="",
                                         test_se="", max_khat="", num_test=args.mmd_points, num_samples="", paper="",
                                         note="no likelihood")])
    assert lt.csv_key(lt.ROWS["gan"], None, args) in lt.done_keys(out)
    monkeypatch.setattr(lt, "run_row", lambda *a: pytest.fail("a finished row was run again"))
    lt.main(["--rows", "gan", "--csv", str(out), "--implicit-steps", "7", "--out", str(tmp_path)])
    assert "| gan | mnist-implicit | numpyro |" in capsys.readouterr().out
    with out.open() as f:
        assert len(list(csv.DictReader(f))) == 1


def test_a_subset_of_the_vae_test_images_is_a_fixed_random_one():
    """The binarized test file is sorted by digit: its first images are all zeros, a subset must be shuffled."""
    from ppl_models.data.mnist import load_binarized_mnist, test_order
    from ppl_models.latent_gaussian.vae import vae_spec

    images = load_binarized_mnist("test").astype(np.float32)
    subset = vae_spec("binarized_mnist", "test", num_images=100).data["x"]
    np.testing.assert_array_equal(subset, images[test_order(len(images))[:100]])
    assert abs(subset.mean() - images.mean()) < abs(images[:100].mean() - images.mean())


def test_a_gpu_run_is_a_line_of_its_own(tmp_path):
    """A line trained on the CPU does not stand in for the same row run on a GPU, nor the other way round."""
    out = tmp_path / "table.csv"
    argv = ["--rows", "gan", "--csv", str(out), "--implicit-steps", "7", "--out", str(tmp_path)]
    cpu, gpu = lt.parse(argv), lt.parse([*argv, "--device", "cuda"])
    lt.append_rows(out, lt.FIELDS, [dict(row="gan", model="mnist-implicit", backend="numpyro (cuda)", epochs="",
                                         steps=7, seed=0, train_s=1.0, score_s=2.0, metric="mmd2", value=0.0123,
                                         se="", test_se="", max_khat="", num_test=gpu.mmd_points, num_samples="",
                                         paper="", note="no likelihood")])
    assert lt.csv_key(lt.ROWS["gan"], None, gpu) in lt.done_keys(out)
    assert lt.csv_key(lt.ROWS["gan"], None, cpu) not in lt.done_keys(out)
