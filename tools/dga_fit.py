"""Fit the two-stage DGA model with scikit-learn and export it as the plain arrays the runtime reads.

Stage 1 is a logistic regression (SGD) over hashed character 1..5-grams; stage 2 the mean of a few
small ReLU networks over the stage-1 logit and the hand features. Two leaks are closed on purpose:

* stage 2 is trained on *out-of-fold* stage-1 logits: the n-gram model memorises its training
  names, so in-sample logits would teach stage 2 to trust it far more than it deserves on new names;
* the benign character models and word list are built from benign training labels, so benign
  training rows get their hand features from tables built *without their own fold* (see
  ``oof_dense``); otherwise every benign training name has no unseen trigram and full word cover.
"""

from __future__ import annotations

import copy
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
    # Synthetic families stage 2 learns from, each with its weight relative to one real family.
    # Uniform random letters get a full share: it is the archetype of every arithmetic DGA, and short
    # ones are what the long real families cannot teach. Concatenations of benign-derived words
    # (synth_words) are generated but left out: they look like benign names by construction and
    # lowered both the random-split and the held-out dictionary-family AUCs (the report's ablation).
    synthetic: tuple[tuple[str, float], ...] = (
        ("synth_letters", 1.0),
        ("synth_alnum", 0.3),
        ("synth_pseudoword", 0.3),
    )
    synthetic_weight: float = 1.0  # multiplies every synthetic share; 0 trains without synthetic data
    mlp_seeds: int = 5  # stage-2 networks averaged: one network's AUC moves with its seed by ~0.001

    def synthetic_shares(self) -> dict[str, float]:
        return {f: w * self.synthetic_weight for f, w in self.synthetic if w * self.synthetic_weight > 0}


def ngram_matrix(labels, cfg: FitConfig) -> sp.csr_matrix:
    """Stage-1 design matrix: n-gram bucket counts scaled by 1/sqrt(n-grams), as the runtime does."""
    enc = encode(labels)
    rows, buckets = ngram_buckets(enc, cfg.ngram_max, cfg.ngram_bits)
    scale = 1.0 / np.sqrt(ngram_count(enc.lengths, cfg.ngram_max))
    x = sp.csr_matrix((scale[rows], (rows, buckets)), shape=(enc.n, 1 << cfg.ngram_bits))
    x.sum_duplicates()
    return x


def family_weights(family: np.ndarray, synthetic_shares: dict[str, float]) -> np.ndarray:
    """Every real DGA family weighs the same in total, a synthetic one its share of that, and all DGA
    as much as benign.

    Without this the 20k Conficker names would decide what "generated" means.
    """
    w = np.ones(len(family))
    dga = family != "benign"
    fams = np.unique(family[dga])
    share = {f: (synthetic_shares.get(f, 0.0) if f.startswith("synth_") else 1.0) for f in fams}
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
    """Fit both stages on the rows in ``train`` (synthetic families only reach stage 2, and only those
    ``cfg.synthetic`` names)."""
    y = (family != "benign").astype(int)
    shares = cfg.synthetic_shares()
    synthetic = np.char.startswith(family.astype(str), "synth_")
    train = train & (~synthetic | np.isin(family, list(shares)))
    idx = np.flatnonzero(train)
    w = family_weights(family[idx], shares)
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
    mlps = []
    for k in range(cfg.mlp_seeds):
        mlp = MLPClassifier(
            hidden_layer_sizes=cfg.hidden,
            alpha=cfg.mlp_alpha,
            max_iter=cfg.mlp_epochs,
            batch_size=cfg.mlp_batch,
            random_state=seed + k,
            tol=1e-5,
            n_iter_no_change=20,
        )
        with warnings.catch_warnings():
            # a fixed epoch budget is the design (reproducible time); the loss is flat well before it
            warnings.simplefilter("ignore", ConvergenceWarning)
            mlp.fit((x - mean) / scale, y[idx], sample_weight=w)
        mlps.append(mlp)
    return Fitted(sgd, merge_networks(mlps), mean, scale, cfg)


def merge_networks(mlps: list[MLPClassifier]) -> MLPClassifier:
    """One network whose logit is the mean of the networks' logits (one hidden layer each).

    Side by side, the hidden layers are one wider layer and the output averages them, so the runtime
    scores the ensemble as a single network and scikit-learn's own ``predict_proba`` still applies.
    """
    if len(mlps) == 1:
        return mlps[0]
    if any(len(m.coefs_) != 2 for m in mlps):
        raise ValueError("only networks with one hidden layer are merged")
    out = copy.deepcopy(mlps[0])
    out.coefs_ = [np.hstack([m.coefs_[0] for m in mlps]), np.vstack([m.coefs_[1] for m in mlps]) / len(mlps)]
    out.intercepts_ = [
        np.concatenate([m.intercepts_[0] for m in mlps]),
        np.mean([m.intercepts_[1] for m in mlps], axis=0),
    ]
    out.hidden_layer_sizes = (out.coefs_[0].shape[1],)
    return out


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
