"""Honest evaluation of the DGA model and of the reference baseline.

* random split: AUC of held-out DGA names vs held-out benign names (pooled and per family);
* leave-one-family-out: the whole family is removed from training, then all its names are scored;
* recall per family at the score thresholds giving 1% and 0.1% false positives on benign names
  that neither trained the model nor are used as the benign test set (role "threshold").
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from joblib import Parallel, delayed
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

FPRS = (0.01, 0.001)


@dataclass
class Scores:
    """One evaluation: per-family AUC and recall at the benign thresholds."""

    thresholds: dict[float, float]
    benign_test_fpr: dict[float, float]
    families: dict[str, dict[str, float]] = field(default_factory=dict)
    pooled_auc: float | None = None

    @property
    def macro_auc(self) -> float:
        return float(np.mean([v["auc"] for v in self.families.values()]))


def choose_thresholds(benign_scores: np.ndarray) -> dict[float, float]:
    """Smallest score with at most ``fpr`` of these benign names strictly above it."""
    return {fpr: float(np.quantile(benign_scores, 1 - fpr, method="higher")) for fpr in FPRS}


def family_scores(
    s: np.ndarray, positives: np.ndarray, benign_test: np.ndarray, thresholds: dict[float, float]
) -> dict[str, float]:
    y = np.r_[np.ones(positives.sum()), np.zeros(benign_test.sum())]
    out = {"n": int(positives.sum()), "auc": float(roc_auc_score(y, np.r_[s[positives], s[benign_test]]))}
    for fpr, t in thresholds.items():
        out[f"recall@{fpr}"] = float((s[positives] > t).mean())
    return out


def evaluate(
    s: np.ndarray, family: np.ndarray, role: np.ndarray, held: dict[str, np.ndarray], pooled: np.ndarray | None = None
) -> Scores:
    """Score summary; ``held`` maps a family to the rows of it that were not trained on."""
    benign = family == "benign"
    thr = choose_thresholds(s[benign & (role == "threshold")])
    test = benign & (role == "test")
    res = Scores(thr, {f: float((s[test] > t).mean()) for f, t in thr.items()})
    for fam, rows in held.items():
        res.families[fam] = family_scores(s, rows, test, thr)
    if pooled is not None:
        y = np.r_[np.ones(pooled.sum()), np.zeros(test.sum())]
        res.pooled_auc = float(roc_auc_score(y, np.r_[s[pooled], s[test]]))
    return res


def random_split(
    score_fn: Callable[[np.ndarray], np.ndarray], family: np.ndarray, role: np.ndarray, real_families: list[str]
) -> Scores:
    train = role == "train"
    s = score_fn(train)
    held = {f: (family == f) & (role == "test") for f in real_families}
    return evaluate(s, family, role, held, pooled=(family != "benign") & (role == "test") & _real(family))


def leave_one_family_out(
    score_fn: Callable[[np.ndarray], np.ndarray],
    family: np.ndarray,
    role: np.ndarray,
    real_families: list[str],
    jobs: int = 1,
) -> Scores:
    """One model per family, trained without any of its names; scored on all of them."""

    def one(fam: str) -> tuple[str, Scores]:
        s = score_fn((role == "train") & (family != fam))
        return fam, evaluate(s, family, role, {fam: family == fam})

    runs = Parallel(n_jobs=jobs)(delayed(one)(f) for f in real_families)
    merged = Scores(thresholds={}, benign_test_fpr={})
    for fam, res in runs:
        merged.families[fam] = res.families[fam]
        merged.families[fam]["benign_test_fpr@0.01"] = res.benign_test_fpr[0.01]
    return merged


def _real(family: np.ndarray) -> np.ndarray:
    return ~np.char.startswith(family.astype(str), "synth_")


def reference_scorer(labels: np.ndarray, family: np.ndarray, weights_fn) -> Callable[[np.ndarray], np.ndarray]:
    """The baseline from the issue: char 2-4-gram TF-IDF + logistic regression, real data only."""
    y = (family != "benign").astype(int)

    def score(train: np.ndarray) -> np.ndarray:
        train = train & _real(family)
        vec = TfidfVectorizer(analyzer="char", ngram_range=(2, 4), dtype=np.float32)
        x_train = vec.fit_transform(labels[train])
        clf = LogisticRegression(C=1.0, max_iter=1000)
        clf.fit(x_train, y[train], sample_weight=weights_fn(family[train]))
        return clf.decision_function(vec.transform(labels))

    return score
