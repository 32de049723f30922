"""Training hyperparameters: ONE pydantic model, stored on the job row and inside every artifact.

Every option is declared once, below: its type, bounds, default and documentation. Fields made with
`option(...)` may be set by a job; the API's request body (service/api/schemas.py) is derived from them, so
adding an option is one edit here. Fields made with `fixed(...)` belong to a preset's architecture.

Torch-free on purpose: the API resolves and validates configs at POST /jobs without loading torch.
Presets follow the authors' pylearn2 YAML files (goodfeli/adversarial: mnist.yaml, cifar10_fc.yaml).
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from annotated_types import Ge, Le
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, Strict, model_validator
from pydantic.fields import FieldInfo

from models.config_data import check_against_data, class_names
from models.config_errors import ConfigError, checked

Objective = Literal["non-saturating", "minimax"]
Update = Literal["alternating", "simultaneous"]
Optimizer = Literal["sgd", "adam"]
OutputKind = Literal["sigmoid", "linear"]
Architecture = Literal["mlp", "conv"]
Keep = Literal["last", "best"]
DataOrder = Literal["shuffled", "with-replacement"]
Engine = Literal["auto", "autograd", "fused"]
LrSchedule = Literal["exponential", "cosine"]
OnLost = Literal["continue", "restart"]

MAX_ITERATIONS = 10_000_000


def _integral(value: Any) -> Any:
    """JSON Schema counts 5.0 as an integer, so a client may send it; it is taken as 5. Other floats stay
    floats for the strict check to refuse."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


# Strict: a JSON `true` is not the integer 1, and "5" is not 5.
Int = Annotated[int, BeforeValidator(_integral), Strict()]
Width = Annotated[int, BeforeValidator(_integral), Strict(), Ge(1), Le(65_536)]
Layers = Annotated[tuple[Width, ...], Field(min_length=1, max_length=16)]


def option(default: Any, description: str, **bounds: Any) -> Any:
    """A field a job may set (POST /jobs)."""
    return Field(default, description=description, json_schema_extra={"job_option": True}, **bounds)


def fixed(default: Any, description: str, **bounds: Any) -> Any:
    """A field a preset decides."""
    return Field(default, description=description, **bounds)


