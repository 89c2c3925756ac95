"""Shipped DGA model: is a domain label machine-generated? Scored with numpy only.

The model is one logistic regression over additive features, so scoring is gathers and sums:

* hashed character 1..5-grams of the label (``^`` and ``$`` mark its ends), one weight per bucket,
  scaled by 1/sqrt(number of n-grams) so long labels are not scored by length alone;
* hand features (length, entropy, digit / vowel / consonant-run ratios, log-likelihood under benign
  character bigram and trigram models, how much of the label dictionary words cover, ...) cut into
  quantile bins, one weight per bin, plus a few 2-D bin crosses (e.g. length x word cover).

Weights and lookup tables live in ``data/dga_model.npz`` (plain arrays, ``allow_pickle=False``),
written by ``tools/train_dga.py``; ``docs/dga-model.md`` is its evaluation. scikit-learn is only
needed to train.

Score the label a DGA controls, not the full name: ``registered_label("a.b.volykyc.co.uk")`` is
``volykyc``. ``score_domains`` does both.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import numpy as np

from bothunt.dga_features import dense_features, encode, ngram_buckets, ngram_count

MODEL_RESOURCE = "dga_model.npz"

__all__ = [
    "DgaModel", "load_model", "metadata", "registered_domain", "registered_label", "score_domains",
    "score_names", "thresholds",
]


@cache
def _psl(private: bool) -> Any:
    # Building the list parses ~10k rules (tens of ms); one object per mode for the whole process.
    from publicsuffixlist import PublicSuffixList

    return PublicSuffixList(only_icann=not private)


def registered_domain(domain: str | None, *, private_suffixes: bool = False) -> str:
    """The registrable domain (``abc.co.uk`` of ``www.abc.co.uk``); "" when there is none.

    There is none for an IP address, a bare public suffix and a single label (``wpad``, Chrome's
    random probes). By default only ICANN suffixes count: a DGA has to register its names with a
    registrar, while private suffixes (``cloudfront.net``, ``blogspot.com``) would turn every CDN
    hostname into a "label" to score. ``private_suffixes=True`` honours them too (dynamic-DNS abuse).
    """
    name = (domain or "").strip().rstrip(".").lower()
    if not name or "." not in name or _is_ip(name):
        return ""
    return _psl(private_suffixes).privatesuffix(name) or ""


def registered_label(domain: str | None, *, private_suffixes: bool = False) -> str:
    """The label left of the public suffix: ``volykyc`` of ``volykyc.com``, ``abc`` of ``x.abc.co.uk``."""
    return registered_domain(domain, private_suffixes=private_suffixes).partition(".")[0]


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name.strip("[]"))
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class DgaModel:
    """The arrays of one trained model; ``decision`` is the logit, ``score`` its sigmoid."""

    arrays: dict[str, np.ndarray]

    @classmethod
    def from_npz(cls, source: Any) -> DgaModel:
        with np.load(source, allow_pickle=False) as npz:
            return cls({k: npz[k] for k in npz.files})

    @property
    def meta(self) -> dict[str, Any]:
        return json.loads(str(self.arrays["metadata_json"]))

    @property
    def tables(self) -> dict[str, np.ndarray]:
        return self.arrays

    def feature_indices(self, names: Sequence[str] | np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(row, column, value) of every non-zero model feature: the design matrix, sparse.

        Columns: n-gram buckets, then one per (hand feature, bin), then one per (cross, bin, bin).
        ``decision`` is exactly ``X @ coef + intercept`` over this matrix (tests check that against
        scikit-learn).
        """
        a = self.arrays
        enc = encode(names)
        n_max, bits = int(a["ngram_max"]), int(a["ngram_bits"])
        rows, buckets = ngram_buckets(enc, n_max, bits)
        scale = 1.0 / np.sqrt(ngram_count(enc.lengths, n_max))
        bins = self.bin_features(dense_features(enc, a))
        n_dense, n_bins = a["bin_edges"].shape[0], a["bin_edges"].shape[1] + 1
        base = 1 << bits
        drow = np.repeat(np.arange(enc.n), n_dense)
        dcol = (base + np.arange(n_dense) * n_bins + bins).ravel()
        cross = self._cross_columns(bins) + base + n_dense * n_bins
        crow = np.repeat(np.arange(enc.n), cross.shape[1])
        return (
            np.concatenate([rows, drow, crow]),
            np.concatenate([buckets, dcol, cross.ravel()]),
            np.concatenate([scale[rows], np.ones(len(dcol) + cross.size)]),
        )

    def bin_features(self, dense: np.ndarray) -> np.ndarray:
        edges = self.arrays["bin_edges"]
        return np.stack([np.searchsorted(edges[f], dense[:, f], side="right") for f in range(len(edges))],
                        axis=1)

    def _cross_columns(self, bins: np.ndarray) -> np.ndarray:
        pairs, coarse = self.arrays["cross_pairs"], int(self.arrays["cross_coarse"])
        levels = (self.arrays["bin_edges"].shape[1] + 1 + coarse - 1) // coarse
        cols = [(bins[:, f] // coarse) * levels + bins[:, g] // coarse + i * levels * levels
                for i, (f, g) in enumerate(pairs)]
        return np.stack(cols, axis=1) if cols else np.zeros((len(bins), 0), dtype=np.int64)

    def decision(self, names: Sequence[str] | np.ndarray) -> np.ndarray:
        """Logit of every name, float64; same value as the sparse design matrix times ``coef``."""
        a = self.arrays
        enc = encode(names)
        n_max, bits = int(a["ngram_max"]), int(a["ngram_bits"])
        rows, buckets = ngram_buckets(enc, n_max, bits)
        gram = np.bincount(rows, a["ngram_weights"][buckets].astype(np.float64), minlength=enc.n)
        gram /= np.sqrt(ngram_count(enc.lengths, n_max))
        bins = self.bin_features(dense_features(enc, a))
        dense_w = a["bin_weights"]
        per_bin = dense_w[np.arange(dense_w.shape[0]), bins].sum(axis=1)
        cross = a["cross_weights"].ravel()[self._cross_columns(bins)].sum(axis=1)
        return gram + per_bin + cross + float(a["intercept"])

    def score(self, names: Sequence[str] | np.ndarray) -> np.ndarray:
        return (1.0 / (1.0 + np.exp(-self.decision(names)))).astype(np.float32)


@cache
def load_model() -> DgaModel:
    """The shipped model (loaded once per process)."""
    with (resources.files("bothunt") / "data" / MODEL_RESOURCE).open("rb") as fh:
        return DgaModel.from_npz(fh)


def score_names(names: Sequence[str] | np.ndarray) -> np.ndarray:
    """Probability (float32, 0..1) that each *label* is generated. Pass registered labels.

    Labels longer than 63 bytes are scored on their first 63; empty or ``None`` gets the model's
    score of the empty label (low). Names are scored independently, so callers should score each
    distinct label once and broadcast.
    """
    return load_model().score(names)


def score_domains(domains: Sequence[str] | np.ndarray, *, private_suffixes: bool = False) -> np.ndarray:
    """``score_names`` of each domain's registered label; 0 where a domain has none (IP, ``wpad``)."""
    labels = [registered_label(d, private_suffixes=private_suffixes) for d in _as_list(domains)]
    scores = score_names(labels)
    scores[np.array([not x for x in labels], dtype=bool)] = 0.0
    return scores


def _as_list(values: Sequence[str] | np.ndarray) -> list:
    return values.tolist() if isinstance(values, np.ndarray) else list(values)


def metadata() -> dict[str, Any]:
    """Training date, data used, evaluation summary and thresholds of the shipped model."""
    return load_model().meta


def thresholds() -> dict[str, float]:
    """Score thresholds measured on held-out benign labels, e.g. ``{"fpr_0.01": .., "fpr_0.001": ..}``."""
    return dict(load_model().meta["thresholds"])
