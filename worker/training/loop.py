"""Algorithm 1 for the conv nets of Figure 2d (models/conv_nets.py), with autograd.

worker/train.py trains the MLPs with hand-written passes over Linear layers; convolutions need autograd, so
architecture == "conv" runs here (worker/training_job.py picks). The contract is the same as train.train:
the same hooks, metrics rows, snapshot grids, checkpoint format (worker/checkpoint.py) and errors, and the
same order of random draws from one seeded torch.Generator (per D-step: minibatch indices, z, D's masks; per
G-step: z, the masks), so a resumed run continues bit-identically on CPU.

Updates, schedules, hooks and metrics rows are the ones train.py uses (worker/optim.py, worker/hooks.py).
"""

from __future__ import annotations

import math
import os
import time

import numpy as np
import torch
import torch.nn.functional as F

from models.config import TrainConfig
from models.nets.mlp import build_discriminator, build_generator, derived_generator, noise
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
from worker.training.optim import Adam, Momentum, learning_rate, momentum, optimizer


def _update(opt: Momentum | Adam, grads: tuple[torch.Tensor, ...], lr: float, mu: float) -> None:
    opt.begin(lr, mu)
    for i, grad in enumerate(grads):
        opt.apply(i, grad)
    opt.step()


def train(config: TrainConfig, data: np.ndarray, hooks: TrainHooks, *, resume: bytes | None = None,
          device: str = "auto") -> TrainOutcome:
    """Run Algorithm 1 on `data` (N, C*32*32) float32 until config.iterations (continuing `resume`)."""
    started = time.monotonic()
    dev = training_device(device)
    if dev.type == "cpu":
        torch.set_num_threads(max(1, len(os.sched_getaffinity(0))))
    if data.ndim != 2 or len(data) < 1:
        raise ValueError(f"training data must be (N, D) with N >= 1, got shape {data.shape}")
    n, dim, m = data.shape[0], data.shape[1], config.batch_size
    gnet = build_generator(config, np.asarray(np.mean(data, axis=0, dtype=np.float64))).to(dev)
    dnet = build_discriminator(config, dim).to(dev)
    g_params, d_params = list(gnet.parameters()), list(dnet.parameters())
    g_opt, d_opt = optimizer(g_params, config), optimizer(d_params, config)
    rng = torch.Generator(device=dev).manual_seed(config.seed)
    batches = Minibatches(config.data_order, n, m, rng, dev)
    start = 0
    if resume is not None:
        state = load_checkpoint(resume, config, (n, dim))
        gnet.load_state_dict(state["generator"])
        dnet.load_state_dict(state["discriminator"])
        g_opt.load_state_dict(state["opt_g"])
        d_opt.load_state_dict(state["opt_d"])
        restore_stream(rng, batches, state, config.seed)
        start = int(state["iteration"])
    x_all = torch.from_numpy(np.ascontiguousarray(data, dtype=np.float32)).to(dev)         # (N, D)
    fixed_z = noise((SNAPSHOT_SAMPLES, config.latent_dim), config.noise_scale,
                    derived_generator(config.seed, 3)).to(dev)
    s = config.noise_scale
    real = torch.cat([torch.ones(m, 1, device=dev), torch.zeros(m, 1, device=dev)])     # D's targets
    acc = torch.zeros(5, device=dev)       # sums: -log D(x), -log(1-D(G(z))), D(x), D(G(z)), g_loss
    steps = [0, 0]
    last_row: dict[str, float] = {}
    last_log_t, last_log_it, last_ckpt = time.monotonic(), start, time.monotonic()

    def autocast() -> torch.autocast:
        """bf16 products where config.bf16 (weights, gradients and updates stay fp32), else a no-op."""
        return torch.autocast(dev.type, dtype=torch.bfloat16, enabled=config.bf16)

    def d_step(lr: float, mu: float) -> None:
        idx = batches.next()
        z = torch.empty(m, config.latent_dim, device=dev).uniform_(-s, s, generator=rng)
        with autocast():
            with torch.no_grad():
                fake = gnet(z)                                        # G is not updated in the D-step
            logits = dnet(torch.cat([x_all[idx], fake]), rng).float()    # (2m, 1) real rows, then fake
        nll = F.softplus(logits * (1.0 - 2.0 * real))                # -log D(x), -log(1 - D(G(z)))
        loss = 0.5 * (nll[:m].mean() + nll[m:].mean())               # D ascends the value: descends this
        _update(d_opt, torch.autograd.grad(loss, d_params), lr, mu)
        with torch.no_grad():
            p = torch.sigmoid(logits)
            acc[:4] += torch.stack([nll[:m].mean(), nll[m:].mean(), p[:m].mean(), p[m:].mean()])
        steps[0] += 1

    def g_step(lr: float, mu: float) -> None:
        z = torch.empty(m, config.latent_dim, device=dev).uniform_(-s, s, generator=rng)
        with autocast():
            logits = dnet(gnet(z), rng).float()                       # D with fresh dropout, not updated
        loss = F.softplus(-logits).mean() if config.objective == "non-saturating" \
            else -F.softplus(logits).mean()                           # -log D(G(z)) or log(1 - D(G(z)))
        # Only G's gradients: D's weight gradients are never computed in the G-step.
        _update(g_opt, torch.autograd.grad(loss, g_params), lr, mu)
        acc[4] += loss.detach()
        steps[1] += 1

    def checkpoint(done: int) -> bytes:
        return run_checkpoint(config, (n, dim), done, gnet, dnet, g_opt, d_opt, rng, batches)

    done = start
    for it in range(start, config.iterations):
        if hooks.should_stop():
            raise TrainingStopped(f"stopped before iteration {it + 1}")
        lr, mu = learning_rate(config, it), momentum(config, it)
        for _ in range(config.k):
            d_step(lr, mu)
        g_step(lr, mu)
        done = it + 1
        final = done == config.iterations
        sums = acc.tolist()
        if not all(math.isfinite(v) for v in sums):
            raise NonFiniteLoss(f"a loss became non-finite at iteration {done}; the run diverged "
                                f"(try a smaller lr or another seed)")
        if done % config.log_every == 0 or final:
            now = time.monotonic()
            last_row = metrics_row(config, done, lr, mu, sums, steps[0], steps[1],
                                   (done - last_log_it) / max(now - last_log_t, 1e-9))
            if config.score_every and (done % config.score_every == 0 or final):    # a multiple of log_every
                gnet.eval()
                last_row = {**last_row, **hooks.on_score(done, gnet)}
                gnet.train()
            hooks.on_metrics(last_row)
            acc.zero_()
            steps[0] = steps[1] = 0
            last_log_t, last_log_it = time.monotonic(), done                # it/s leaves the scoring out
        if done % config.snapshot_every == 0 or final:
            gnet.eval()
            with torch.no_grad():
                hooks.on_snapshot(done, gnet(fixed_z).clamp(0.0, 1.0).cpu().numpy())
            gnet.train()
        if not final and time.monotonic() - last_ckpt >= config.checkpoint_seconds:
            hooks.on_checkpoint(done, checkpoint(done))
            last_ckpt = time.monotonic()
    gnet.eval()
    for p in gnet.parameters():
        p.requires_grad_(False)
    return TrainOutcome(generator=gnet.float().cpu(), iterations=done, metrics=last_row,  # type: ignore[arg-type]
                        seconds=time.monotonic() - started)


__all__ = ["train"]
