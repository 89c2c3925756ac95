"""Train, evaluate and export the shipped DGA model (``src/bothunt/data/dga_model.npz``).

    .venv/bin/python tools/train_dga.py              # fit, evaluate, write npz + docs/dga-model.md
    .venv/bin/python tools/train_dga.py --ablation   # ... plus the no-synthetic-data ablation (as shipped)
    .venv/bin/python tools/train_dga.py --quick      # fit and export only (no leave-one-family-out)

Reads the research-only lists under ../shared/data/dga (they never enter this repository; only the
derived weights do). Every random choice is seeded and BLAS runs on one thread, so two runs write
the same weights; only the training date in the metadata differs (set SOURCE_DATE_EPOCH to pin it).
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import sys
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import sklearn
from threadpoolctl import threadpool_limits

from bothunt.dga_features import DENSE_NAMES, dense_features, encode
from bothunt.dga_model import DgaModel, registered_label
from dga_data import load_corpus, split, synthetic_families
from dga_eval import FPRS, evaluate, leave_one_family_out, random_split, reference_scorer
from dga_fit import FitConfig, family_weights, fit, ngram_matrix, oof_dense
from dga_report import render
from dga_tables import char_models, derive_words, word_tables

ROOT = Path(__file__).resolve().parents[1]
# The word-concatenation family the shipped model leaves out, at the share it had when it was in; the
# ablation re-measures what adding it back does.
WORD_SYNTH = ("synth_words", 0.3)


def build_tables(benign: list[str]) -> dict[str, np.ndarray]:
    words = derive_words(benign)
    return {**char_models(benign), **word_tables(words), "_words": np.array(words)}


def simda_labels(shared: Path) -> list[str]:
    """Distinct registered labels queried in the Simda capture, except the capture's benign names."""
    path = shared / "zeek" / "ctu-botnet-355-1-simda" / "dns.log"
    if not path.exists():
        return []
    lines = path.read_text().splitlines()
    col = next(x for x in lines if x.startswith("#fields")).split("\t")[1:].index("query")
    queries = {x.split("\t")[col].lower() for x in lines if not x.startswith("#")}
    # the capture's only other names: wpad, wpad.lan, dns.msftncsi.com, www.bing.com and "-"
    return sorted({registered_label(q) for q in queries} - {"", "msftncsi", "bing", "wpad"})


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "dga")
    ap.add_argument("--out", type=Path, default=ROOT / "src" / "bothunt" / "data" / "dga_model.npz")
    ap.add_argument("--report", type=Path, default=ROOT / "docs" / "dga-model.md")
    ap.add_argument("--seed", type=int, default=20250601)
    ap.add_argument("--conficker-cap", type=int, default=20000)
    ap.add_argument("--synthetic-per-family", type=int, default=4000)
    ap.add_argument(
        "--synthetic-weight",
        type=float,
        default=FitConfig.synthetic_weight,
        help="multiplies each synthetic family's weight relative to a real one (0: no synthetic data)",
    )
    ap.add_argument("--jobs", type=int, default=2, help="parallel leave-one-family-out fits")
    ap.add_argument("--quick", action="store_true", help="skip the evaluation (no report written)")
    ap.add_argument("--eval-dump", type=Path, help="also pickle the measurements here (to re-render)")
    ap.add_argument("--render-only", type=Path, help="re-render the report from an --eval-dump file")
    ap.add_argument(
        "--ablation",
        action="store_true",
        help="also evaluate the model without synthetic families and with the word family (triples the time)",
    )
    args = ap.parse_args(argv)
    if args.render_only:
        with open(args.render_only, "rb") as fh:
            meta, results, simda, simda_logit, shown = pickle.load(fh)
        args.report.write_text(render(meta, results, simda, simda_logit, shown_args(shown.split())))
        return 0
    if not args.data.is_dir():
        print(f"training data not found at {args.data}", file=sys.stderr)
        return 2
    with threadpool_limits(1):
        return run(args)


