"""Read the shared DGA and benign lists into labelled registered labels, and split them reproducibly.

Everything here is about *data*: which file is which family, de-duplication, and the splits the
evaluation relies on (benign names for training, for choosing thresholds and for testing never
overlap; families are held out whole).
"""

from __future__ import annotations

import csv
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bothunt.dga_model import registered_label

# File stem -> family. zeus_1000 is the same generator as new_goz (GameOver Zeus after 2014: 25-30
# base-36 characters under .com/.net/.org/.biz), so it is one family; holding out only one of the
# two would let the other teach the model the held-out family.
FAMILY_OF_FILE = {
    "conficker_1000": "conficker",
    "cryptolocker_1000": "cryptolocker",
    "goz": "goz",
    "new_goz": "newgoz",
    "zeus_1000": "newgoz",
    "matsnu_1000": "matsnu",
    "pushdo_1000": "pushdo",
    "ramdo_1000": "ramdo",
    "rovnix_1000": "rovnix",
    "tinba_1000": "tinba",
    "others_dga": "others",
}
DDS_FAMILY = {"cryptolocker": "cryptolocker", "goz": "goz", "newgoz": "newgoz"}


@dataclass
class Corpus:
    labels: np.ndarray  # str labels (what the model scores)
    family: np.ndarray  # family name, "benign" for benign
    sources: dict[str, str] = field(default_factory=dict)  # file -> what was taken from it
    notes: list[str] = field(default_factory=list)

    @property
    def is_dga(self) -> np.ndarray:
        return self.family != "benign"


def _label(name: str) -> str:
    name = name.strip().strip(".").lower()
    if "." not in name:
        return name  # others_dga lists some bare generated labels without a suffix
    return registered_label(name)


def load_corpus(root: Path, conficker_cap: int, seed: int) -> Corpus:
    """All families and benign labels, one row per distinct (label, class)."""
    dga: list[tuple[str, str]] = []
    benign: list[str] = []
    sources: dict[str, str] = {}
    for path in sorted((root / "families").glob("*.txt")):
        fam = FAMILY_OF_FILE[path.stem]
        rows = [(_label(line), fam) for line in path.read_text().splitlines() if line.strip()]
        dga += rows
        sources[f"families/{path.name}"] = f"{len(rows)} names, family {fam}"
    with open(root / "families" / "dds-malicious-domains.csv", newline="") as fh:
        rows = [(_label(r[0]), DDS_FAMILY[r[1]]) for r in csv.reader(fh) if r]
    dga += rows
    sources["families/dds-malicious-domains.csv"] = f"{len(rows)} names (cryptolocker, goz, newgoz)"
    conficker, alexa_copy = [], []
    for line in (root / "conficker_alexa_training.txt").read_text().splitlines():
        name, _, flag = line.partition("\t")
        (conficker if flag.strip() == "1" else alexa_copy).append(_label(name))
    conficker = sorted(set(conficker) - {""})
    rng = np.random.default_rng(seed)
    kept = [conficker[i] for i in np.sort(rng.choice(len(conficker), conficker_cap, replace=False))]
    dga += [(c, "conficker") for c in kept]
    sources["conficker_alexa_training.txt"] = (
        f"{len(conficker)} distinct conficker labels, a seeded sample of {conficker_cap} used; "
        f"its {len(alexa_copy)} benign rows are the same Alexa list as benign/alexa-top-100k"
    )
    for line in (root / "benign" / "alexa-top-100k_phunterlau.csv").read_text().splitlines():
        benign.append(_label(line.partition(",")[2]))
    sources["benign/alexa-top-100k_phunterlau.csv"] = "100,000 domains (Alexa 2015)"
    lines = (root / "benign" / "tranco-top-10k_LimoWagdy.csv").read_text().splitlines()[1:]
    benign += [_label(x) for x in lines]
    sources["benign/tranco-top-10k_LimoWagdy.csv"] = f"{len(lines)} domains (Tranco 2025)"
    return _dedupe(dga, benign, sources)


def _dedupe(dga: list[tuple[str, str]], benign: list[str], sources: dict[str, str]) -> Corpus:
    notes = []
    ben = set(benign) - {""}
    seen: dict[str, str] = {}
    multi = 0
    for lab, fam in dga:
        if not lab:
            continue
        if lab in seen and seen[lab] != fam:
            multi += 1
            continue
        seen.setdefault(lab, fam)
    clash = sorted(set(seen) & ben)
    for lab in clash:
        del seen[lab]
        ben.discard(lab)
    notes.append(
        f"{len(clash)} labels listed both as DGA and benign were dropped from both: "
        f"{', '.join(clash[:12])}{' ...' if len(clash) > 12 else ''}"
    )
    notes.append(f"{multi} DGA labels listed under two families kept their first family only")
    labels = sorted(seen)
    blabels = sorted(ben)
    return Corpus(
        labels=np.array(labels + blabels, dtype=object),
        family=np.array([seen[x] for x in labels] + ["benign"] * len(blabels), dtype=object),
        sources=sources,
        notes=notes,
    )


def split(corpus: Corpus, seed: int) -> np.ndarray:
    """Role of every row: benign 60% train / 20% threshold / 20% test; DGA 80% train / 20% test.

    Splits are by distinct label (rows are already distinct), so no label is on both sides.
    """
    rng = np.random.default_rng(seed)
    role = np.empty(len(corpus.labels), dtype=object)
    u = rng.random(len(role))
    ben = ~corpus.is_dga
    role[ben] = np.where(u[ben] < 0.6, "train", np.where(u[ben] < 0.8, "threshold", "test"))
    role[~ben] = np.where(u[~ben] < 0.8, "train", "test")
    return role


def family_counts(corpus: Corpus) -> Counter:
    return Counter(corpus.family.tolist())


def synthetic_families(words: list[str], per_family: int, seed: int) -> dict[str, list[str]]:
    """Generic DGA archetypes, generated (not taken from any family file).

    Uniform random letters (4-16) and alphanumerics (8-32), consonant/vowel pseudo-words, and
    concatenations of 2-5 words from the benign-derived word list. Real families other than
    Conficker are almost all *long*, so without short random strings a model trained without
    Conficker learns "long means generated" and misses short arithmetic DGAs (the report's ablation
    measures this). They are used in stage 2 only and are never evaluated as a family; which of them
    train, and how much each weighs, is ``FitConfig.synthetic`` (the word family is only generated for
    the ablation that measures leaving it out).
    """
    rng = np.random.default_rng(seed)
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    alnum = np.array(list("abcdefghijklmnopqrstuvwxyz0123456789"))
    cons, vow = np.array(list("bcdfghjklmnpqrstvwxz")), np.array(list("aeiouy"))
    long_words = np.array([w for w in words if len(w) >= 4])

    def pseudo_word() -> str:
        out, vowel = [], rng.random() < 0.5
        for _ in range(int(rng.integers(6, 13))):
            out.append(str(rng.choice(vow if vowel else cons)))
            vowel = not vowel if rng.random() < 0.85 else vowel
        return "".join(out)

    return {
        "synth_letters": ["".join(rng.choice(letters, int(rng.integers(4, 17)))) for _ in range(per_family)],
        "synth_alnum": ["".join(rng.choice(alnum, int(rng.integers(8, 33)))) for _ in range(per_family)],
        "synth_pseudoword": [pseudo_word() for _ in range(per_family)],
        "synth_words": ["".join(rng.choice(long_words, int(rng.integers(2, 6)))) for _ in range(per_family)],
    }
