"""The shipped DGA model: scores, registered-label extraction, robustness, and numpy == scikit-learn."""

from __future__ import annotations

import numpy as np
import pytest

from bothunt import dga_model
from bothunt.dga_features import (
    DENSE_NAMES,
    MAX_LABEL,
    dense_features,
    encode,
    ngram_buckets,
    ngram_count,
    ngram_sums,
    stack_inputs,
)
from bothunt.dga_model import (
    load_model,
    metadata,
    registered_domain,
    registered_label,
    score_domains,
    score_names,
    thresholds,
)

# One name per family file (../shared/data/dga/families) plus Simda names from the CTU-355 capture;
# Simda is not a training family.
GENERATED = [
    "exmtsebuqwuvex",  # cryptolocker
    "biaymnbqqshyllcqjlfhlj",  # goz
    "71sz271y6jw0m1nmkgq11owix1f",  # newgoz
    "1sbh3891b5qfxt3dszss1grf20g",  # zeus_1000
    "logriskwarzoneexerciseassume",  # matsnu
    "featurepursuebecomewaveconsult",  # matsnu
    "eiyoesgwgagqgyue",  # ramdo
    "gllxeenmijch",  # tinba
    "yeyhcwikhn",  # conficker
    "inhabitantsunacknowledged",  # rovnix
]
SIMDA = ["volykyc", "pufymoq", "vowyzuk", "vopyret", "gacyfew", "lygymoj", "qexyryl", "vocygyk"]
POPULAR = [
    "google",
    "facebook",
    "youtube",
    "wikipedia",
    "amazon",
    "microsoft",
    "github",
    "stackoverflow",
    "nytimes",
    "weather",
    "linkedin",
    "paypal",
    "netflix",
    "bbc",
    "reddit",
]


def test_registered_label_strips_multi_part_public_suffixes() -> None:
    assert registered_label("volykyc.com") == "volykyc"
    assert registered_label("abc.co.uk") == "abc"
    assert registered_label("www.abc.co.uk") == "abc"
    assert registered_label("mail.shop.example.com.au") == "example"
    assert registered_label("WWW.Example.COM.") == "example"
    assert registered_domain("a.b.abc.co.uk") == "abc.co.uk"
    assert registered_domain("pufymoq.com") == "pufymoq.com"


def test_registered_label_private_suffixes_only_on_request() -> None:
    # a CDN hostname reduces to its operator unless private suffixes are asked for
    assert registered_label("d1a2b3c4e5.cloudfront.net") == "cloudfront"
    assert registered_label("d1a2b3c4e5.cloudfront.net", private_suffixes=True) == "d1a2b3c4e5"


@pytest.mark.parametrize("name", ["", None, "wpad", "localhost", "com", "co.uk", "1.2.3.4", "::1", "[2001:db8::1]"])
def test_names_without_a_registrable_label(name: str | None) -> None:
    assert registered_label(name) == ""
    assert registered_domain(name) == ""


def test_generated_names_score_above_the_1pct_threshold() -> None:
    scores = score_names(GENERATED)
    assert scores.dtype == np.float32
    missed = {n: s for n, s in zip(GENERATED, scores.tolist(), strict=True) if s <= thresholds()["fpr_0.01"]}
    assert missed == {}


def test_simda_names_from_an_unseen_family_mostly_flagged() -> None:
    scores = score_names(SIMDA)
    assert (scores > thresholds()["fpr_0.01"]).sum() >= 6, dict(zip(SIMDA, scores.tolist(), strict=True))


def test_popular_domains_score_below_the_1pct_threshold() -> None:
    scores = score_names(POPULAR)
    flagged = [n for n, s in zip(POPULAR, scores, strict=True) if s > thresholds()["fpr_0.01"]]
    assert flagged == []
    assert float(np.median(scores)) < 0.1


def test_score_domains_uses_the_registered_label() -> None:
    domains = ["volykyc.com", "www.volykyc.com", "mail.google.co.uk", "wpad", "10.1.2.3"]
    scores = score_domains(domains)
    assert scores[0] == pytest.approx(score_names(["volykyc"])[0])
    assert scores[1] == scores[0]
    assert scores[2] == pytest.approx(score_names(["google"])[0])
    assert scores[3:].tolist() == [0.0, 0.0]