class TrainConfig(BaseModel):
    """Everything that decides what a training run computes (Algorithm 1 plus the networks)."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    preset: str = fixed(..., "the preset this config started from")
    dataset: str = fixed(..., "the training data (models/datasets)")
    architecture: Architecture = fixed(
        "mlp", "mlp: the MLPs below over D = C*H*W (models/nets/mlp.py); conv: Figure 2d's CIFAR-10 nets "
               "(models/nets/conv.py)")
    engine: Engine = option(
        "auto", "how training steps are computed: autograd (the readable loop, any architecture), fused (the "
                "hand-written passes of the MLP/maxout nets, faster), auto: fused where it applies")
    latent_dim: Int = option(100, "dimension of z", ge=1, le=10_000)
    noise_scale: float = fixed(math.sqrt(3.0), "z ~ U[-s, s]^latent_dim; sqrt(3) gives unit variance",
                               gt=0.0, le=1e6)
    g_hidden: Layers = option((1200, 1200), "G's hidden layer widths (Linear + ReLU)")
    g_init_range: float = fixed(0.05, "G's weights ~ U[-r, r]", gt=0.0, le=10.0)
    g_output: OutputKind = fixed("sigmoid", "G's output unit: sigmoid for pixels in [0, 1], linear for points")
    g_bias_from_data: bool = fixed(True, "G's output bias = logit of the per-pixel training mean (pylearn2's "
                                         "init_sigmoid_bias_from_marginals)")
    standardize: bool = fixed(
        False, "real-valued points (a linear G output): G and D work on (x - mean) / sd of the training set, so "
               "D's maxout kinks start inside the data; what the hooks and the artifact see is data space "
               "(worker/training/space.py)")
    d_hidden: Layers = option((240, 240), "D's maxout hidden layer widths (units)")
    d_pieces: Int = option(5, "linear pieces per maxout unit", ge=1, le=64)
    d_init_range: float = fixed(0.005, "D's weights ~ U[-r, r]", gt=0.0, le=10.0)
    d_input_keep: float = fixed(0.8, "dropout keep probability of D's input", gt=0.0, le=1.0)
    d_hidden_keep: float = fixed(0.5, "dropout keep probability of D's hidden layers", gt=0.0, le=1.0)
    d_max_col_norm: float | None = fixed(None, "each D unit's incoming weight norm is clipped to this", gt=0.0)
    objective: Objective = option(
        "non-saturating", "G's loss: non-saturating maximises log D(G(z)) (the paper's advice); minimax "
                          "minimises log(1 - D(G(z)))")
    k: Int = option(1, "D steps per G step (Algorithm 1)", ge=1, le=100)
    update: Update = option(
        "alternating", "alternating: Algorithm 1 as printed (k D-steps on fresh data and z, then a G-step on "
                       "fresh z); simultaneous: the authors' code, both nets step from one forward pass (k = 1)")
    batch_size: Int = option(100, "examples per minibatch (m)", ge=1, le=10_000)
    data_order: DataOrder = option(
        "shuffled", "shuffled: every pass over the training set a new permutation, each row once (pylearn2's, "
                    "the authors'); with-replacement: i.i.d. indices")
    optimizer: Optimizer = option("sgd", "sgd with momentum (the paper's) or adam")
    lr: float = option(0.1, "learning rate at the first update; lr_schedule says how it decays", gt=0.0, le=10.0)
    lr_schedule: LrSchedule = option(
        "exponential", "exponential: SGD divides lr by lr_decay after every update (pylearn2's), Adam keeps lr; "
                       "cosine: either optimizer follows half a cosine from lr to lr_min over the iterations")
    lr_decay: float = option(1.000004, "SGD's per-update learning-rate divisor (lr_schedule exponential)",
                             ge=1.0, le=2.0)
    lr_min: float = option(1e-6, "floor of the decayed learning rate; the cosine schedule's last", ge=0.0, le=10.0)
    momentum_start: float = option(0.5, "SGD momentum at epoch 1", ge=0.0, le=1.0)
    momentum_end: float = option(0.7, "SGD momentum from momentum_saturate_epoch on", ge=0.0, le=1.0)
    momentum_saturate_epoch: Int = fixed(250, "the epoch at which momentum reaches momentum_end", ge=1)
    epoch_examples: Int = fixed(50_000, "examples per epoch, for the momentum schedule and epoch budgets (the "
                                        "authors' training split: MNIST 50,000, CIFAR-10 40,000)", ge=1)
    adam_betas: tuple[float, float] = fixed((0.5, 0.999), "Adam's (beta1, beta2)")
    iterations: Int = option(1000, "training iterations (one G update each)", ge=1, le=MAX_ITERATIONS)
    seed: Int = option(0, "seeds weights, minibatches, z and dropout: a run is reproducible", ge=0, le=2**63 - 1)
    log_every: Int = option(100, "iterations per metrics row", ge=1, le=MAX_ITERATIONS)
    snapshot_every: Int = option(1000, "iterations per sample grid", ge=1, le=MAX_ITERATIONS)
    checkpoint_seconds: float = option(60.0, "seconds between resumable checkpoints", ge=1.0, le=86_400.0)
    bf16: Annotated[bool, Strict()] = option(False, "bf16 matrix products (weights and updates stay fp32)")
    score_every: Int = option(
        0, "score G every N iterations (a multiple of log_every; 0 = never) by the Parzen protocol on the "
           "validation split: valid_ll joins that iteration's metrics row", ge=0, le=MAX_ITERATIONS)
    keep: Keep = option("last", "which G becomes the version: the last or the best-scoring one (needs "
                                "score_every)")
    on_lost: OnLost = option(
        "continue", "when the game is lost (mean D(G(z)) below 0.01 for 1,000 iterations, as GET /jobs/{id} warns): "
                    "continue, or restart from scratch with the next unused seed (at most max_restarts times)")
    max_restarts: Int = option(3, "on_lost 'restart': restarts allowed before the run just continues", ge=0, le=100)
    conditional: Annotated[bool, Strict()] = option(
        False, "p(x | c), the paper's section 7.1: the class c of a labelled dataset (mnist, fashion-mnist, cifar10, "
               "an upload with one folder per class) enters G (one-hot, beside z) and D (one-hot beside x, and "
               "a projection onto D's last hidden layer); /samples then takes `label`")
    g_class_scale: float = fixed(
        10.0, "a conditional G's c (one-hot) is multiplied by this beside z: z's 100 unit-variance entries have "
              "norm 10, and a c of norm 1 starts 10 times weaker and, under Adam, moves G 10 times slower (the "
              "README's figures)", gt=0.0, le=1000.0)
    label_names: tuple[str, ...] = fixed((), "the classes c ranges over (class k: label_names[k]), from the "
                                             "dataset when conditional; () otherwise")
    encoder: Annotated[bool, Strict()] = option(
        False, "learned inference E(x) -> z, the paper's section 7.2: after G, an MLP trained on pairs (G(z), z) "
               "with z from the prior, exported beside G; POST /encode runs it")
    encoder_iterations: Int = option(3000, "E's Adam updates on fresh (G(z), z) minibatches", ge=1, le=MAX_ITERATIONS)
    encoder_data_iterations: Int = option(
        0, "after E's updates on (G(z), z): this many more on real training images, minimizing the pixel error of "
           "G(E(x)) through the frozen G (the paper's optional second phase; 0 = none)", ge=0, le=MAX_ITERATIONS)
    e_hidden: Layers = option((1024, 512), "E's hidden layer widths (Linear + ReLU)")

    @model_validator(mode="after")
    def _consistent(self) -> TrainConfig:
        if self.update == "simultaneous" and self.k != 1:
            raise ConfigError("k", f"must be 1 with update 'simultaneous' (one joint step per iteration), "
                                   f"got {self.k}")
        if self.update == "simultaneous" and self.architecture == "conv":
            raise ConfigError("update", "the conv architecture trains with 'alternating' only")
        if self.engine == "fused" and self.architecture != "mlp":
            raise ConfigError("engine", "'fused' covers the mlp architecture only; use 'autograd' or 'auto'")
        if self.engine == "fused" and self.conditional:
            raise ConfigError("engine", "'fused' covers unconditional nets only; use 'autograd' or 'auto' with "
                                        "conditional")
        if self.standardize and (self.architecture != "mlp" or self.g_output != "linear"):
            raise ConfigError("standardize", "applies to real-valued points: the mlp architecture with a linear "
                                             "G output")
        if self.score_every % self.log_every:
            # A score is stored on the metrics row of its iteration, so it must land on one.
            raise ConfigError("score_every", f"must be a multiple of log_every ({self.log_every}), "
                                             f"got {self.score_every}")
        if self.keep == "best" and self.score_every == 0:
            raise ConfigError("keep", "'best' needs score_every > 0: the best iteration is chosen by its "
                                      "validation score")
        return self

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """Inverse of to_dict for a stored config (job row, artifact, checkpoint), which resolve() validated when
        it was made: unknown keys are an error, values are taken as stored. A field missing from a config stored
        before it existed takes the value those runs had (LEGACY_VALUES)."""
        unknown = sorted(set(data) - set(cls.model_fields))
        if unknown:
            raise ConfigError(unknown[0], f"unknown parameter; allowed: {', '.join(sorted(cls.model_fields))}")
        as_stored = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}  # JSON has no tuples
        return cls.model_construct(**{**LEGACY_VALUES, **as_stored})

    def replace(self, **changes: Any) -> TrainConfig:
        """A copy with `changes` applied, unchecked, for code and tests that build configs (a checkpoint every
        iteration, none at all); a job's config comes from resolve(), which validates."""
        return self.model_copy(update=changes)

    @property
    def epoch_size(self) -> int:
        """Updates per epoch; the authors' MNIST epoch is 50,000 training images / batch 100 = 500."""
        return max(1, self.epoch_examples // self.batch_size)

    @property
    def uses_fused_engine(self) -> bool:
        return self.engine == "fused" or (self.engine == "auto" and self.architecture == "mlp"
                                          and not self.conditional)

    @property
    def num_classes(self) -> int:
        """The size of c's one-hot: the number of classes of a conditional run, 0 otherwise."""
        return len(self.label_names) if self.conditional else 0


# What runs did before a field existed, for configs (job rows, artifacts, checkpoints) stored without it.
LEGACY_VALUES: dict[str, Any] = {"data_order": "with-replacement", "engine": "auto", "standardize": False,
                                 "lr_schedule": "exponential", "on_lost": "continue", "max_restarts": 3,
                                 "conditional": False, "label_names": (), "encoder": False,
                                 "encoder_iterations": 3000, "e_hidden": (1024, 512),
                                 "encoder_data_iterations": 0, "g_class_scale": 1.0}


def option_fields() -> dict[str, FieldInfo]:
    """The fields a job may set, in declaration order."""
    return {name: info for name, info in TrainConfig.model_fields.items()
            if isinstance(info.json_schema_extra, dict) and info.json_schema_extra.get("job_option")}


PRESETS: dict[str, TrainConfig] = {
    # The authors' MNIST recipe (mnist.yaml), exactly; the job chooses the iteration budget.
    "paper-mnist": TrainConfig(preset="paper-mnist", dataset="mnist", iterations=250 * 500,
                               log_every=100, snapshot_every=2500, checkpoint_seconds=60.0),
    # Recognizable digits within a few minutes on 2 CPU cores (used by `make run`): a 512-1024 G, D maxout
    # 240 x 2 pieces (paper dropout), Adam 4e-4, 6,000 updates (12 epochs). With G 256-512 or Adam 2e-4 the
    # samples collapse to a few blurry 1s and 8s by 3,000-6,000 iterations.
    "quick": TrainConfig(preset="quick", dataset="mnist", g_hidden=(512, 1024), d_hidden=(240, 240),
                         d_pieces=2, g_init_range=0.05, d_init_range=0.005, optimizer="adam", lr=4e-4,
                         lr_decay=1.0, iterations=6000, log_every=50, snapshot_every=500,
                         checkpoint_seconds=30.0),
    # p(x | c) on MNIST (the paper's section 7.1): quick's nets, Adam and budget, with c's one-hot beside z (times
    # g_class_scale) and beside x. The README gives the share of samples of the class asked for.
    "conditional-mnist": TrainConfig(preset="conditional-mnist", dataset="mnist", conditional=True,
                                     g_hidden=(512, 1024), d_hidden=(240, 240), d_pieces=2, optimizer="adam",
                                     lr=4e-4, lr_decay=1.0, iterations=6000, log_every=50, snapshot_every=500,
                                     checkpoint_seconds=30.0),
    # Figure 1: 1-D Gaussian data, a 1-D uniform z, small MLPs, on standardized points (worker/training/space.py:
    # without it D's kinks sit outside the data and it gives up at D = 1/2 while G is still too wide), k = 5
    # D-steps per G-step, keeping D near its optimum as the figure assumes, and Adam's rate decayed by a cosine
    # to 1e-5: at a constant rate G keeps wandering around p_data instead of settling on it.
    "toy-1d": TrainConfig(preset="toy-1d", dataset="toy-1d", latent_dim=1, g_hidden=(32, 32),
                          g_output="linear", g_bias_from_data=False, standardize=True, g_init_range=0.5,
                          d_hidden=(32, 32), d_pieces=2, d_init_range=0.5, d_input_keep=1.0,
                          d_hidden_keep=1.0, k=5, optimizer="adam", lr=1e-3, lr_schedule="cosine", lr_min=1e-5,
                          lr_decay=1.0, batch_size=128, iterations=3000, log_every=20, snapshot_every=100,
                          checkpoint_seconds=30.0),
    # 2-D mixtures (toy-ring, toy-grid): small MLPs where mode collapse shows as missing modes.
    "toy-2d": TrainConfig(preset="toy-2d", dataset="toy-ring", latent_dim=8, g_hidden=(128, 128),
                          g_output="linear", g_bias_from_data=False, standardize=True, g_init_range=0.15,
                          d_hidden=(128, 128), d_pieces=2, d_init_range=0.15, d_input_keep=1.0,
                          d_hidden_keep=1.0, optimizer="adam", lr=1e-3, lr_decay=1.0, batch_size=256,
                          iterations=3000, log_every=50, snapshot_every=250, checkpoint_seconds=30.0),
    # cifar10_fully_connected.yaml's architecture, for GPU workers: 40,000 training images, batch 100,
    # lr 0.025 as in the authors' file.
    "paper-cifar10-fc": TrainConfig(preset="paper-cifar10-fc", dataset="cifar10", g_hidden=(8000, 8000),
                                    d_hidden=(1600, 1600), d_max_col_norm=1.9365, lr=0.025, epoch_examples=40_000,
                                    iterations=250 * 400, snapshot_every=2500),
    # cifar10_convolutional.yaml (Figure 2d): G 100 -> ReLU 8000 -> sigmoid 8000 -> (80, 10, 10) -> 5x5
    # transposed convolution, stride 3 -> (3, 32, 32); D three maxout conv layers (32, 32, 192 channels,
    # 2 pieces), a 500 x 5 maxout layer, one sigmoid unit; batch 128, lr 0.004.
    "paper-cifar10-conv": TrainConfig(preset="paper-cifar10-conv", dataset="cifar10", architecture="conv",
                                      g_hidden=(8000, 8000), d_hidden=(500,), d_pieces=5, batch_size=128,
                                      lr=0.004, epoch_examples=40_000, iterations=250 * 313, snapshot_every=2500),
}

def resolve(preset: str, dataset: str | None = None, *, epochs: int | None = None, **overrides: Any) -> TrainConfig:
    """The preset with the job's overrides applied and validated (raises ConfigError naming the field).
    `epochs` is a budget in epochs instead of `iterations` (epochs x epoch_size iterations)."""
    if preset not in PRESETS:
        raise ConfigError("preset", f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    settable = option_fields()
    bad = sorted(k for k in overrides if k not in settable)
    if bad:
        raise ConfigError(bad[0], f"cannot be set on a job; settable: {', '.join(sorted(settable))}")
    clean = {k: v for k, v in overrides.items() if v is not None}
    base = PRESETS[preset]
    config = checked(TrainConfig, {**base.model_dump(), "dataset": dataset or base.dataset, **clean})
    if epochs is not None:
        config = config.replace(iterations=_epoch_budget(epochs, config, "iterations" in clean))
    config = config.replace(label_names=class_names(config.conditional, config.dataset))
    check_against_data(config)
    return config


def _epoch_budget(epochs: Any, config: TrainConfig, iterations_given: bool) -> int:
    if iterations_given:
        raise ConfigError("epochs", "give a budget in iterations or in epochs, not both")
    if not isinstance(epochs, int) or isinstance(epochs, bool) or epochs < 1:
        raise ConfigError("epochs", f"must be an integer >= 1, got {epochs!r}")
    if epochs * config.epoch_size > MAX_ITERATIONS:
        raise ConfigError("epochs", f"at most {MAX_ITERATIONS // config.epoch_size} epochs of "
                                    f"{config.epoch_size} iterations, got {epochs}")
    return epochs * config.epoch_size


__all__ = ["LEGACY_VALUES", "PRESETS", "ConfigError", "TrainConfig", "option_fields", "resolve"]