def run(args: argparse.Namespace) -> int:
    t0 = time.perf_counter()
    cfg = FitConfig(synthetic_weight=args.synthetic_weight)
    corpus = load_corpus(args.data, args.conficker_cap, args.seed)
    role = split(corpus, args.seed)
    benign_train = (corpus.family == "benign") & (role == "train")
    dense, tables = oof_dense(corpus.labels, benign_train, build_tables, folds=5, seed=args.seed)
    words = tables.pop("_words").tolist()
    synth = synthetic_families(words, args.synthetic_per_family, args.seed)
    s_labels = [x for v in synth.values() for x in v]
    labels = np.concatenate([corpus.labels, np.array(s_labels, dtype=object)])
    family = np.concatenate([corpus.family, np.array([f for f, v in synth.items() for _ in v], dtype=object)])
    role = np.concatenate([role, np.full(len(s_labels), "train", dtype=object)])
    dense = np.vstack([dense, dense_features(encode(s_labels), tables)])
    g = ngram_matrix(labels, cfg)
    real = sorted(set(corpus.family) - {"benign"})
    print(f"data + features: {time.perf_counter() - t0:.0f}s, {len(labels)} rows, {len(words)} words", flush=True)

    fitted = fit(g, dense, family, role == "train", cfg, args.seed)
    s = fitted.decision(g, dense, tables)
    held = {f: (family == f) & (role == "test") for f in real}
    pooled = (family != "benign") & (role == "test") & np.isin(family, real)
    shipped = evaluate(s, family, role, held, pooled=pooled)
    model = DgaModel({**tables, **fitted.arrays()})
    sample = np.flatnonzero(role == "test")[:: max(1, int((role == "test").sum()) // 5000)]
    diff = float(
        np.abs(model.score(labels[sample]).astype(np.float64) - fitted.sklearn_proba(g[sample], dense[sample])).max()
    )
    print(
        f"fit + random split: {time.perf_counter() - t0:.0f}s, AUC {shipped.pooled_auc:.4f}, "
        f"numpy vs sklearn max |diff| {diff:.2e}",
        flush=True,
    )

    results: dict = {"shipped": shipped}
    if not args.quick:
        ours = lambda train: fit(g, dense, family, train, cfg, args.seed).decision(g, dense, tables)  # noqa: E731
        results["lofo"] = leave_one_family_out(ours, family, role, real, args.jobs)
        print(f"leave-one-family-out: {time.perf_counter() - t0:.0f}s", flush=True)
        if args.ablation:
            no_synth = lambda train: ours(train & ~np.char.startswith(family.astype(str), "synth_"))  # noqa: E731
            results["lofo_no_synth"] = leave_one_family_out(no_synth, family, role, real, args.jobs)
            results["random_no_synth"] = random_split(no_synth, family, role, real)
            wcfg = replace(cfg, synthetic=(*cfg.synthetic, WORD_SYNTH))
            words_in = lambda train: fit(g, dense, family, train, wcfg, args.seed).decision(g, dense, tables)  # noqa: E731
            results["lofo_word_synth"] = leave_one_family_out(words_in, family, role, real, args.jobs)
            results["random_word_synth"] = random_split(words_in, family, role, real)
        weights = lambda fam: family_weights(fam, cfg.synthetic_shares())  # noqa: E731
        ref = reference_scorer(labels, family, weights)
        results["ref_random"] = random_split(ref, family, role, real)
        results["ref_lofo"] = leave_one_family_out(ref, family, role, real, args.jobs)
        print(f"ablation + reference: {time.perf_counter() - t0:.0f}s", flush=True)

    simda = simda_labels(args.data.parent)
    simda_logit = model.decision(simda) if simda else np.zeros(0)
    throughput = measure_throughput(model, labels)
    meta = metadata(args, cfg, corpus, synth, words, shipped, diff, results, simda, simda_logit, throughput)
    meta["conficker_auc_by_length"] = by_length(s, labels, family, role, "conficker")
    if simda:
        # the capture's own benign names, scored by the same model (see the report's Limits)
        meta["simda_capture"]["benign_names"] = {x: float(model.score([x])[0]) for x in ("msftncsi", "bing")}
    arrays = {**tables, **fitted.arrays(), "metadata_json": np.array(json.dumps(meta, sort_keys=True))}
    for fpr, t in shipped.thresholds.items():
        arrays[f"threshold_logit_fpr_{fpr:g}"] = np.array(t)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out, **arrays)
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.2f} MB)")
    if not args.quick:
        args.report.parent.mkdir(parents=True, exist_ok=True)
        measured = (meta, results, simda, simda_logit, shown_args(sys.argv[1:]))
        if args.eval_dump:
            with open(args.eval_dump, "wb") as fh:
                pickle.dump(measured, fh)
        args.report.write_text(render(*measured))
        print(f"wrote {args.report}")
    print(f"total {time.perf_counter() - t0:.0f}s")
    return 0