def test_scores_are_deterministic_and_independent_of_the_batch() -> None:
    names = GENERATED + POPULAR + SIMDA
    first = score_names(names)
    assert np.array_equal(first, score_names(names))
    assert np.allclose(score_names(names[::-1])[::-1], first, rtol=0, atol=1e-7)
    alone = np.concatenate([score_names([n]) for n in names])
    assert np.allclose(alone, first, rtol=0, atol=1e-7)
    assert np.array_equal(score_names(np.array(names, dtype=object)), first)


def test_empty_unicode_and_very_long_inputs() -> None:
    assert score_names([]).shape == (0,)
    long = "a" * 40 + "x7" * 500
    names = ["", None, "bücher", "例え", "\udcff", long, long[:MAX_LABEL], "UPPER", "upper"]
    scores = score_names(names)
    assert scores.shape == (len(names),)
    assert np.isfinite(scores).all() and ((scores >= 0) & (scores <= 1)).all()
    assert scores[0] == scores[1]  # None is the empty label
    assert scores[5] == scores[6]  # only the first 63 bytes (the DNS label limit) are scored
    assert scores[7] == scores[8]
    with pytest.raises(TypeError):
        score_names("google")


def test_features_counted_independently() -> None:
    dense = dense_features(encode(["a1b2", "facebook", ""]), load_model().arrays)
    col = {n: i for i, n in enumerate(DENSE_NAMES)}
    assert dense[0, col["length"]] == 4
    assert dense[0, col["digit_frac"]] == 0.5
    assert dense[0, col["letter_digit_switches"]] == 3 / 4
    assert dense[1, col["vowel_frac"]] == sum(ch in "aeiou" for ch in "facebook") / 8
    assert dense[1, col["max_consonant_run"]] == 1
    assert dense[1, col["entropy"]] == pytest.approx(
        -sum(c / 8 * np.log2(c / 8) for c in (1, 1, 1, 1, 1, 1, 2))
    )  # f a c e b k, o twice
    assert dense[1, col["word_cover"]] == 1.0  # "face" + "book" are in the learned word list
    assert dense[2].tolist() == [0.0] * len(DENSE_NAMES)


def test_ngram_hashing_counts_every_ngram_once() -> None:
    enc = encode(["ab", "", "abcdefg"])
    rows, _ = ngram_buckets(enc, 5, 20)
    # "^ab$": 4 + 3 + 2 + 1 n-grams; "^$": 2 + 1; "^abcdefg$": 9 + 8 + 7 + 6 + 5
    assert np.bincount(rows).tolist() == [10, 3, 35]
    assert ngram_count(enc.lengths, 5).tolist() == [10, 3, 35]
    weights = np.random.default_rng(0).normal(size=1 << 20)
    r, b = ngram_buckets(enc, 5, 20)
    assert np.allclose(ngram_sums(enc, 5, weights), np.bincount(r, weights[b], minlength=3))


def test_numpy_scorer_matches_scikit_learn() -> None:
    import scipy.sparse as sp
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier

    model = load_model()
    a = model.arrays
    names = GENERATED + SIMDA + POPULAR + [f"{w}{i}x" for i, w in enumerate(POPULAR)]
    enc = encode(names)
    n_max = int(a["ngram_max"])
    bits = len(a["ngram_weights"]).bit_length() - 1
    rows, buckets = ngram_buckets(enc, n_max, bits)
    scale = 1 / np.sqrt(ngram_count(enc.lengths, n_max))
    x1 = sp.csr_matrix((scale[rows], (rows, buckets)), shape=(len(names), 1 << bits))
    stage1 = LogisticRegression()
    stage1.classes_ = np.array([0, 1])
    stage1.coef_ = a["ngram_weights"].astype(np.float64)[None, :]
    stage1.intercept_ = np.array([float(a["ngram_intercept"])])
    x2 = (stack_inputs(stage1.decision_function(x1), dense_features(enc, a)) - a["input_mean"]) / a["input_scale"]
    hidden = tuple(a[f"mlp_w{i}"].shape[1] for i in range(model.n_layers - 1))
    rng = np.random.default_rng(0)
    stage2 = MLPClassifier(hidden_layer_sizes=hidden, max_iter=1)
    with pytest.warns(Warning):  # one iteration on noise only sets up the estimator's internals
        stage2.fit(rng.normal(size=(20, x2.shape[1])), np.arange(20) % 2)
    stage2.coefs_ = [a[f"mlp_w{i}"] for i in range(model.n_layers)]
    stage2.intercepts_ = [a[f"mlp_b{i}"] for i in range(model.n_layers)]
    expected = stage2.predict_proba(x2)[:, 1]
    assert np.allclose(score_names(names), expected, rtol=0, atol=1e-6)


