"""Training hyperparameters: one frozen dataclass, stored on the job row and inside every artifact.

Torch-free on purpose: the API resolves and validates configs at POST /jobs without loading torch.
Presets follow the authors' pylearn2 YAML files (goodfeli/adversarial: mnist.yaml, cifar10_fc.yaml, tfd.yaml).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Literal

Objective = Literal["non-saturating", "minimax"]
Update = Literal["alternating", "simultaneous"]
Optimizer = Literal["sgd", "adam"]
OutputKind = Literal["sigmoid", "linear"]
Architecture = Literal["mlp", "conv"]
Keep = Literal["last", "best"]
DataOrder = Literal["shuffled", "with-replacement"]


class ConfigError(ValueError):
    """A job parameter is invalid; `field` names it so the API can say which one."""

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(f"{field_name}: {message}")
        self.field = field_name
        self.message = message


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides what a training run computes (Algorithm 1 plus the networks)."""

    preset: str
    dataset: str
    # "mlp": the MLPs below over D = C*H*W (models/nets.py). "conv": Figure 2d's CIFAR-10 nets
    # (models/conv_nets.py): G's last hidden layer is reshaped to (80, 10, 10) and "deconvolved" to
    # (C, 32, 32); D is three maxout convolution layers then the maxout d_hidden layers.
    architecture: Architecture = "mlp"
    # z ~ U[-noise_scale, noise_scale]^latent_dim; sqrt(3) gives unit variance, as in the authors' Generator.
    latent_dim: int = 100
    noise_scale: float = math.sqrt(3.0)
    # G: Linear+ReLU hidden layers, then a Linear output layer (sigmoid for pixels in [0, 1]).
    g_hidden: tuple[int, ...] = (1200, 1200)
    g_init_range: float = 0.05
    g_output: OutputKind = "sigmoid"
    # Output bias = logit of the per-pixel training mean (pylearn2's init_sigmoid_bias_from_marginals).
    g_bias_from_data: bool = True
    # D: maxout hidden layers (units x pieces), then one sigmoid unit; dropout on every layer's input.
    d_hidden: tuple[int, ...] = (240, 240)
    d_pieces: int = 5
    d_init_range: float = 0.005
    d_input_keep: float = 0.8
    d_hidden_keep: float = 0.5
    d_max_col_norm: float | None = None
    # The game: D ascends 1/2[log D(x) + log(1 - D(G(z)))]; G ascends log D(G(z)) unless "minimax".
    objective: Objective = "non-saturating"
    k: int = 1
    # "alternating": Algorithm 1 as printed -- k D-steps, each on fresh data and z, then a G-step on fresh z
    # through the updated D. "simultaneous": the authors' released code (AdversaryCost2): one forward pass of
    # x and G(z) through the dropout D gives both nets' gradients, and both step at once (k must be 1).
    update: Update = "alternating"
    batch_size: int = 100
    # Which rows the minibatches hold (worker/minibatches.py): "shuffled", a fresh permutation of the training
    # set per pass, each row once (pylearn2's default, so the authors' runs), or "with-replacement".
    data_order: DataOrder = "shuffled"
    # pylearn2 SGD: lr divided by lr_decay after every update, floored at lr_min; momentum rises
    # linearly from momentum_start to momentum_end between epochs 1 and momentum_saturate_epoch.
    optimizer: Optimizer = "sgd"
    lr: float = 0.1
    lr_decay: float = 1.000004
    lr_min: float = 1e-6
    momentum_start: float = 0.5
    momentum_end: float = 0.7
    momentum_saturate_epoch: int = 250
    # Examples per epoch, for the momentum schedule and epoch budgets: the authors' training split
    # (MNIST: train[:50000]; CIFAR-10: 40,000).
    epoch_examples: int = 50_000
    adam_betas: tuple[float, float] = (0.5, 0.999)
    # Budget and bookkeeping.
    iterations: int = 1000
    seed: int = 0
    log_every: int = 100
    snapshot_every: int = 1000
    checkpoint_seconds: float = 60.0
    bf16: bool = False
    # Model selection, which the authors' file leaves open (no stopping rule, save_freq 1): every score_every
    # iterations (0 = never) G is scored by the Parzen protocol on the VALIDATION split (worker/validation.py);
    # keep "best" registers the G of the best-scoring iteration instead of the last one.
    score_every: int = 0
    keep: Keep = "last"

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """Inverse of to_dict (JSON turns tuples into lists); unknown keys are an error. A field missing from
        a config stored before it existed takes the value those runs had (LEGACY_VALUES)."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ConfigError(unknown[0], f"unknown parameter; allowed: {', '.join(sorted(names))}")
        fixed = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
        return cls(**{**LEGACY_VALUES, **fixed})

    @property
    def epoch_size(self) -> int:
        """Updates per epoch; the authors' MNIST epoch is 50,000 training images / batch 100 = 500."""
        return max(1, self.epoch_examples // self.batch_size)


# What runs did before a field existed, for configs (job rows, artifacts, checkpoints) stored without it.
LEGACY_VALUES: dict[str, Any] = {"data_order": "with-replacement"}

PRESETS: dict[str, TrainConfig] = {
    # The authors' MNIST recipe (mnist.yaml), exactly; the job chooses the iteration budget.
    "paper-mnist": TrainConfig(preset="paper-mnist", dataset="mnist", iterations=250 * 500,
                               log_every=100, snapshot_every=2500, checkpoint_seconds=60.0),
    # Recognizable digits within a few minutes on 2 CPU cores (used by `make run`): a 512-1024 G, D maxout
    # 240 x 2 pieces (paper dropout), Adam 4e-4, 6,000 updates (12 epochs). Tuned on real MNIST: with
    # G 256-512 or Adam 2e-4 the samples collapse to a few blurry 1s and 8s by 3,000-6,000 iterations.
    "quick": TrainConfig(preset="quick", dataset="mnist", g_hidden=(512, 1024), d_hidden=(240, 240),
                         d_pieces=2, g_init_range=0.05, d_init_range=0.005, optimizer="adam", lr=4e-4,
                         lr_decay=1.0, iterations=6000, log_every=50, snapshot_every=500,
                         checkpoint_seconds=30.0),
    # Figure 1: 1-D Gaussian data, uniform z, small MLPs.
    "toy-1d": TrainConfig(preset="toy-1d", dataset="toy-1d", latent_dim=1, g_hidden=(32, 32),
                          g_output="linear", g_bias_from_data=False, g_init_range=0.5,
                          d_hidden=(32, 32), d_pieces=2, d_init_range=0.5, d_input_keep=1.0,
                          d_hidden_keep=1.0, optimizer="adam", lr=1e-3, lr_decay=1.0, batch_size=128,
                          iterations=2000, log_every=20, snapshot_every=100, checkpoint_seconds=30.0),
    # 2-D mixtures (toy-ring, toy-grid): small MLPs where mode collapse shows as missing modes.
    "toy-2d": TrainConfig(preset="toy-2d", dataset="toy-ring", latent_dim=8, g_hidden=(128, 128),
                          g_output="linear", g_bias_from_data=False, g_init_range=0.15,
                          d_hidden=(128, 128), d_pieces=2, d_init_range=0.15, d_input_keep=1.0,
                          d_hidden_keep=1.0, optimizer="adam", lr=1e-3, lr_decay=1.0, batch_size=256,
                          iterations=3000, log_every=50, snapshot_every=250, checkpoint_seconds=30.0),
    # cifar10_fully_connected.yaml / tfd.yaml architectures: for GPU workers. CIFAR-10: 40,000 training
    # images, batch 100, lr 0.025 as in the authors' file.
    "paper-cifar10-fc": TrainConfig(preset="paper-cifar10-fc", dataset="cifar10", g_hidden=(8000, 8000),
                                    d_hidden=(1600, 1600), d_max_col_norm=1.9365, lr=0.025, epoch_examples=40_000,
                                    iterations=250 * 400, snapshot_every=2500),
    # cifar10_convolutional.yaml (Figure 2d): G 100 -> ReLU 8000 -> sigmoid 8000 -> (80, 10, 10) -> 5x5
    # transposed convolution, stride 3 -> (3, 32, 32); D three maxout conv layers (32, 32, 192 channels,
    # 2 pieces), a 500 x 5 maxout layer, one sigmoid unit; batch 128, lr 0.004.
    "paper-cifar10-conv": TrainConfig(preset="paper-cifar10-conv", dataset="cifar10", architecture="conv",
                                      g_hidden=(8000, 8000), d_hidden=(500,), d_pieces=5, batch_size=128,
                                      lr=0.004, epoch_examples=40_000, iterations=250 * 313, snapshot_every=2500),
    "paper-tfd": TrainConfig(preset="paper-tfd", dataset="tfd", g_hidden=(8000, 8000),
                             d_hidden=(1200, 1200), d_max_col_norm=1.9365, iterations=250 * 500,
                             snapshot_every=2500),
}

# Fields a job may override; the rest define a preset's architecture or are derived.
OVERRIDABLE: frozenset[str] = frozenset({
    "iterations", "k", "batch_size", "lr", "lr_decay", "lr_min", "momentum_start", "momentum_end",
    "objective", "update", "optimizer", "seed", "log_every", "snapshot_every", "checkpoint_seconds", "bf16",
    "g_hidden", "d_hidden", "d_pieces", "latent_dim", "score_every", "keep", "data_order",
})

MAX_ITERATIONS = 10_000_000


def resolve(preset: str, dataset: str | None = None, *, epochs: int | None = None, **overrides: Any) -> TrainConfig:
    """The preset with the job's overrides applied and validated (raises ConfigError naming the field).
    `epochs` is a budget in epochs instead of `iterations` (epochs x epoch_size iterations)."""
    if preset not in PRESETS:
        raise ConfigError("preset", f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    bad = sorted(k for k in overrides if k not in OVERRIDABLE)
    if bad:
        raise ConfigError(bad[0], f"cannot be set on a job; settable: {', '.join(sorted(OVERRIDABLE))}")
    clean = {k: tuple(v) if isinstance(v, list) else v for k, v in overrides.items() if v is not None}
    base = PRESETS[preset]
    config = dataclasses.replace(base, dataset=dataset or base.dataset, **clean)
    if epochs is not None:
        if "iterations" in clean:
            raise ConfigError("epochs", "give a budget in iterations or in epochs, not both")
        if not isinstance(epochs, int) or isinstance(epochs, bool) or epochs < 1:
            raise ConfigError("epochs", f"must be an integer >= 1, got {epochs!r}")
        if epochs * config.epoch_size > MAX_ITERATIONS:
            raise ConfigError("epochs", f"at most {MAX_ITERATIONS // config.epoch_size} epochs of "
                                        f"{config.epoch_size} iterations, got {epochs}")
        config = dataclasses.replace(config, iterations=epochs * config.epoch_size)
    validate(config)
    return config


def validate(c: TrainConfig) -> None:
    """Reject configs that cannot train; messages say what is allowed."""
    def positive_int(name: str, value: Any, upper: int | None = None) -> None:
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ConfigError(name, f"must be an integer >= 1, got {value!r}")
        if upper is not None and value > upper:
            raise ConfigError(name, f"must be at most {upper}, got {value}")

    def finite(name: str, value: Any, low: float = 0.0, high: float = math.inf,
               low_open: bool = False) -> None:
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
            raise ConfigError(name, f"must be a finite number, got {value!r}")
        if value < low or (low_open and value == low) or value > high:
            bound = f"> {low}" if low_open else f">= {low}"
            raise ConfigError(name, f"must be {bound} and <= {high}, got {value}")

    positive_int("iterations", c.iterations, MAX_ITERATIONS)
    positive_int("k", c.k, 100)
    positive_int("batch_size", c.batch_size, 10_000)
    positive_int("latent_dim", c.latent_dim, 10_000)
    positive_int("log_every", c.log_every)
    positive_int("snapshot_every", c.snapshot_every)
    positive_int("d_pieces", c.d_pieces, 64)
    positive_int("momentum_saturate_epoch", c.momentum_saturate_epoch)
    positive_int("epoch_examples", c.epoch_examples)
    finite("lr", c.lr, 0.0, 10.0, low_open=True)
    finite("lr_decay", c.lr_decay, 1.0, 2.0)
    finite("lr_min", c.lr_min, 0.0, 10.0)
    finite("momentum_start", c.momentum_start, 0.0, 1.0)
    finite("momentum_end", c.momentum_end, 0.0, 1.0)
    finite("noise_scale", c.noise_scale, 0.0, 1e6, low_open=True)
    finite("checkpoint_seconds", c.checkpoint_seconds, 1.0, 86_400.0)
    finite("d_input_keep", c.d_input_keep, 0.0, 1.0, low_open=True)
    finite("d_hidden_keep", c.d_hidden_keep, 0.0, 1.0, low_open=True)
    for name, layers in (("g_hidden", c.g_hidden), ("d_hidden", c.d_hidden)):
        if not isinstance(layers, tuple) or not layers or not all(
                isinstance(n, int) and not isinstance(n, bool) and 1 <= n <= 65_536 for n in layers):
            raise ConfigError(name, f"must be a non-empty list of layer widths in 1..65536, got {layers!r}")
    if c.objective not in ("non-saturating", "minimax"):
        raise ConfigError("objective", f"must be 'non-saturating' or 'minimax', got {c.objective!r}")
    if c.update not in ("alternating", "simultaneous"):
        raise ConfigError("update", f"must be 'alternating' or 'simultaneous', got {c.update!r}")
    if c.update == "simultaneous" and c.k != 1:
        raise ConfigError("k", f"must be 1 with update 'simultaneous' (one joint step per iteration), got {c.k}")
    if c.update == "simultaneous" and c.architecture == "conv":
        raise ConfigError("update", "the conv architecture trains with 'alternating' only")
    if c.architecture not in ("mlp", "conv"):
        raise ConfigError("architecture", f"must be 'mlp' or 'conv', got {c.architecture!r}")
    if c.architecture == "conv":
        _validate_conv(c)
    from models.datasets import is_toy  # torch-free, no database: toys are defined in code

    if is_toy(c.dataset) and c.g_output == "sigmoid":
        raise ConfigError("dataset", f"{c.dataset!r} is a toy of real-valued points, which a sigmoid output in "
                                     f"[0, 1] cannot reach: use the toy-1d or toy-2d preset")
    if c.data_order not in ("shuffled", "with-replacement"):
        raise ConfigError("data_order", f"must be 'shuffled' or 'with-replacement', got {c.data_order!r}")
    if c.optimizer not in ("sgd", "adam"):
        raise ConfigError("optimizer", f"must be 'sgd' or 'adam', got {c.optimizer!r}")
    if not isinstance(c.score_every, int) or isinstance(c.score_every, bool) or not 0 <= c.score_every <= MAX_ITERATIONS:
        raise ConfigError("score_every", f"must be an integer in 0..{MAX_ITERATIONS} (0 = never), got {c.score_every!r}")
    if c.score_every % c.log_every:
        # A score is stored on the metrics row of its iteration, so it must land on one.
        raise ConfigError("score_every", f"must be a multiple of log_every ({c.log_every}), got {c.score_every}")
    if c.keep not in ("last", "best"):
        raise ConfigError("keep", f"must be 'last' or 'best', got {c.keep!r}")
    if c.keep == "best" and c.score_every == 0:
        raise ConfigError("keep", "'best' needs score_every > 0: the best iteration is chosen by its validation score")
    if not isinstance(c.bf16, bool):
        raise ConfigError("bf16", f"must be true or false, got {c.bf16!r}")
    if not isinstance(c.seed, int) or isinstance(c.seed, bool) or not 0 <= c.seed < 2**63:
        raise ConfigError("seed", f"must be an integer in 0..2^63-1, got {c.seed!r}")


# The conv generator (models/conv_nets.py) reshapes its last hidden layer to (80, 10, 10) and a 5 x 5
# transposed convolution with stride 3 makes that 3 * (10 - 1) + 5 = 32 pixels a side.
CONV_G_CHANNELS, CONV_G_GRID, CONV_KERNEL, CONV_STRIDE = 80, 10, 5, 3
CONV_G_FEATURES = CONV_G_CHANNELS * CONV_G_GRID * CONV_G_GRID
CONV_SIDE = CONV_STRIDE * (CONV_G_GRID - 1) + CONV_KERNEL


def check_conv_shape(shape: tuple[int, ...]) -> str | None:
    """Why the conv nets cannot model images of `shape`, or None."""
    if len(shape) != 3 or tuple(shape[1:]) != (CONV_SIDE, CONV_SIDE) or shape[0] not in (1, 3):
        return (f"the conv architecture needs 1 or 3 x {CONV_SIDE} x {CONV_SIDE} images, the data is "
                f"{' x '.join(map(str, shape))}")
    return None


def _validate_conv(c: TrainConfig) -> None:
    """The conv nets are built for C x 32 x 32 images (see models/conv_nets.py)."""
    from models.datasets import DatasetError, image_shape_of

    if c.g_hidden[-1] != CONV_G_FEATURES:
        raise ConfigError("g_hidden", f"the conv generator reshapes its last hidden layer to (80, 10, 10): "
                                      f"it must have {CONV_G_FEATURES} units, got {c.g_hidden[-1]}")
    try:
        shape = image_shape_of(c.dataset)
    except DatasetError:
        return  # an unknown dataset is reported by the caller, which knows the field it came from
    problem = check_conv_shape(shape)
    if problem:
        raise ConfigError("dataset", f"{c.dataset!r}: {problem}")


def preset_names() -> list[str]:
    return list(PRESETS)


__all__ = ["OVERRIDABLE", "PRESETS", "ConfigError", "TrainConfig", "preset_names", "resolve", "validate"]
