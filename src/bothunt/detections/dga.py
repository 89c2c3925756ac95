"""DGA bots: hosts that look up many machine-generated domains, mostly in vain, in bursts.

A domain-generation algorithm gives every bot the same long list of names for the day; the bot tries
them until one resolves (the live C2 the operator registered). On the wire that is one host looking up
tens to thousands of registered domains that nobody else looks up, nearly all answered NXDOMAIN, in
bursts. Judging single names fails both ways (CDN host names look random, dictionary-word DGAs look
benign), so the verdict is made per host: the shipped model scores each distinct *registered* label
(``bothunt.dga_model``), and the host's count of failed rare domains, their scores, their NXDOMAIN share
and their arrival in bursts make the score. A generated name that did resolve and that the host then
connected to is reported with that connection: the live C2.

The engine reduces lookups to one row per (host, registered domain) with counts, outcomes and first
time (dns_names.py); only hosts with enough failed rare domains come back to numpy (dns_dga_hosts.py),
and only their resolved candidates are joined with connections (dns_livec2.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import ibis
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from bothunt import dga_model
from bothunt.config import Settings
from bothunt.detections import dns_dga_hosts, dns_livec2
from bothunt.detections.base import DetectionInfo, param
from bothunt.detections.dns_names import (
    LOCAL_SUFFIXES,
    as_us,
    lookups,
    materialized,
    name_pairs,
    with_registered,
)
from bothunt.engine import Tables
from bothunt.schema import Finding

ID = "dga"
SCORE_CHUNK = 32_768

INFO = DetectionInfo(
    id=ID,
    title="DGA bot: a host cycling through machine-generated domains",
    techniques=("T1583.005", "T1568.002"),
    summary=("A host looks up many registered domains that no other host looks up and that do not resolve "
             "(NXDOMAIN), in bursts, and their labels score as machine-generated (random characters) or "
             "they are simply never-seen words glued together (dictionary DGAs such as Matsnu, Suppobox, "
             "Gozi): the algorithm of a bot looking for its command server (T1568.002). A generated name "
             "that did resolve and that the host then connected to is reported as the live C2."),
    false_positives=(
        "CDN and cloud host names (d1a2b3.cloudfront.net, e123.akamaiedge.net) look random but only their "
        "registered label (cloudfront, akamaiedge) is scored, and they resolve.",
        "Chrome's start-up probes (three random single labels, NXDOMAIN) and NetBIOS / LLMNR / mDNS names "
        "have no registered domain and are not counted.",
        "Misconfigured hosts that append search suffixes (name.corp.example.com.corp.local) fail steadily "
        "but for a handful of domains, never in bursts of distinct new ones; site-local suffixes are "
        "dropped (ignore_suffixes).",
        "Reputation lookups (zen.spamhaus.org, *.sophosxl.net, *.avqs.mcafee.com) and reverse lookups encode "
        "data below one registered domain: one domain, never a burst of many.",
        "Mail servers checking sender domains of a spam run, web crawlers, link checkers and security tools "
        "that resolve lists of domains can fail on many new domains in bursts: allow-list their addresses "
        "(allowlist.cidrs) after checking.",
        "A recursive resolver or proxy logged as the source of its clients' lookups aggregates many users; "
        "hunt on the client-side logs instead.",
    ),
    triage=(
        "Look at the sample names and the bursts: the same length and alphabet, or word pairs, every burst "
        "of a new set of names, is an algorithm; a few typos are not.",
        "If a live C2 is listed, block the domain and its address and look at what the host sent there.",
        "Find the process that made the lookups on the host (Sysmon event 22, EDR DNS events).",
    ),
    references=(
        "https://attack.mitre.org/techniques/T1568/002/",
        "https://attack.mitre.org/techniques/T1583/005/",
        "https://www.stratosphereips.org/datasets-malware (CTU-Malware-Capture-Botnet-355-1, Simda)",
    ),
)


@dataclass(frozen=True)
class Params:
    ignore_suffixes: tuple[str, ...] = param(LOCAL_SUFFIXES, "Names under these suffixes are never counted "
                                                             "(reverse lookups, mDNS, site-local names).")
    max_reg_hosts: int = param(10, "A registered domain looked up by more hosts than this (and than "
                                   "max_reg_host_share of all hosts) is common, not generated for one bot.")
    max_reg_host_share: float = param(0.05, "Share of all hosts up to which a registered domain still counts "
                                            "as rare (lets a DGA shared by many bots in a large network count).")
    min_failed: int = param(5, "Distinct rare registered domains a host must have failed to resolve "
                               "(NXDOMAIN, never NOERROR) before it is examined at all.")
    high_score: float = param(0.0, "Model score from which a registered label counts as generated; 0 takes "
                                   "the shipped model's threshold at 1% false positives on benign labels.")
    min_high_names: int = param(10, "Failed rare domains scoring at least high_score that flag a host on "
                                    "their own (random-character DGAs).")
    min_nxdomain_ratio: float = param(0.5, "Share of the lookups of a host's high-scoring rare domains that "
                                           "must be NXDOMAIN for the random-character verdict.")
    burst_gap_seconds: float = param(60.0, "Failed lookups of new domains closer than this belong to one burst.")
    burst_min_names: int = param(8, "Distinct failed rare domains a burst needs to count.")
    min_burst_names: int = param(20, "Failed rare domains inside counted bursts that flag a host whatever "
                                     "their scores (dictionary-word DGAs).")
    full_high_names: int = param(25, "High-scoring failed domains at which that part of the score is full.")
    full_burst_names: int = param(40, "Failed domains in bursts at which that part of the score is full.")
    c2_margin_seconds: float = param(300.0, "A rare domain that resolved within this long of a burst is a "
                                            "candidate live C2.")
    c2_window_seconds: float = param(3600.0, "A connection to an address such a name resolved to, up to this "
                                             "long after the answer, makes it the live C2.")
    sample_names: int = param(12, "How many names (with scores) and bursts a finding lists.")
    max_rows: int = param(2_000_000, "Cap on (host, domain) rows brought into numpy per run.")


def threshold(high_score: float) -> float:
    """`high_score` when set, else the shipped model's threshold at 1% false positives."""
    if high_score > 0:
        return float(high_score)
    th = dga_model.thresholds()
    return float(th.get("fpr_0.01", next(iter(th.values()))))


