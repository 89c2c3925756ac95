"""Fit the two-stage DGA model with scikit-learn and export it as the plain arrays the runtime reads.

Stage 1 is a logistic regression (SGD) over hashed character 1..5-grams; stage 2 a small ReLU
network over the stage-1 logit and the hand features. Two leaks are closed on purpose:

* stage 2 is trained on *out-of-fold* stage-1 logits: the n-gram model memorises its training
  names, so in-sample logits would teach stage 2 to trust it far more than it deserves on new names;
* the benign character models and word list are built from benign training labels, so benign
  training rows get their hand features from tables built *without their own fold* (see
  ``oof_dense``); otherwise every benign training name has no unseen trigram and full word cover.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import SGDClassifier
from sklearn.neural_network import MLPClassifier

from bothunt.dga_features import dense_features, encode, ngram_buckets, ngram_count, stack_inputs
from bothunt.dga_model import DgaModel


@dataclass(frozen=True)
class FitConfig:
    ngram_max: int = 5
    ngram_bits: int = 20
    sgd_alpha: float = 1e-6
    sgd_epochs: int = 15
    hidden: tuple[int, ...] = (32,)
    mlp_alpha: float = 1e-2
    mlp_epochs: int = 100
    mlp_batch: int = 500
    oof_folds: int = 3
    synthetic_weight: float = 0.3  # each synthetic family counts 0.3 of a real family in stage 2


def ngram_matrix(labels, cfg: FitConfig) -> sp.csr_matrix:
    """Stage-1 design matrix: n-gram bucket counts scaled by 1/sqrt(n-grams), as the runtime does."""
    enc = encode(labels)
    rows, buckets = ngram_buckets(enc, cfg.ngram_max, cfg.ngram_bits)
    scale = 1.0 / np.sqrt(ngram_count(enc.lengths, cfg.ngram_max))
    x = sp.csr_matrix((scale[rows], (rows, buckets)), shape=(enc.n, 1 << cfg.ngram_bits))
    x.sum_duplicates()
    return x


def family_weights(family: np.ndarray, synthetic_weight: float) -> np.ndarray:
    """Every DGA family weighs the same in total (synthetic ones less), and all DGA as much as benign.

    Without this the 20k Conficker names would decide what "generated" means.
    """
    w = np.ones(len(family))
    dga = family != "benign"
    fams = np.unique(family[dga])
    share = {f: (synthetic_weight if f.startswith("synth_") else 1.0) for f in fams}
    unit = (~dga).sum() / sum(share.values())
    for f in fams:
        m = family == f
        w[m] = unit * share[f] / m.sum()
    return w / w.mean()


def _sgd(cfg: FitConfig, seed: int) -> SGDClassifier:
    return SGDClassifier(loss="log_loss", alpha=cfg.sgd_alpha, max_iter=cfg.sgd_epochs, tol=None, random_state=seed)


@dataclass
class Fitted:
    sgd: SGDClassifier
    mlp: MLPClassifier
    mean: np.ndarray
    scale: np.ndarray
    cfg: FitConfig

    def arrays(self) -> dict[str, np.ndarray]:
        """The model's parameters as the runtime names them (tables and metadata are added later)."""
        out = {
            "ngram_max": np.array(self.cfg.ngram_max),
            "ngram_weights": self.sgd.coef_[0].astype(np.float16),
            "ngram_intercept": np.array(float(self.sgd.intercept_[0])),
            "input_mean": self.mean,
            "input_scale": self.scale,
        }
        for i, (w, b) in enumerate(zip(self.mlp.coefs_, self.mlp.intercepts_, strict=True)):
            out[f"mlp_w{i}"], out[f"mlp_b{i}"] = w, b
        return out

    def stage1(self, g: sp.csr_matrix) -> np.ndarray:
        return self.sgd.decision_function(g)

    def sklearn_proba(self, g: sp.csr_matrix, dense: np.ndarray) -> np.ndarray:
        """scikit-learn's own prediction, to check the numpy scorer against."""
        x = (stack_inputs(self.stage1(g), dense) - self.mean) / self.scale
        return self.mlp.predict_proba(x)[:, 1]

    def decision(self, g: sp.csr_matrix, dense: np.ndarray, tables: dict[str, np.ndarray]) -> np.ndarray:
        """Logits computed by the shipped numpy code path's algebra (exported, rounded weights)."""
        model = DgaModel({**tables, **self.arrays()})
        x = (stack_inputs(self.stage1(g), dense) - self.mean) / self.scale
        return model.decision_from_inputs(x)


def fit(
    g: sp.csr_matrix, dense: np.ndarray, family: np.ndarray, train: np.ndarray, cfg: FitConfig, seed: int
) -> Fitted:
    """Fit both stages on the rows in ``train`` (synthetic families only reach stage 2)."""
    y = (family != "benign").astype(int)
    if cfg.synthetic_weight == 0:
        train = train & ~np.char.startswith(family.astype(str), "synth_")
    idx = np.flatnonzero(train)
    w = family_weights(family[idx], cfg.synthetic_weight)
    real = ~np.char.startswith(family[idx].astype(str), "synth_")
    # Synthetic random strings in stage 1 blur the n-gram weights of the real families (measured:
    # Conficker AUC drops ~0.01), while in stage 2 they teach "random at any length" as intended.
    z = np.zeros(len(idx))
    folds = np.random.default_rng(seed).integers(0, cfg.oof_folds, len(idx))
    for k in range(cfg.oof_folds):
        fit_rows = (folds != k) & real
        part = _sgd(cfg, seed).fit(g[idx[fit_rows]], y[idx[fit_rows]], sample_weight=w[fit_rows])
        z[folds == k] = part.decision_function(g[idx[folds == k]])
    sgd = _sgd(cfg, seed).fit(g[idx[real]], y[idx[real]], sample_weight=w[real])
    # the runtime stores n-gram weights as float16; round now so every later score is the shipped one
    sgd.coef_ = sgd.coef_.astype(np.float16).astype(np.float64)
    x = stack_inputs(z, dense[idx])
    mean, scale = x.mean(axis=0), x.std(axis=0) + 1e-9
    mlp = MLPClassifier(
        hidden_layer_sizes=cfg.hidden,
        alpha=cfg.mlp_alpha,
        max_iter=cfg.mlp_epochs,
        batch_size=cfg.mlp_batch,
        random_state=seed,
        tol=1e-5,
        n_iter_no_change=20,
    )
    with warnings.catch_warnings():
        # a fixed epoch budget is the design (reproducible time); the loss is flat well before it
        warnings.simplefilter("ignore", ConvergenceWarning)
        mlp.fit((x - mean) / scale, y[idx], sample_weight=w)
    return Fitted(sgd, mlp, mean, scale, cfg)


def oof_dense(
    labels: np.ndarray, benign_train: np.ndarray, build_tables, folds: int, seed: int
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Hand features of every row, and the tables built from all benign training labels.

    Benign training rows get theirs from tables built on the other folds (see module docstring).
    """
    tables = build_tables(labels[benign_train].tolist())
    dense = dense_features(encode(labels), tables)
    bidx = np.flatnonzero(benign_train)
    fold = np.random.default_rng(seed).integers(0, folds, len(bidx))
    for k in range(folds):
        held = bidx[fold == k]
        part = build_tables(labels[bidx[fold != k]].tolist())
        dense[held] = dense_features(encode(labels[held]), part)
    return dense, tables
