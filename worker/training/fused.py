"""Algorithm 1 of Goodfellow et al. (2014), literally, with the authors' MNIST recipe (models.config).

Each iteration (config.update "alternating", the default): k D-steps, each on a fresh minibatch of data and
fresh z, ascending ½[log D(x) + log(1 − D(G(z)))]; then one G-step on fresh z, ascending log D(G(z))
(non-saturating, §3) or descending log(1 − D(G(z))) (minimax). D runs with dropout in both steps.
"simultaneous" is the authors' released code instead (AdversaryCost2): one dropout forward pass of a data
minibatch and G(z) gives both nets' gradients, G's taken through D before D moves, and both step.
Losses are computed from D's logits with softplus, so they never overflow: −log D = softplus(−l),
−log(1 − D) = softplus(l). Maxout ties send the gradient to every tied piece, as Theano's max did.

Randomness: one torch.Generator on the device, seeded with config.seed, draws (in this order, per D-step)
the minibatch (worker/minibatches.py: the next rows of a shuffled pass over the training set, a new
permutation when one runs out, or i.i.d. indices with replacement), z, then D's dropout masks; per G-step z,
then the masks (per simultaneous step: minibatch, z, masks). Its state and the permutation are in every
checkpoint, so a resumed run is bit-identical on CPU.

Metrics: d_loss, g_loss, d_real, d_fake, value, jsd are AVERAGES over the steps of the logging interval
(d_* and value from the D-steps' forward passes, g_loss from the G-steps'; accumulated on the device and
read when logged); lr and momentum are those of the interval's last iteration; it_per_s is measured over the
interval. Losses are checked for NaN/inf after every iteration on CPU (every log_every on CUDA).

The passes are hand-written (models.nets.GeneratorPass / DiscriminatorPass): no autograd graph, only the
products each step needs, the momentum update fused into the weight-gradient product. bf16 (config.bf16)
works like autocast: products in bf16 on bf16 copies of the fp32 weights, losses and updates in fp32.
The optimizers and schedules are worker/optim.py's; hooks, metrics rows and errors are worker/hooks.py's.
"""

from __future__ import annotations

import math
import os
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from models.config import TrainConfig
from models.nets.mlp import (
    DiscriminatorPass,
    GeneratorPass,
    build_discriminator,
    build_generator,
    derived_generator,
    noise,
    padded,
)
from worker.training.checkpoint import load_checkpoint, restore_stream, run_checkpoint
from worker.training.device import training_device
from worker.training.hooks import (
    SNAPSHOT_SAMPLES,
    NonFiniteLoss,
    TrainHooks,
    TrainingStopped,
    TrainOutcome,
    metrics_row,
)
from worker.training.minibatches import Minibatches
from worker.training.optim import learning_rate, momentum, optimizer


def _max_col_norm(linears: list[nn.Linear], limit: float | None) -> None:
    """Rescale each unit's incoming weight vector (a row of W (out, in)) whose L2 norm exceeds `limit`."""
    if limit is not None:
        for lin in linears:
            w = lin.weight.data
            w.mul_((limit / w.norm(dim=1, keepdim=True).clamp_min(1e-30)).clamp_max(1.0))


