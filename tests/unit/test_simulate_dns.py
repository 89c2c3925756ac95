"""Planted DNS attacks (DGA name shapes, tunnelling lengths and entropy, fast-flux TTL and spread) and
the DNS world's consistency (a connection goes to an address its name answered at that time)."""

from __future__ import annotations

import math
import re
from collections import Counter

import numpy as np
import pytest

from bothunt.simulate import prepare
from bothunt.simulate.attacks_dns import DGA_WORDS
from bothunt.simulate.dnsworld import WORDS
from bothunt.simulate.net import ip_text


@pytest.fixture(scope="module")
def world():  # type: ignore[no-untyped-def]
    sim, planted, _ = prepare(seed=3, hosts=60, days=1.0, scale=0.1)
    return sim, {p.truth.id: p for p in planted}


def shannon(text: str) -> float:
    counts = Counter(text)
    return -sum(c / len(text) * math.log2(c / len(text)) for c in counts.values())


def test_random_dga_names_bursts_and_the_one_that_resolves(world) -> None:  # type: ignore[no-untyped-def]
    _, planted = world
    p = planted["dga-random"]
    q = p.dns
    names = q["query"].to_pylist()
    assert len(set(names)) == len(names) >= 400
    assert all(re.fullmatch(r"[a-z]{12,20}\.(com|net|org|info|biz|ru|top)", n) for n in names)
    rcode = np.asarray(q["rcode"])
    assert (rcode == 0).sum() == 1 and (rcode == 3).mean() > 0.99
    resolved = names[int(np.flatnonzero(rcode == 0)[0])]
    assert resolved == p.truth.params["resolved"]
    answer = q["answers"].to_pylist()[int(np.flatnonzero(rcode == 0)[0])]
    assert answer == [p.truth.params["resolved_ip"]]
    # bursts: lookups come in clusters of at most ~40 s, hours apart
    ts = np.sort(q["ts"])
    gaps = np.diff(ts)
    assert (gaps > 3000).sum() == p.truth.params["bursts"] - 1 and gaps[gaps < 3000].max() < 41
    # the bot then connects to the resolved name, after the lookup
    c = p.conn
    assert len(c) >= 5 and {ip_text(d) for d in c["dst"].tolist()} == {answer[0]}
    assert c["ts"].min() > q["ts"][rcode == 0][0]
    assert p.truth.match == {"src_ip": ip_text(q["src"][0])} and "defender" in p.truth.formats


def test_dictionary_dga_names_are_two_words(world) -> None:  # type: ignore[no-untyped-def]
    _, planted = world
    names = planted["dga-dict"].dns["query"].to_pylist()
    words = "|".join(DGA_WORDS)
    assert all(re.fullmatch(rf"({words})({words})\.(com|net)", n) for n in names)
    assert not set(DGA_WORDS) & set(WORDS)  # never collides with the benign word-built long tail
    assert (np.asarray(planted["dga-dict"].dns["rcode"]) == 3).mean() > 0.98


def test_tunnel_names_are_long_unique_and_high_entropy(world) -> None:  # type: ignore[no-untyped-def]
    _, planted = world
    p = planted["dns-tunnel"]
    q = p.dns
    names = q["query"].to_pylist()
    domain = p.truth.match["domain"]
    assert len(names) > 3000 and len(set(names)) == len(names)
    assert all(n.endswith("." + domain) for n in names)
    assert min(len(n) for n in names) >= 100
    first_labels = [n.split(".")[0] for n in names]
    assert {len(label) for label in first_labels} == {57}
    entropies = [shannon(label[5:]) for label in first_labels[:500]]
    assert np.mean(entropies) > 4.3  # base32 tops out at 5 bits per character
    qtype = np.asarray(q["qtype"])
    assert (qtype == 16).mean() == pytest.approx(0.75, abs=0.03)
    assert (np.asarray(q["rcode"]) == 0).all()
    assert p.truth.detection == "dns_c2" and p.truth.params["queries"] == len(names)


def test_fast_flux_ttl_and_address_spread(world) -> None:  # type: ignore[no-untyped-def]
    _, planted = world
    p = planted["fast-flux"]
    q = p.dns
    answers = q["answers"].to_pylist()
    ttls = q["ttls"].to_pylist()
    assert {len(a) for a in answers} == {6}
    assert max(max(t) for t in ttls) <= 120 and min(min(t) for t in ttls) > 0
    seen = {a for row in answers for a in row}
    assert len(seen) >= 60
    assert len({tuple(a.split(".")[:2]) for a in seen}) >= 30  # many /16 networks
    # two lookups more than a TTL apart share no address: the set is replaced, not reshuffled
    ts = q["ts"]
    far = [(i, j) for i in range(len(ts)) for j in range(i + 1, min(i + 5, len(ts))) if ts[j] - ts[i] > 130]
    assert far and sum(bool(set(answers[i]) & set(answers[j])) for i, j in far) / len(far) < 0.1
    c = p.conn
    assert len(c) > 0 and {ip_text(d) for d in c["dst"].tolist()} <= seen
    assert p.truth.match == {"domain": "secure-docs-portal.top"}


def test_world_connections_go_to_answered_addresses(world) -> None:  # type: ignore[no-untyped-def]
    sim, _ = world
    w = sim.world
    rng = np.random.default_rng(0)
    for kind in ("cdn", "popular", "ntp"):
        dom = np.repeat(w.groups[kind][:10], 200)
        ts = sim.t_start + rng.uniform(0, 86400, dom.size)
        dst = w.pick(rng, dom, ts)
        answers = w.answers(dom, ts, np.ones(dom.size, bool))[0].to_pylist()
        assert all(ip_text(d) in a for d, a in zip(dst.tolist(), answers, strict=True)), kind
    cdn = w.groups["cdn"]
    assert (w.addr_n[cdn] >= 6).all() and (w.ttl[cdn] == 60).all()
    assert any(n.endswith(".cloudfront.net") and re.fullmatch(r"d[a-z0-9]{13}\.cloudfront\.net", n)
               for n in w.names)
