"""Shipped DGA model: is a domain label machine-generated? Scored with numpy only.

Two stages, both re-evaluated here from plain arrays (``data/dga_model.npz``, loaded with
``allow_pickle=False``; written by ``tools/train_dga.py``, evaluated in ``docs/dga-model.md``):

1. a logistic regression over hashed character 1..5-grams of the label (``^``/``$`` mark its ends):
   gather one weight per n-gram, sum per name, scale by 1/sqrt(number of n-grams);
2. a small ReLU network over that logit and hand features (length, entropy, digit / vowel /
   consonant-run ratios, log-likelihood under benign character bigram and trigram models, cover by
   a word list learned from benign names, ...), see ``bothunt.dga_features``.

scikit-learn is only needed to train. Score the label a DGA controls, not the full name:
``registered_label("a.b.volykyc.co.uk")`` is ``volykyc``; ``score_domains`` does both. Scores rank
names; they are not calibrated probabilities for real traffic (training weighs DGA and benign
equally), so compare them with ``thresholds()``, which hold the scores giving 1% and 0.1% false
positives on benign names the model never saw.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache, cached_property, lru_cache
from importlib import resources
from typing import Any

import numpy as np

from bothunt.dga_features import Encoded, dense_features, encode, ngram_count, ngram_sums, stack_inputs

MODEL_RESOURCE = "dga_model.npz"

__all__ = [
    "DgaModel",
    "decision_names",
    "load_model",
    "metadata",
    "registered_domain",
    "registered_label",
    "score_domains",
    "score_names",
    "thresholds",
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
    return _registered((domain or "").strip().rstrip(".").lower(), private_suffixes)


@lru_cache(maxsize=1 << 16)
def _registered(name: str, private: bool) -> str:
    if not name or "." not in name or _is_ip(name):
        return ""
    return _psl(private).privatesuffix(name) or ""


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
    def n_layers(self) -> int:
        return sum(1 for k in self.arrays if k.startswith("mlp_w"))

    def ngram_logit(self, enc: Encoded) -> np.ndarray:
        """First stage: hashed n-gram weights summed over the label, scaled by 1/sqrt(n-grams)."""
        a = self.arrays
        n_max = int(a["ngram_max"])
        total = ngram_sums(enc, n_max, self._ngram_weights)
        return total / np.sqrt(ngram_count(enc.lengths, n_max)) + float(a["ngram_intercept"])

    @cached_property
    def _ngram_weights(self) -> np.ndarray:
        return self.arrays["ngram_weights"].astype(np.float32)  # stored as float16; convert once

    def inputs(self, names: Sequence[str] | np.ndarray) -> np.ndarray:
        """Standardised second-stage inputs (see ``bothunt.dga_features.STACK_NAMES``)."""
        enc = encode(names)
        x = stack_inputs(self.ngram_logit(enc), dense_features(enc, self.arrays))
        return (x - self.arrays["input_mean"]) / self.arrays["input_scale"]

    def decision_from_inputs(self, x: np.ndarray) -> np.ndarray:
        """The small ReLU network of the second stage (the same algebra as scikit-learn's MLP)."""
        h = x
        for i in range(self.n_layers):
            h = h @ self.arrays[f"mlp_w{i}"] + self.arrays[f"mlp_b{i}"]
            if i < self.n_layers - 1:
                h = np.maximum(h, 0.0)
        return h[:, 0]

    def decision(self, names: Sequence[str] | np.ndarray) -> np.ndarray:
        """Logit (float64) of every name: higher is more likely generated."""
        return self.decision_from_inputs(self.inputs(names))

    def score(self, names: Sequence[str] | np.ndarray) -> np.ndarray:
        return _sigmoid(self.decision(names)).astype(np.float32)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))  # no overflow warning for large negative logits


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


def decision_names(names: Sequence[str] | np.ndarray) -> np.ndarray:
    """Logits (float64) behind ``score_names``: the same ranking without float32 saturation near 1."""
    return load_model().decision(names)


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


def thresholds(*, logit: bool = False) -> dict[str, float]:
    """Scores above which 1% / 0.1% of held-out benign labels fall: ``{"fpr_0.01": .., "fpr_0.001": ..}``.

    A name is flagged when its score is strictly above the threshold. ``logit=True`` gives the
    same thresholds for ``decision_names``.
    """
    return dict(load_model().meta["threshold_logits" if logit else "thresholds"])
