"""Training checkpoints: everything a run needs to continue bit-identically, as bytes (torch.save).

A state is a dict of plain values and tensors:
  format            CHECKPOINT_FORMAT
  config            JSON of TrainConfig.to_dict() (sorted keys): a checkpoint of another config is refused
  data_shape        [N, D] of the training array it was trained on
  iteration         completed Algorithm-1 iterations (= the schedule position: one update of each net per
                    iteration with k = 1; the k D-steps of an iteration share its lr and momentum)
  generator, discriminator   state_dicts (fp32)
  opt_g, opt_d      optimizer states (momentum increments inc = s * u, with u and s; or Adam's moments and step)
  rng               the run's torch.Generator state (minibatch indices, z and the dropout masks all come
                    from this one generator, so there is no separate dropout RNG)
  device            the device type the run's generator lives on ("cpu", "cuda"): its state only fits a
                    generator of that type (restore_rng)
  minibatches       the data order's permutation and position in it (worker/training/minibatches.py);
                    absent in checkpoints written before it, which drew with replacement
"""

from __future__ import annotations

import io
import json
import logging
from typing import Any

import torch

from models.config import LEGACY_VALUES, TrainConfig
from models.nets.common import derived_generator
from worker.training.minibatches import Minibatches

log = logging.getLogger(__name__)

CHECKPOINT_FORMAT = 1


class CheckpointMismatch(ValueError):
    """The checkpoint belongs to another run (config, data shape or format differ)."""


# Fields that do not change what the run computes: left out of the key, so checkpoints written before they
# existed still resume. bf16 too: the worker's hardware decides it (device.bf16_fallback) and the weights are
# fp32 either way, so a checkpoint resumes on a worker with or without native bf16.
NOT_IN_KEY = frozenset({"score_every", "keep", "bf16"})


def config_key(config: TrainConfig) -> str:
    """The canonical JSON a checkpoint stores to recognise its config: without NOT_IN_KEY, and without fields
    at their LEGACY_VALUES (what runs did before the field existed), so older checkpoints still match."""
    # Compared as JSON: a legacy tuple such as label_names () equals the stored list [].
    return json.dumps({k: v for k, v in config.to_dict().items()
                       if k not in NOT_IN_KEY and not (k in LEGACY_VALUES and json.dumps(LEGACY_VALUES[k]) == json.dumps(v))},
                      sort_keys=True)


def save_checkpoint(state: dict[str, Any]) -> bytes:
    out = io.BytesIO()
    torch.save({"format": CHECKPOINT_FORMAT, **state}, out)
    return out.getvalue()


def load_checkpoint(blob: bytes, config: TrainConfig | None = None,
                    data_shape: tuple[int, ...] | None = None) -> dict[str, Any]:
    """The state saved by save_checkpoint, on CPU. With `config` / `data_shape`: raise CheckpointMismatch
    unless the checkpoint was written by a run of exactly that config on data of that shape."""
    try:
        # weights_only: a checkpoint is data (tensors, dicts, numbers, strings), never code to run.
        state: dict[str, Any] = torch.load(io.BytesIO(blob), map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CheckpointMismatch(f"not a ganserve checkpoint: {type(exc).__name__}: {exc}") from exc
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointMismatch(f"checkpoint format {state.get('format') if isinstance(state, dict) else None!r}"
                                 f" is not {CHECKPOINT_FORMAT}")
    if config is not None and state.get("config") != config_key(config):
        raise CheckpointMismatch("the checkpoint was written by a run with another config; refusing to resume")
    if data_shape is not None and tuple(state.get("data_shape", ())) != tuple(data_shape):
        raise CheckpointMismatch(f"the checkpoint was trained on data of shape {state.get('data_shape')}, "
                                 f"not {list(data_shape)}")
    return state


def run_checkpoint(config: TrainConfig, data_shape: tuple[int, int], iteration: int, generator: torch.nn.Module,
                   discriminator: torch.nn.Module, opt_g: Any, opt_d: Any, rng: torch.Generator,
                   batches: Minibatches) -> bytes:
    """A trainer's whole state after `iteration` (the keys of the module docstring), as bytes."""
    return save_checkpoint({
        "config": config_key(config), "data_shape": list(data_shape), "iteration": iteration,
        "generator": generator.state_dict(), "discriminator": discriminator.state_dict(),
        "opt_g": opt_g.state_dict(), "opt_d": opt_d.state_dict(),
        "rng": rng.get_state(), "device": rng.device.type, "minibatches": batches.state_dict()})


def restore_stream(rng: torch.Generator, batches: Minibatches, state: dict[str, Any], seed: int) -> None:
    """Continue the run's random stream and data order from the checkpoint.

    A generator's state is device-specific (CPU and CUDA states differ in size and kind), so a checkpoint from
    another device type (a CPU worker's job picked up by a GPU worker) re-seeds from (seed, iteration) instead:
    the run goes on, with other draws than an uninterrupted run would have made. Checkpoints written before
    the data order existed drew with replacement and carry no minibatch state."""
    if "minibatches" in state:
        batches.load_state_dict(state["minibatches"])
    saved = state.get("device")
    if saved == rng.device.type:
        rng.set_state(state["rng"])
        return
    if saved is None:                    # written before the device was recorded: try it, as it came
        try:
            rng.set_state(state["rng"])
            return
        except RuntimeError:
            pass
    iteration = int(state["iteration"])
    rng.manual_seed(int(derived_generator(seed, 2**32 + iteration).initial_seed()))
    log.warning("checkpoint from a %s run resumed on %s: random stream re-seeded at iteration %d",
                state.get("device"), rng.device.type, iteration)


__all__ = ["CHECKPOINT_FORMAT", "CheckpointMismatch", "config_key", "load_checkpoint", "restore_stream",
           "run_checkpoint", "save_checkpoint"]