def shown_args(argv: list[str]) -> str:
    """The command line options that change the result (not where measurements were dumped)."""
    out, skip = [], False
    for a in argv:
        if skip or a.startswith("--eval-dump") or a.startswith("--render-only"):
            skip = not skip and "=" not in a
            continue
        out.append(a)
    return " ".join(out)


def by_length(s: np.ndarray, labels: np.ndarray, family: np.ndarray, role: np.ndarray, fam: str) -> dict:
    """Random-split AUC of one family's test names by label length, against all benign test names."""
    from sklearn.metrics import roc_auc_score

    length = np.array([len(x) for x in labels])
    benign = s[(family == "benign") & (role == "test")]
    out = {}
    for lo, hi in ((4, 5), (6, 7), (8, 63)):
        pos = s[(family == fam) & (role == "test") & (length >= lo) & (length <= hi)]
        if len(pos):
            y = np.r_[np.ones(len(pos)), np.zeros(len(benign))]
            out[f"{lo}-{hi}"] = {"n": len(pos), "auc": float(roc_auc_score(y, np.r_[pos, benign]))}
    return out


def measure_throughput(model: DgaModel, labels: np.ndarray) -> float:
    names = np.unique(labels)[:100_000].tolist()
    model.score(names[:1000])
    t = time.perf_counter()
    model.score(names)
    return len(names) / (time.perf_counter() - t)


def metadata(args, cfg, corpus, synth, words, shipped, diff, results, simda, simda_logit, throughput) -> dict:
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    when = datetime.fromtimestamp(int(epoch), UTC) if epoch else datetime.now(UTC)
    thr = {f"fpr_{fpr:g}": float(1 / (1 + np.exp(-t))) for fpr, t in shipped.thresholds.items()}
    counts = {f: int((corpus.family == f).sum()) for f in sorted(set(corpus.family))}
    meta = {
        "model": "bothunt DGA label classifier v2 (n-gram SGD logit + mean of ReLU MLPs)",
        "trained_at": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "seed": args.seed,
        "data": {
            "root": "../shared/data/dga (research-only lists, not redistributed)",
            "files": corpus.sources,
            "distinct_labels": counts,
            "notes": corpus.notes,
            "synthetic_per_family": {k: len(v) for k, v in synth.items()},
            "split": "benign 60% train / 20% threshold / 20% test; DGA 80% train / 20% test",
        },
        "config": {**cfg.__dict__, "hidden": list(cfg.hidden), "synthetic": dict(cfg.synthetic)},
        "dense_features": list(DENSE_NAMES),
        "word_list_size": len(words),
        "thresholds": thr,
        "threshold_logits": {f"fpr_{fpr:g}": t for fpr, t in shipped.thresholds.items()},
        "benign_test_fpr": {f"fpr_{fpr:g}": v for fpr, v in shipped.benign_test_fpr.items()},
        "random_split": {
            "pooled_auc": shipped.pooled_auc,
            "macro_auc": shipped.macro_auc,
            "families": shipped.families,
        },
        "numpy_vs_sklearn_max_abs_diff": diff,
        "versions": {"numpy": np.__version__, "scikit-learn": sklearn.__version__},
        "names_per_second_at_training": round(throughput),
    }
    if "lofo" in results:
        lofo = results["lofo"]
        meta["leave_one_family_out"] = {"macro_auc": lofo.macro_auc, "families": lofo.families}
    for name in ("no_synth", "word_synth"):
        if f"lofo_{name}" in results:
            r, lo = results[f"random_{name}"], results[f"lofo_{name}"]
            meta.setdefault("ablation", {})[name] = {
                "random_split_pooled_auc": r.pooled_auc,
                "leave_one_family_out_macro_auc": lo.macro_auc,
                "leave_one_family_out_auc": {f: v["auc"] for f, v in lo.families.items()},
            }
    if len(simda):
        meta["simda_capture"] = {
            "labels": len(simda),
            **{f"recall_fpr_{fpr:g}": float((simda_logit > shipped.thresholds[fpr]).mean()) for fpr in FPRS},
        }
    return meta


if __name__ == "__main__":
    sys.exit(main())