@torch.no_grad()
def train(config: TrainConfig, data: np.ndarray, hooks: TrainHooks, *, resume: bytes | None = None,
          device: str = "auto") -> TrainOutcome:
    """Run Algorithm 1 on `data` (N, D) float32 until config.iterations (continuing `resume` if given)."""
    started = time.monotonic()
    dev = training_device(device)
    if dev.type == "cpu":
        torch.set_num_threads(max(1, len(os.sched_getaffinity(0))))
    if data.ndim != 2 or len(data) < 1:
        raise ValueError(f"training data must be (N, D) with N >= 1, got shape {data.shape}")
    n, dim, m = data.shape[0], data.shape[1], config.batch_size
    cdt = torch.bfloat16 if config.bf16 else torch.float32
    gnet = build_generator(config, np.asarray(np.mean(data, axis=0, dtype=np.float64))).to(dev)
    dnet = build_discriminator(config, dim).to(dev)
    rng = torch.Generator(device=dev).manual_seed(config.seed)
    batches = Minibatches(config.data_order, n, m, rng, dev)
    state = load_checkpoint(resume, config, (n, dim)) if resume is not None else None
    if state is not None:
        gnet.load_state_dict(state["generator"])
        dnet.load_state_dict(state["discriminator"])
        restore_stream(rng, batches, state, config.seed)
    gp = GeneratorPass(gnet, m, cdt)
    dp = DiscriminatorPass(dnet, 2 * m, cdt, rng)
    g_opt, d_opt = optimizer(gp.packed, config), optimizer(dp.packed, config)
    if state is not None:
        g_opt.load_state_dict(state["opt_g"])
        d_opt.load_state_dict(state["opt_d"])
    start = int(state["iteration"]) if state is not None else 0
    # The training set lives on the device as one tensor, in D's input layout (the constant column that
    # carries D's first bias, see models.nets._Pass); minibatches are index draws from it.
    x_all = padded(n, dim + 1, cdt, dev)                              # (N, D + 1), rows as D's input buffer
    for lo in range(0, n, 8192):                      # (a writable copy per chunk: data may be read-only)
        x_all[lo:lo + 8192, :dim] = torch.from_numpy(np.array(data[lo:lo + 8192], dtype=np.float32))
    x_all[:, dim] = dp.inputs[0][0, dim]
    fixed_z = noise((SNAPSHOT_SAMPLES, config.latent_dim), config.noise_scale,
                    derived_generator(config.seed, 3)).to(dev)                          # same across resumes
    s = config.noise_scale
    # D's input buffer (2m, D + 1): m real rows (whole rows of x_all), then G(z) written in place.
    x_real, x_fake, x_both = dp.inputs[0][:m], dp.inputs[0][m:, :dim], dp.inputs[0][:, :dim]
    # D's input rows: m real, then m G(z). Constants of the D-step's loss, per row:
    sign = torch.ones(2 * m, 1, device=dev)
    sign[:m] = -1.0                                      # -log D(x) = softplus(-l), -log(1 - D) = softplus(l)
    target = torch.zeros(2 * m, 1, device=dev)
    target[:m] = -0.5 / m                                             # dl = (p - y) / (2m) = p / (2m) + target
    halves = torch.zeros(2, 2 * m, device=dev)                        # row means of each half, as one product
    halves[0, :m] = halves[1, m:] = 1.0 / m
    dstats = torch.zeros(2, 2, device=dev)  # sums of [[-log D(x), D(x)], [-log(1 - D(G(z))), D(G(z))]]
    gstat = torch.zeros(1, device=dev)      # sum of g_loss
    steps = [0, 0]                        # D-steps and G-steps in the logging interval
    check_every = 1 if dev.type == "cpu" else config.log_every      # a finiteness check syncs the device
    last_row: dict[str, float] = {}
    last_log_t, last_log_it = time.monotonic(), start
    last_ckpt = time.monotonic()

    def draw_data() -> None:
        torch.index_select(x_all, 0, batches.next(), out=x_real)

    def d_dlogits(logits: Tensor) -> Tensor:
        """(2m, 1) gradient of D's loss ½[mean softplus(-l_real) + mean softplus(l_fake)] = (p - y) / (2m),
        logits: m real rows, then m fake rows; adds the rows to the D-step statistics."""
        p = torch.sigmoid(logits)                                     # D(x) rows, then D(G(z)) rows
        dstats.addmm_(halves, torch.cat([F.softplus(logits * sign), p], 1))
        return torch.add(target, p, alpha=0.5 / m).to(cdt)

    def g_dlogits(logits: Tensor) -> Tensor:
        """(m, 1) gradient of G's loss w.r.t. D's logits on its m samples; adds to the G-step statistics."""
        p = torch.sigmoid(logits)
        if config.objective == "non-saturating":                      # G minimises -log D(G(z))
            gstat.add_(F.softplus(-logits).mean())
            return ((p - 1.0) / m).to(cdt)
        gstat.sub_(F.softplus(logits).mean())                         # G minimises log(1 - D(G(z)))
        return (-p / m).to(cdt)

    def update_d(dl: Tensor, lr: float, mu: float) -> None:
        d_opt.begin(lr, mu)
        dp.backward(dl, d_opt.sink, input_grad=False)                 # no gradient into the data
        d_opt.step()
        _max_col_norm(dnet.linears, config.d_max_col_norm)
        dp.refresh()
        steps[0] += 1

    def update_g(dx: Tensor, lr: float, mu: float) -> None:
        g_opt.begin(lr, mu)
        gp.backward(dx, g_opt.sink)
        g_opt.step()
        gp.refresh()
        steps[1] += 1

    def d_step(lr: float, mu: float) -> None:
        draw_data()
        gp.z.uniform_(-s, s, generator=rng)
        gp.forward(out=x_fake)                                        # no G backward: G is not updated here
        logits = dp.forward(x_both).float()                           # (2m, 1), one pass for real and fake
        update_d(d_dlogits(logits), lr, mu)

    def g_step(lr: float, mu: float) -> None:
        gp.z.uniform_(-s, s, generator=rng)                          # fresh z (Algorithm 1)
        x = gp.forward()                                              # (m, D)
        logits = dp.forward(x).float()                                # (m, 1) through D with fresh dropout
        dx = dp.backward(g_dlogits(logits), None, input_grad=True)   # input grads only: D is not updated
        assert dx is not None
        update_g(dx, lr, mu)

    def joint_step(lr: float, mu: float) -> None:
        """The authors' code: both gradients from one dropout forward pass of [x; G(z)], both nets step."""
        draw_data()
        gp.z.uniform_(-s, s, generator=rng)
        x_fake.copy_(gp.forward())                    # G's own buffer keeps G(z) for G's backward
        logits = dp.forward(x_both).float()                           # (2m, 1)
        dl_d = d_dlogits(logits)
        dl_g = torch.zeros_like(dl_d)                                 # the real rows carry no G gradient
        dl_g[m:] = g_dlogits(logits[m:])
        dx = dp.backward(dl_g, None, input_grad=True)                 # through D before D moves
        assert dx is not None
        update_g(dx[m:], lr, mu)
        update_d(dl_d, lr, mu)

    def snapshot(done: int) -> None:
        gnet.eval()
        hooks.on_snapshot(done, gnet(fixed_z).float().cpu().numpy())
        if dim == 1 and hasattr(hooks, "on_figure1"):   # 1-D toys: the paper's Figure 1 (worker/toy_snapshot.py)
            hooks.on_figure1(done, gnet, dnet)

    def checkpoint(done: int) -> bytes:
        return run_checkpoint(config, (n, dim), done, gnet, dnet, g_opt, d_opt, rng, batches)

    def check_finite(done: int) -> None:
        (d_real_nll, _), (d_fake_nll, _) = dstats.tolist()
        for name, value in (("d_loss", d_real_nll + d_fake_nll), ("g_loss", gstat.item())):
            if not math.isfinite(value):
                where = f"iteration {done}" if check_every == 1 else f"iterations {done - check_every + 1}..{done}"
                raise NonFiniteLoss(f"{name} became {value} at {where}; the run diverged "
                                    f"(try a smaller lr or another seed)")

    done = start
    for it in range(start, config.iterations):
        if hooks.should_stop():
            raise TrainingStopped(f"stopped before iteration {it + 1}")
        lr, mu = learning_rate(config, it), momentum(config, it)
        if config.update == "simultaneous":
            joint_step(lr, mu)
        else:
            for _ in range(config.k):
                d_step(lr, mu)
            g_step(lr, mu)
        done = it + 1
        final = done == config.iterations
        if done % check_every == 0 or final:
            check_finite(done)
        if done % config.log_every == 0 or final:
            check_finite(done)
            ((nll_real, d_real), (nll_fake, d_fake)), now = dstats.tolist(), time.monotonic()
            last_row = metrics_row(config, done, lr, mu, [nll_real, nll_fake, d_real, d_fake, gstat.item()],
                                   steps[0], steps[1], (done - last_log_it) / max(now - last_log_t, 1e-9))
            if config.score_every and (done % config.score_every == 0 or final):    # a multiple of log_every
                gnet.eval()
                last_row = {**last_row, **hooks.on_score(done, gnet)}
            hooks.on_metrics(last_row)
            dstats.zero_()
            gstat.zero_()
            steps[0] = steps[1] = 0
            last_log_t, last_log_it = time.monotonic(), done                # it/s leaves the scoring out
        if done % config.snapshot_every == 0 or final:
            snapshot(done)
        if not final and time.monotonic() - last_ckpt >= config.checkpoint_seconds:
            hooks.on_checkpoint(done, checkpoint(done))
            last_ckpt = time.monotonic()
    gp.release()
    dp.release()
    gnet.eval()
    return TrainOutcome(generator=gnet.float().cpu(), iterations=done, metrics=last_row,
                        seconds=time.monotonic() - started)


# The job and the conv trainer import these from here too: the MLP trainer is the reference loop.
__all__ = ["NonFiniteLoss", "TrainHooks", "TrainOutcome", "TrainingStopped", "learning_rate", "momentum", "train"]
