from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from aestetik.nn import AestetikAutoencoder, EnsembleDecoder, EnsembleEncoder, multi_triplet_loss, sample_triplets
from aestetik.nn._module import ensemble_median


@pytest.mark.parametrize("m", [1, 2, 3, 4, 5])
def test_ensemble_median_matches_torch_median(m):
    x = torch.randn(6, m, 4)
    torch.testing.assert_close(ensemble_median(x, 1), x.median(dim=1).values)


@pytest.mark.parametrize("w", [3, 5, 7, 9])
def test_shapes(w):
    model = AestetikAutoencoder(5, w, latent_dim=8)
    x = torch.rand(10, 5, w, w)
    z, rec = model(x)
    assert z.shape == (10, 8)
    assert rec.shape == x.shape
    assert float(rec.detach().min()) >= 0 and float(rec.detach().max()) <= 1


@pytest.mark.parametrize("w", [5, 7])
def test_fast_decoder_equals_transposed_convolution(w):
    torch.manual_seed(0)
    dec = EnsembleDecoder(4, w, latent_dim=6, hidden_channels=8, dropout=0.0).eval()
    assert dec.pooled == 1
    h = torch.randn(7, 3 * 8, 1, 1)
    up = h[:, :, dec.up_index[:, None], dec.up_index[None, :]]
    torch.testing.assert_close(dec._constant_input_deconv(h), dec.deconv(up), rtol=1e-5, atol=1e-5)


def test_fused_encoder_equals_separate_members():
    """Member m of the fused encoder is the textbook Conv-BN-Dropout-ReLU-Pool-Linear on its channels."""
    torch.manual_seed(0)
    enc = EnsembleEncoder(4, 7, latent_dim=5, hidden_channels=6, dropout=0.3).eval()
    x = torch.rand(9, 4, 7, 7)
    members = enc.members(x)
    for m in range(3):
        sl = slice(6 * m, 6 * (m + 1))
        h = F.conv2d(x, enc.conv.weight[sl], enc.conv.bias[sl])
        h = F.batch_norm(h, enc.norm.running_mean[sl], enc.norm.running_var[sl], enc.norm.weight[sl], enc.norm.bias[sl])
        h = F.max_pool2d(F.relu(h), 3, stride=3).flatten(1)
        torch.testing.assert_close(members[:, m], h @ enc.linear.weight[m].T + enc.linear.bias[m])
    torch.testing.assert_close(enc(x), members.median(dim=1).values)


def test_mc_dropout_without_dropout_is_the_deterministic_encoder():
    torch.manual_seed(0)
    enc = EnsembleEncoder(4, 7, dropout=0.0).eval()
    x = torch.rand(9, 4, 7, 7)
    torch.testing.assert_close(enc.mc_dropout(x, 3), enc(x))


def test_mc_dropout_equals_averaging_explicit_dropout_passes():
    torch.manual_seed(0)
    enc = EnsembleEncoder(4, 7, latent_dim=5, hidden_channels=6, dropout=0.3).eval()
    x = torch.rand(8, 4, 7, 7)
    n = 50
    fast = enc.mc_dropout(x, n, generator=torch.Generator().manual_seed(3))
    g = torch.Generator().manual_seed(3)
    masks = (torch.rand(n, 8, 3, 6, generator=g) < 0.7).float() / 0.7
    pre = enc.pre_dropout(x)
    passes = [enc.head(pre * masks[i].reshape(8, 18, 1, 1)).median(dim=1).values for i in range(n)]
    torch.testing.assert_close(fast, torch.stack(passes).mean(0), rtol=1e-5, atol=1e-5)


def test_sample_triplets_labels():
    g = torch.Generator().manual_seed(0)
    labels = torch.tensor([0, 0, 1, 1, 1, 2, 2, 0, 1, 2])
    pos, neg, usable = sample_triplets(labels, 3, n_repeats=2, generator=g)
    assert pos.shape == neg.shape == usable.shape == (10, 4)
    assert torch.all(labels[pos] == labels[:, None])
    assert torch.all(labels[neg] != labels[:, None])
    assert usable.all()
    for i in range(10):  # n_repeats negatives from each other cluster
        counts = np.bincount(labels[neg[i]].numpy(), minlength=3)
        assert counts[int(labels[i])] == 0 and sorted(counts)[1:] == [2, 2]


def test_sample_triplets_absent_cluster_is_masked():
    labels = torch.tensor([0, 0, 2, 2])
    _, neg, usable = sample_triplets(labels, 3)
    expected = torch.tensor([[False, True], [False, True], [True, False], [True, False]])
    assert torch.equal(usable, expected)  # cluster 1 is absent: no negatives from it
    assert torch.all(labels[neg][usable] != labels[:, None].expand(-1, 2)[usable])