def test_metadata_names_the_data_and_the_thresholds() -> None:
    meta = metadata()
    assert meta["trained_at"].endswith("Z")
    assert "conficker" in meta["data"]["distinct_labels"]
    assert any("alexa" in f for f in meta["data"]["files"])
    thr = thresholds()
    assert 0 < thr["fpr_0.01"] < thr["fpr_0.001"] < 1
    assert meta["numpy_vs_sklearn_max_abs_diff"] < 1e-6
    with np.load(dga_model.resources.files("bothunt") / "data" / dga_model.MODEL_RESOURCE, allow_pickle=False) as npz:
        assert all(npz[k].dtype != object for k in npz.files)
        assert float(npz["threshold_logit_fpr_0.01"]) == pytest.approx(
            np.log(thr["fpr_0.01"] / (1 - thr["fpr_0.01"])), abs=1e-6
        )


def test_simda_capture_queries_score_high(shared_data) -> None:
    lines = (shared_data / "zeek" / "ctu-botnet-355-1-simda" / "dns.log").read_text().splitlines()
    col = next(x for x in lines if x.startswith("#fields")).split("\t")[1:].index("query")
    queries = {x.split("\t")[col].lower() for x in lines if not x.startswith("#")}
    generated = sorted(q for q in queries if q.endswith(".com") and len(q) == 11 and q[:7].isalpha())
    assert len(generated) == 256  # the capture's other names: wpad, dns.msftncsi.com, www.bing.com
    scores = score_domains(generated)
    # Simda is not a training family: about two thirds pass the 1% threshold (docs/dga-model.md)
    assert (scores > thresholds()["fpr_0.01"]).mean() > 0.5
    assert float(np.median(scores)) > thresholds()["fpr_0.01"]
    # of the capture's two benign names only bing is low: the acronym "msftncsi" (Windows'
    # connectivity check) looks generated to the model, a known false positive the report lists
    assert score_domains(["www.bing.com"])[0] < thresholds()["fpr_0.01"]


def test_recorded_evaluation_meets_issue_6() -> None:
    """Issue #6's bar, checked against the evaluation the training run wrote into the shipped artifact."""
    meta = metadata()
    rnd, lofo = meta["random_split"], meta["leave_one_family_out"]
    assert rnd["pooled_auc"] >= 0.985
    assert lofo["macro_auc"] >= 0.95
    # speed is bench/bench_dga_score.py's to report (132k names/s quiet): never a timed assertion here
    # a held-out short arithmetic family must not collapse (it did, to 0.76, without synthetic data)
    assert lofo["families"]["conficker"]["auc"] > 0.9
    # the recorded numbers follow the documented protocol: every real family in both evaluations,
    # held out whole (all its names) or by its 20% test share, against one set of benign test names,
    # so the pooled AUC is the name-weighted mean of the family AUCs (no family down-sampled)
    counts = {f: n for f, n in meta["data"]["distinct_labels"].items() if f != "benign"}
    assert set(rnd["families"]) == set(lofo["families"]) == set(counts)
    assert all(lofo["families"][f]["n"] == n for f, n in counts.items())
    assert all(0.15 < rnd["families"][f]["n"] / n < 0.25 for f, n in counts.items())
    n = np.array([v["n"] for v in rnd["families"].values()])
    auc = np.array([v["auc"] for v in rnd["families"].values()])
    assert rnd["pooled_auc"] == pytest.approx(float((n * auc).sum() / n.sum()), abs=1e-9)
    assert lofo["macro_auc"] == pytest.approx(float(np.mean([v["auc"] for v in lofo["families"].values()])), abs=1e-12)
