"""Sizes of the built-in zoo: "default" (the quality run) and "test" (fast, for the test suite)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass(frozen=True)
class ZooConfig:
    """Every knob of one zoo size; the manifest records it (asdict) next to the metrics."""

    size: str
    # corpus + tokenizer
    corpus_docs: int  # use N training documents, evenly spaced over the corpus (0 = all)
    tokenizer_docs: int  # train the BPE on the first N of those documents (0 = all)
    vocab_size: int
    # LM (Gemma 2 architecture)
    n_layers: int
    d_model: int
    n_heads: int
    n_kv_heads: int
    head_dim: int
    d_mlp: int
    seq_len: int
    sliding_window: int  # < seq_len so local and global layers differ, as in Gemma 2
    lm_batch: int
    lm_steps: int
    lm_lr: float
    lm_warmup: int
    lm_eval_rows: int  # held-out rows for the CE metric
    # SAEs
    sae_width_mult: int
    sae_train_rows: int  # rows of seq_len tokens whose activations train the SAEs
    sae_eval_rows: int  # held-out rows for EV / dead fraction
    sae_batch: int
    sae_steps: int
    sae_lr: float
    sae_bandwidth: float  # ε of the rectangle kernel, in normalised units
    l0_targets: tuple[int, ...] = (8, 16, 32)
    default_l0: int = 16
    second_seed: bool = True  # train a second SAE at the default L0 (same-layer agreement)
    # layer -> SAE steps where a layer needs more than sae_steps (trained in its own batch)
    sae_layer_steps: dict = field(default_factory=dict)
    # train every level in the build; False: only the default (and its second seed), the other
    # levels on first use (zoo/levels.py), which keeps a fresh build short
    eager_sparsities: bool = True
    describe_rows: int = 0  # rows (from the SAE training rows) used for descriptions
    describe_top_k: int = 8
    max_threads: int = 2  # torch threads while the cores are otherwise idle (zoo/threads.py)
    extra: dict = field(default_factory=dict)

    @property
    def width(self) -> int:
        """SAE width F = sae_width_mult × d_model."""
        return self.sae_width_mult * self.d_model

    @property
    def sparsities(self) -> list[str]:
        """Names of the sparsity levels, e.g. ["l0_8", "l0_16", "l0_32"]."""
        return [f"l0_{k}" for k in self.l0_targets]

    @property
    def built_l0_targets(self) -> tuple[int, ...]:
        """The target L0s the build itself trains (the others are trained on first use)."""
        return self.l0_targets if self.eager_sparsities else (self.default_l0,)

    @property
    def default_sparsity(self) -> str:
        """Name of the default sparsity level."""
        return f"l0_{self.default_l0}"

    def to_dict(self) -> dict:
        """JSON-ready dict of every field."""
        d = asdict(self)
        d["l0_targets"] = list(self.l0_targets)
        d["sae_layer_steps"] = {str(k): v for k, v in self.sae_layer_steps.items()}
        return d


# The knobs the tokenizer and LM stages read: a rebuild that changes none of them (nor
# LM_VERSION) keeps the cached LM and retrains only the SAEs (zoo/store.py, reusable_lm).
LM_KEYS = (
    "corpus_docs",
    "tokenizer_docs",
    "vocab_size",
    "n_layers",
    "d_model",
    "n_heads",
    "n_kv_heads",
    "head_dim",
    "d_mlp",
    "seq_len",
    "sliding_window",
    "lm_batch",
    "lm_steps",
    "lm_lr",
    "lm_warmup",
    "lm_eval_rows",
)

SIZES: dict[str, ZooConfig] = {
    "default": ZooConfig(
        size="default",
        corpus_docs=0,
        tokenizer_docs=0,
        vocab_size=2048,  # 4096: CE/entropy 0.92 vs 0.85 at step 75, and 30 % slower steps
        n_layers=6,
        d_model=128,
        n_heads=4,
        n_kv_heads=2,
        head_dim=32,
        d_mlp=512,
        seq_len=128,
        sliding_window=64,
        lm_batch=32,
        lm_steps=300,
        lm_lr=1e-2,
        lm_warmup=30,
        lm_eval_rows=128,
        sae_width_mult=8,
        sae_train_rows=1024,
        sae_eval_rows=256,
        sae_batch=512,
        # Probed with scripts/probe_zoo_schedule.py on layers 0, 2, 5 (two seeds, width 1024):
        # same-layer agreement at L0 16 was 0.07-0.36 at 1500 steps and 0.16-0.51 at 3000
        # (lr 1e-2); at L0 8 and 3000 steps 0.54-0.68 (the old 300 steps at lr 2e-3: ≤ 0.01).
        sae_steps=3000,
        sae_lr=1e-2,
        sae_bandwidth=0.05,
        l0_targets=(8, 16, 32),
        default_l0=8,
        # layer 0 (close to a function of the token) agreed on 0.54 at 3000 steps, 0.66 at 6000
        sae_layer_steps={0: 6000},
        eager_sparsities=False,  # 12 SAEs of 3000 steps in the build; l0_16, l0_32 on first use
        describe_rows=256,
    ),
    "test": ZooConfig(
        size="test",
        corpus_docs=60,
        tokenizer_docs=20,
        vocab_size=1024,
        n_layers=4,
        d_model=64,
        n_heads=2,
        n_kv_heads=1,
        head_dim=32,
        d_mlp=256,
        seq_len=64,
        sliding_window=32,
        lm_batch=16,
        lm_steps=150,
        lm_lr=1e-2,
        lm_warmup=10,
        lm_eval_rows=64,
        sae_width_mult=8,
        sae_train_rows=512,
        sae_eval_rows=64,
        sae_batch=512,
        sae_steps=150,
        sae_lr=2e-3,
        sae_bandwidth=0.05,
        describe_rows=64,
        max_threads=1,  # matmuls this small gain nothing from a second thread
    ),
}


def get_config(size: str) -> ZooConfig:
    """The ZooConfig of a named size; ValueError lists the known sizes."""
    if size not in SIZES:
        raise ValueError(f"unknown zoo size {size!r}; choose one of {sorted(SIZES)}")
    return SIZES[size]