def test_triplet_loss_zero_when_clusters_far_apart():
    labels = torch.tensor([0] * 5 + [1] * 5)
    z = torch.cat([torch.zeros(5, 2), torch.full((5, 2), 10.0)])
    assert float(multi_triplet_loss(z, labels, 2)) == 0.0
    z_bad = torch.cat([torch.full((5, 2), 10.0), torch.zeros(5, 2)])[torch.tensor([0, 5, 1, 6, 2, 7, 3, 8, 4, 9])]
    assert float(multi_triplet_loss(z_bad, labels, 2)) > 0.0


@pytest.mark.parametrize("w", [5, 7, 9])
def test_fast_conv_batchnorm_matches_modules(w):
    """The patch-covariance BatchNorm equals Conv2d + BatchNorm2d: values, gradients, running stats."""
    torch.manual_seed(0)
    fast = EnsembleEncoder(4, w, latent_dim=5, hidden_channels=6)
    slow = EnsembleEncoder(4, w, latent_dim=5, hidden_channels=6)
    slow.load_state_dict(fast.state_dict())
    x = torch.rand(33, 4, w, w)
    crop = fast.crop
    for _ in range(2):  # training mode, twice, to compare running statistics
        a = fast.pre_dropout(x)
        b = slow.norm(slow.conv(x))[:, :, :crop, :crop]
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)
        (a * torch.arange(a.numel()).reshape(a.shape).sin()).sum().backward()
        (b * torch.arange(b.numel()).reshape(b.shape).sin()).sum().backward()
        for (name, pf), ps in zip(fast.named_parameters(), slow.parameters(), strict=True):
            if name == "conv.bias":  # cancels in BatchNorm: both gradients are zero up to rounding
                assert pf.grad.abs().max() < 1e-3 and ps.grad.abs().max() < 1e-3
            elif pf.grad is not None or ps.grad is not None:
                torch.testing.assert_close(pf.grad, ps.grad, rtol=1e-3, atol=1e-4)
    torch.testing.assert_close(fast.norm.running_mean, slow.norm.running_mean)
    torch.testing.assert_close(fast.norm.running_var, slow.norm.running_var, rtol=1e-4, atol=1e-5)
    fast.eval(), slow.eval()
    torch.testing.assert_close(fast.pre_dropout(x), slow.norm(slow.conv(x))[:, :, :crop, :crop], rtol=1e-4, atol=1e-4)


def test_recalibrated_batchnorm_holds_population_statistics():
    from aestetik.nn import NeighbourhoodGrid, neighbour_index, recalibrate_batchnorm

    torch.manual_seed(0)
    r, c = np.meshgrid(np.arange(8), np.arange(8), indexing="ij")
    feats = torch.rand(64, 3)
    grid = NeighbourhoodGrid(feats, torch.from_numpy(neighbour_index(r.ravel(), c.ravel(), 7)))
    model = AestetikAutoencoder(3, 7)
    model.encoder.norm.running_mean.fill_(5.0)  # stale statistics
    h = model.encoder.conv(grid(torch.arange(64)))
    for batch_size in (64, 10):  # exact whatever the batch size: sums, not averages of batch variances
        recalibrate_batchnorm(model, grid, batch_size=batch_size, device="cpu")
        torch.testing.assert_close(model.encoder.norm.running_mean, h.mean((0, 2, 3)), rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(model.encoder.norm.running_var, h.var((0, 2, 3)), rtol=1e-3, atol=1e-5)
    assert model.encoder.norm.momentum == 0.1


def test_sample_triplets_absent_last_cluster_stays_in_bounds():
    # the last cluster is absent from the batch (a mini-batch, or pseudo-labels re-estimated
    # with fewer clusters): its start is past the batch end and must not be indexed
    labels = torch.tensor([0, 1, 1, 0, 1])
    pos, neg, usable = sample_triplets(labels, 4, n_repeats=2)
    assert int(pos.max()) < 5 and int(neg.max()) < 5
    assert usable.sum(1).tolist() == [2] * 5
    assert torch.isfinite(multi_triplet_loss(torch.randn(5, 3), labels, 4))


def test_positives_are_never_the_anchor():
    labels = torch.tensor([0, 0, 1, 1, 1, 2, 0, 1])
    g = torch.Generator().manual_seed(0)
    for _ in range(20):
        pos, neg, usable = sample_triplets(labels, 3, n_repeats=3, generator=g)
        rows = torch.arange(8)[:, None].expand_as(pos)
        assert not (pos == rows)[usable].any()
        assert (labels[pos] == labels[:, None])[usable].all() and (labels[neg] != labels[:, None]).all()
        assert not usable[5].any()  # alone in its cluster: no positive, no triplet
        assert usable[[0, 1, 2, 3, 4, 6, 7]].all()