def host_rows(tables: Tables, pairs: ibis.Table, p: Params) -> tuple[ibis.Table, pa.Table]:
    """(rare (device, registered domain) rows of the devices worth a look, per-device totals), from the
    (device, name) reduction. A device is a source address plus the host name where the source names one."""
    totals = tables.to_arrow(pairs.group_by(["src_ip", "hkey"]).agg(
        lookups=pairs.n.sum(), nxdomain=pairs.nx.sum(), names=pairs.count()).order_by(["src_ip", "hkey"]))
    named = with_registered(tables, pairs)
    named = named.filter(named.reg != "")
    hr = named.group_by(["src_ip", "hkey", "reg"]).agg(
        n=named.n.sum(), nx=named.nx.sum(), ok=named.ok.sum(), first_ts=named.first_ts.min(),
        last_ts=named.last_ts.max(), names=named.count(), example=named.query.min(),
    )
    max_hosts = max(p.max_reg_hosts, int(p.max_reg_host_share * totals.num_rows))
    regs = hr.group_by("reg").agg(reg_hosts=hr.count())
    rare = hr.join(regs, "reg").filter(ibis._.reg_hosts <= max_hosts)
    failed = rare.filter((rare.nx > 0) & (rare.ok == 0))
    cand = failed.group_by(["src_ip", "hkey"]).agg(n_failed=failed.count()).filter(ibis._.n_failed >= p.min_failed)
    return rare.join(cand, ["src_ip", "hkey"]), totals


def score_regs(regs: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """Model score of each row's registered label, scored once per distinct domain."""
    enc = pc.dictionary_encode(regs).combine_chunks() if isinstance(regs, pa.ChunkedArray) \
        else pc.dictionary_encode(regs)
    labels = pc.extract_regex(enc.dictionary, r"^(?P<label>[^.]*)").field("label").to_pylist()
    # the model's working arrays for tens of thousands of labels stay in cache; for millions they do not
    parts = [np.asarray(dga_model.score_names(labels[i: i + SCORE_CHUNK]), dtype=np.float64)
             for i in range(0, len(labels), SCORE_CHUNK)]
    scores = np.concatenate(parts) if parts else np.zeros(0)
    return scores[enc.indices.to_numpy(zero_copy_only=False)]


def detect(tables: Tables, settings: Settings) -> list[Finding]:
    p = settings.params(Params, ID)
    with materialized(tables, name_pairs(lookups(tables.dns, p.ignore_suffixes)), "dga_pairs") as pairs:
        rows_expr, totals = host_rows(tables, pairs, p)
        rows = tables.to_arrow(rows_expr.limit(p.max_rows))
    if rows.num_rows == 0:
        return []
    # one order whatever the engine returned (sorting the fetched rows is cheaper than ORDER BY there)
    rows = as_us(rows, first_us="first_ts", last_us="last_ts")
    rows = rows.take(pc.sort_indices(rows, [(c, "ascending") for c in ("src_ip", "hkey", "first_us", "reg")]))
    scores = score_regs(rows["reg"])
    high = threshold(p.high_score)
    verdicts = dns_dga_hosts.judge(rows, scores, p, high)
    if not verdicts:
        return []
    live = dns_livec2.find(tables, verdicts, p)
    return dns_dga_hosts.findings(verdicts, totals, live, p, high, totals.num_rows, settings)
