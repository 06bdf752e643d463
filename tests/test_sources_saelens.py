"""Optional sae-lens loader: clear error without the package; conversion via a fake module."""

from __future__ import annotations

import sys
import types
from dataclasses import dataclass

import pytest
import torch
from helpers import random_sae

from saematch.sources.saelens import load_saelens


@dataclass
class FakeCfg:
    arch: str = "jumprelu"
    apply_b_dec_to_input: bool = True
    normalize_activations: str = "none"
    hook_name: str = "blocks.3.hook_resid_post"

    def architecture(self) -> str:  # sae-lens 6: a method on the config
        return self.arch


class FakeSAE:
    """sae-lens JumpReLU forward: relu(pre)·[pre > θ] with pre = (x − b_dec) W_enc + b_enc."""

    def __init__(self, cfg: FakeCfg, seed: int = 0):
        ref = random_sae(d_model=8, width=12, seed=seed)
        self.cfg = cfg
        self.W_enc, self.b_enc, self.W_dec, self.b_dec = ref.W_enc, ref.b_enc, ref.W_dec, ref.b_dec
        self.threshold = ref.threshold

    def forward(self, x):
        pre = (x - self.b_dec * self.cfg.apply_b_dec_to_input) @ self.W_enc + self.b_enc
        f = torch.relu(pre) * (pre > self.threshold)
        return f @ self.W_dec + self.b_dec


def install_fake_sae_lens(monkeypatch, sae, as_tuple=False):
    calls = []

    class SAE:
        @staticmethod
        def from_pretrained(release, sae_id, device="cpu"):
            calls.append((release, sae_id, device))
            return (sae, {}, None) if as_tuple else sae

    monkeypatch.setitem(sys.modules, "sae_lens", types.SimpleNamespace(SAE=SAE))
    return calls


def test_missing_package_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "sae_lens", None)  # makes `import sae_lens` fail
    with pytest.raises(ImportError, match="pip install sae-lens"):
        load_saelens("gemma-scope-2b-pt-res-canonical", "layer_20/width_16k/canonical")


@pytest.mark.parametrize("as_tuple", [False, True])
def test_jumprelu_conversion_matches_saelens_forward(monkeypatch, as_tuple):
    fake = FakeSAE(FakeCfg())
    calls = install_fake_sae_lens(monkeypatch, fake, as_tuple=as_tuple)
    sae = load_saelens("rel", "layer_3", dtype=torch.float64)
    assert calls == [("rel", "layer_3", "cpu")]
    assert sae.name == "rel/layer_3" and sae.dtype == torch.float64
    assert sae.meta["hook_name"] == "blocks.3.hook_resid_post"
    x = torch.randn(20, 8)
    torch.testing.assert_close(sae(x).float(), fake.forward(x), rtol=1e-5, atol=1e-5)


def test_standard_sae_gets_zero_threshold(monkeypatch):
    fake = FakeSAE(FakeCfg(arch="standard", apply_b_dec_to_input=False))
    install_fake_sae_lens(monkeypatch, fake)
    sae = load_saelens("rel", "id")
    assert torch.all(sae.threshold == 0)
    with pytest.raises(ValueError, match="ReLU SAE"):
        sae.fold()


@pytest.mark.parametrize(
    ("cfg", "match"),
    [
        (FakeCfg(arch="topk"), "architecture 'topk'"),
        (FakeCfg(normalize_activations="constant_norm_rescale"), "normalises its input"),
    ],
)
def test_unsupported_saelens_sae(monkeypatch, cfg, match):
    install_fake_sae_lens(monkeypatch, FakeSAE(cfg))
    with pytest.raises(ValueError, match=match):
        load_saelens("rel", "id")
