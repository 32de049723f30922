"""Sample-quality scores while a job trains (score_every): beside valid_ll, the Fréchet distance of G's samples
to the validation images in the dataset classifier's features, the classes they cover and the class KL.

Only when the dataset's classifier exists when the job starts (it is trained for the first scoring of the
dataset, service/evaluation/classifiers.py); KID and precision/recall are left to the version's scores job,
where their cost (seconds) is paid once. The samples come from the validation score's fixed z."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from models import datasets, scores
from models.config import TrainConfig
from models.nets.common import derived_generator, noise
from service.db import blobs
from service.db.engine import session_scope
from service.evaluation import classifiers
from service.evaluation.quality import Features
from service.settings import get_settings

N_SAMPLES = 10_000
_SCORE_NOISE_TAG = 4       # the validation score's z (worker/training/validation.py)
_BATCH = 1000


class CurveScorer:
    def __init__(self, config: TrainConfig, valid: np.ndarray, features: Features, valid_labels: np.ndarray,
                 n_classes: int) -> None:
        self.z = noise((N_SAMPLES, config.latent_dim), config.noise_scale,
                       derived_generator(config.seed, _SCORE_NOISE_TAG))
        self.features = features
        self.valid_moments = scores.moments(features(valid)[0])
        self.valid_hist = np.bincount(valid_labels, minlength=n_classes) / len(valid_labels)

    @classmethod
    def for_job(cls, config: TrainConfig, valid: np.ndarray | None) -> CurveScorer | None:
        """None unless the job scores while training, on images whose dataset has a classifier."""
        if not config.score_every or valid is None or datasets.is_toy(config.dataset):
            return None
        row = classifiers.latest(config.dataset)
        if row is None:
            return None
        with session_scope() as session:
            features = Features(blobs.get_verified(session, row.artifact_key, row.artifact_sha256))
        labels = datasets.load_labels(config.dataset, get_settings().resolved_data_dir)[1]
        if labels is None:
            return None
        return cls(config, np.asarray(valid), features, labels, row.n_classes)

    @torch.no_grad()
    def __call__(self, generator: nn.Module) -> dict[str, float]:
        device = next(generator.parameters()).device
        samples = np.concatenate([generator(self.z[i:i + _BATCH].to(device)).float().cpu().numpy()
                                  .reshape(len(self.z[i:i + _BATCH]), -1) for i in range(0, len(self.z), _BATCH)])
        fake_f, fake_p = self.features(samples)
        hist = scores.class_histogram(fake_p)
        return {"valid_fd": scores.frechet(scores.moments(fake_f), self.valid_moments),
                "valid_classes_covered": float(scores.classes_covered(hist, self.valid_hist)),
                "valid_class_kl": scores.class_kl(hist, self.valid_hist)}
