import pytest
import torch
from helpers import random_sae

from saematch.sae import JumpReLUSAE, check_compatible
from saematch.sources import load_sae, save_sae


def test_encode_decode_shapes():
    sae = random_sae(d_model=8, width=24)
    x = torch.randn(3, 5, 8)
    f = sae.encode(x)
    assert f.shape == (3, 5, 24)
    assert sae.decode(f).shape == (3, 5, 8)
    assert sae.width == 24 and sae.d_model == 8


def test_jumprelu_zeroes_below_threshold():
    sae = random_sae()
    x = torch.randn(100, sae.d_model)
    pre, f = sae.pre_activation(x), sae.encode(x)
    assert torch.equal(f == 0, pre <= sae.threshold)


@pytest.mark.parametrize("seed", range(5))
def test_fold_preserves_reconstruction_and_rescales_features(seed):
    sae = random_sae(d_model=32, width=64, seed=seed, theta_range=(0.01, 5.0))
    folded = sae.fold()
    x = torch.randn(256, 32) * 3
    ref = sae(x)
    rel = (folded(x) - ref).abs().max() / ref.abs().max()
    assert rel <= 1e-5
    torch.testing.assert_close(
        folded.encode(x), sae.encode(x) / sae.threshold, rtol=1e-4, atol=1e-5
    )
    assert folded.is_folded and torch.equal(folded.b_dec, sae.b_dec)


def test_fold_rejects_nonpositive_theta_naming_feature():
    sae = random_sae()
    th = sae.threshold.clone()
    th[7] = 0.0
    relu = JumpReLUSAE(sae.W_enc, sae.b_enc, sae.W_dec, sae.b_dec, th)
    with pytest.raises(ValueError, match=r"threshold\[7\]"):
        relu.fold()


@pytest.mark.parametrize(
    "field,value,match",
    [
        ("W_dec", torch.zeros(5, 16), "W_dec has shape"),
        ("b_enc", torch.zeros(31), "b_enc has shape"),
        ("threshold", -torch.ones(32), "negative"),
        ("W_enc", torch.full((16, 32), float("nan")), "non-finite"),
    ],
)
def test_construction_validates(field, value, match):
    kw = random_sae().state_dict()
    kw[field] = value
    with pytest.raises(ValueError, match=match):
        JumpReLUSAE(**kw)


def test_check_compatible():
    with pytest.raises(ValueError, match="d_model"):
        check_compatible(random_sae(d_model=8), random_sae(d_model=16))
    with pytest.raises(ValueError, match="widths differ"):
        check_compatible(random_sae(width=8), random_sae(width=16))


def test_permute_features_convention():
    sae = random_sae(width=10)
    perm = torch.randperm(10)
    p = sae.permute_features(perm)
    x = torch.randn(4, sae.d_model)
    f, fp = sae.encode(x), p.encode(x)
    torch.testing.assert_close(fp[:, perm], f)  # new feature perm[i] is old feature i
    torch.testing.assert_close(p(x), sae(x), rtol=1e-5, atol=1e-6)


def test_save_load_roundtrip(tmp_path):
    sae = random_sae()
    save_sae(sae, tmp_path / "s")
    back = load_sae(tmp_path / "s")
    assert back.fingerprint() == sae.fingerprint() and back.name == sae.name
    with pytest.raises(FileNotFoundError, match="no SAE"):
        load_sae(tmp_path / "missing")
