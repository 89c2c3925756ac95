"""DNS tunnelling: one host sending many unique, long, random-looking names under one registered domain,
often as TXT or NULL queries. The engine reduces to one row per (host, registered domain) with counts,
unique names and subdomain lengths; numpy scores a bounded sample of names per candidate (character
entropy, how generated the longest label looks to the DGA model)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import ibis
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from bothunt import dga_model
from bothunt.config import Settings, domain_matches
from bothunt.detections.base import allowlisted, severity_from_score
from bothunt.detections.dns_names import as_us
from bothunt.detections.flood_campaigns import iso_us
from bothunt.engine import Tables
from bothunt.schema import Finding, finding_id

if TYPE_CHECKING:
    from bothunt.detections.dns_c2 import Params

ID = "dns_c2"
TECHNIQUES = ("T1583.005", "T1071.004", "T1572")
US = 1_000_000


def candidates(tables: Tables, named: ibis.Table, p: Params) -> tuple[pa.Table, pa.Table]:
    """(per (host, registered domain) summaries of the candidates, a sample of their distinct names)."""
    sub = (named.query.length() - named.reg.length() - 1).clip(lower=0)
    t = named.mutate(sub_len=sub)
    keys = ["src_ip", "hkey", "reg"]
    g = t.group_by(keys).agg(
        lookups=t.n.sum(), unique=t.count(), sub_mean=t.sub_len.mean(), sub_max=t.sub_len.max(),
        sub_chars=t.sub_len.sum(), txt=t.txt.sum(), nx=t.nx.sum(), first_ts=t.first_ts.min(),
        last_ts=t.last_ts.max(),
    )
    cand = g.filter((g.unique >= p.tunnel_min_unique) & (g.sub_mean >= p.tunnel_min_length))
    summary = as_us(tables.to_arrow(cand.order_by(keys)), first_us="first_ts", last_us="last_ts")
    if summary.num_rows == 0:
        return summary, pa.table({})
    ck = cand.select(*keys)
    s = t.join(ck, keys).select(*keys, "query")
    s = s.mutate(rn=ibis.row_number().over(group_by=keys, order_by="query"))
    sample = tables.to_arrow(s.filter(s.rn < p.tunnel_sample).select(*keys, "query").order_by([*keys, "query"]))
    return summary, sample


def entropy(strings: list[str]) -> np.ndarray:
    """Shannon entropy (bits per character) of each string, vectorised over the batch."""
    if not strings:
        return np.zeros(0)
    raw = [s.encode("utf-8", "replace") for s in strings]
    lengths = np.fromiter(map(len, raw), dtype=np.int64, count=len(raw))
    codes = np.frombuffer(b"".join(raw), dtype=np.uint8).astype(np.int64)
    rows = np.repeat(np.arange(len(raw)), lengths)
    counts = np.bincount(rows * 256 + codes, minlength=len(raw) * 256).reshape(len(raw), 256)
    p = counts / np.maximum(lengths, 1)[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        return -np.where(p > 0, p * np.log2(p), 0.0).sum(axis=1)


def _features(names: list[str], reg: str) -> dict[str, float]:
    subs = [n[: -len(reg) - 1] if n.endswith("." + reg) else n for n in names]
    flat = [s.replace(".", "") for s in subs]
    longest = [max(s.split("."), key=len) if s else "" for s in subs]
    scores = dga_model.score_names(longest) if longest else np.zeros(0)
    ent = entropy(flat)
    digits = np.asarray([sum(c.isdigit() for c in s) / max(len(s), 1) for s in flat]) if flat else np.zeros(0)
    return {
        "entropy": float(ent.mean()) if ent.size else 0.0,
        "label_score": float(np.mean(scores)) if len(scores) else 0.0,
        "longest_label": float(np.mean([len(x) for x in longest])) if longest else 0.0,
        "digit_share": float(digits.mean()) if digits.size else 0.0,
    }


def score(row: dict[str, Any], f: dict[str, float], p: Params) -> tuple[float, dict[str, float]]:
    """0..1 from volume of unique names, subdomain length, randomness and TXT/NULL share."""
    parts = {
        "unique_names": float(np.clip(math.log10(row["unique"] / p.tunnel_min_unique)
                                      / math.log10(max(p.tunnel_full_unique / p.tunnel_min_unique, 1.001)), 0, 1)),
        "length": float(np.clip((row["sub_mean"] - p.tunnel_min_length) / 35.0, 0, 1)),
        "randomness": float(np.clip(f["label_score"], 0, 1)),
        "txt_null_share": row["txt"] / max(row["lookups"], 1),
    }
    s = (0.30 * parts["unique_names"] + 0.25 * parts["length"] + 0.25 * parts["randomness"]
         + 0.20 * parts["txt_null_share"])
    return float(np.clip(s, 0, 1)), {k: round(v, 3) for k, v in parts.items()}


def findings(summary: pa.Table, sample: pa.Table, p: Params, settings: Settings) -> list[Finding]:
    if summary.num_rows == 0:
        return []
    by_key: dict[tuple[str, str, str], list[str]] = {}
    if sample.num_rows:
        key = pc.binary_join_element_wise(sample["src_ip"], sample["hkey"], sample["reg"], "\x1f").to_pylist()
        for k, q in zip(key, sample["query"].to_pylist(), strict=True):
            by_key.setdefault(tuple(k.split("\x1f")), []).append(q)  # type: ignore[arg-type]
    out = []
    for row in summary.to_pylist():
        names = by_key.get((row["src_ip"], row["hkey"], row["reg"]), [])
        f = _features(names, row["reg"])
        s, parts = score(row, f, p)
        if s < p.tunnel_min_score:
            continue
        host = row["hkey"] or None
        rep = sorted({pat for pat in p.reputation_domains for n in names[:50] if domain_matches(n, pat)})
        ev = {
            "queries": int(row["lookups"]), "unique_names": int(row["unique"]),
            "mean_subdomain_length": round(float(row["sub_mean"]), 1), "max_subdomain_length": int(row["sub_max"]),
            "encoded_bytes_estimate": int(row["sub_chars"]), "txt_null_queries": int(row["txt"]),
            "nxdomain": int(row["nx"]), "mean_entropy_bits": round(f["entropy"], 3),
            "mean_longest_label": round(f["longest_label"], 1), "mean_label_score": round(f["label_score"], 3),
            "digit_share": round(f["digit_share"], 3),
            "rate_per_hour": round(row["lookups"] / max((row["last_us"] - row["first_us"]) / US / 3600, 1 / 60), 1),
            "sample_names": names[: p.sample_names], "score_parts": parts, "kind": "tunnel",
        }
        fnd = Finding(
            id=finding_id(ID, "tunnel", host, row["src_ip"], row["reg"]), detection=ID,
            title=f"DNS tunnel: {host or row['src_ip']} sent {row['unique']} unique names under {row['reg']}",
            severity=severity_from_score(s), score=round(s, 4), first_seen=iso_us(row["first_us"]),
            last_seen=iso_us(row["last_us"]), host=host, src_ip=row["src_ip"], domain=row["reg"],
            techniques=TECHNIQUES, evidence=ev, explanation=_explain(row, f, ev),
        )
        hits = [f"reputation_service:{x}" for x in rep]
        hits += settings.allowlist.matches(domain=row["reg"], ip=row["src_ip"])
        if names:
            hits += [h for h in settings.allowlist.matches(domain=names[0]) if h not in hits]
        out.append(allowlisted(fnd, hits))
    return out


def _explain(row: dict[str, Any], f: dict[str, float], ev: dict[str, Any]) -> str:
    share = row["txt"] / max(row["lookups"], 1)
    return (
        f"{row['src_ip']} looked up {row['unique']} distinct names under {row['reg']} ({row['lookups']} queries, "
        f"{ev['rate_per_hour']}/h), with subdomains of {row['sub_mean']:.0f} characters on average (longest "
        f"{row['sub_max']}), {f['entropy']:.2f} bits of entropy per character and labels the DGA model scores "
        f"{f['label_score']:.2f} on average; {share:.0%} of the queries ask for TXT or NULL records. Data encoded "
        f"in names under a domain whose name server the sender controls is a tunnel (about "
        f"{row['sub_chars']} characters carried). Benign if the domain belongs to a security or reputation "
        "service (anti-virus, DNSBL) or a CDN that encodes identifiers in names: allow-list it."
    )
