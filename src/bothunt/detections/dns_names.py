"""The engine half shared by the DNS detections: which lookups count, their outcome flags, the first
reduction (one row per host and name), and the registered domain of every name, computed inside the
engine (DuckDB or Spark) with the public suffix list.

The registered domain is the name's last k labels, where k is one more than the length of its public
suffix. Outside the ~200 two-label suffixes that have deeper rules (``*.kawasaki.jp``, ``k12.ma.us``, the
``.us`` states, ``!city.kobe.jp``) k depends only on the last two labels and on whether there is a third.
So Python looks at the distinct last-two labels only (vectorised against the rule set), resolves names
under the deep suffixes one by one (they are rare), and hands the engine a small table of the values
whose k is not 2, joined on the last two labels. The result equals
``bothunt.dga_model.registered_domain`` for names of letters, digits, hyphens and underscores (tests
check this on both engines), except that names under a top-level domain nobody can register (``corp``,
``lan``, ``home``, numbers, so also IPv4 addresses) have none here, where registered_domain would
treat the unknown label as a public suffix.
"""

from __future__ import annotations

import re
import uuid
import warnings
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from functools import cache
from typing import Any

import ibis
import ibis.expr.types as ir
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

# Names that never leave the site or cannot be registered: reverse lookups, mDNS and other site-local
# names (RFC 6761 / 6762 / 8375 and suffixes commonly used inside organisations).
LOCAL_SUFFIXES: tuple[str, ...] = (
    "arpa", "local", "lan", "internal", "intranet", "localdomain", "localhost", "home", "corp", "private",
    "invalid", "test", "example", "onion", "workgroup",
)
# Link-local multicast resolvers: mDNS (224.0.0.251, ff02::fb) and LLMNR (224.0.0.252, ff02::1:3).
MULTICAST_PREFIXES: tuple[str, ...] = ("224.0.0.", "ff02:")
NX_WORDS = ("NXDOMAIN", "3")
OK_WORDS = ("NOERROR", "0")
TXT_NULL_WORDS = ("TXT", "16", "NULL", "10")

_T1 = r"[^.]+$"
_TAILS = {k: r"\.".join([r"[^.]+"] * k) + "$" for k in (2, 3, 4, 5)}


def lookups(dns: ir.Table, ignore_suffixes: Iterable[str] = LOCAL_SUFFIXES) -> ir.Table:
    """DNS rows that can be about the Internet, with outcome flags.

    Dropped: rows without a query or a source address, single labels (Chrome's random probes, ``wpad``,
    NetBIOS-style names), names under `ignore_suffixes` (reverse lookups, mDNS ``.local`` and other
    site-local names) and queries sent to the link-local multicast resolvers (mDNS, LLMNR)."""
    suffixes = sorted({re.escape(s.strip(".").lower()) for s in ignore_suffixes if s.strip(".")})
    keep = dns.query.notnull() & dns.query.contains(".") & dns.src_ip.notnull()
    if suffixes:
        keep = keep & ~dns.query.re_search(r"\.(" + "|".join(suffixes) + ")$")
    multicast = dns.dst_ip.re_search("^(" + "|".join(re.escape(m) for m in MULTICAST_PREFIXES) + ")").fill_null(False)
    q = dns.filter(keep & ~multicast)
    rcode = q.rcode.upper()
    return q.mutate(
        hkey=q.host.fill_null(""),
        nx=rcode.isin(NX_WORDS).fill_null(False).cast("int64"),
        ok=rcode.isin(OK_WORDS).fill_null(False).cast("int64"),
        txt=q.qtype.upper().isin(TXT_NULL_WORDS).fill_null(False).cast("int64"),
    )


def name_pairs(q: ir.Table) -> ir.Table:
    """One row per (src_ip, host, name): the reduction every DNS detection starts from."""
    return q.group_by(["src_ip", "hkey", "query"]).agg(
        n=q.count(), nx=q.nx.sum(), ok=q.ok.sum(), txt=q.txt.sum(), first_ts=q.ts.min(), last_ts=q.ts.max(),
    )


@contextmanager
def materialized(tables: Any, expr: ir.Table, stem: str) -> Iterator[ir.Table]:
    """`expr` computed once into a temporary DuckDB table for the queries inside the block (the reduction
    is read several times; recomputing it would rescan the lookups each time). Other engines get the
    expression itself."""
    if tables.engine != "duckdb":
        yield expr
        return
    name = f"bothunt_{stem}_{uuid.uuid4().hex[:12]}"
    with warnings.catch_warnings():  # ibis 12 calls a DuckDB 2 method that is deprecated
        warnings.simplefilter("ignore", DeprecationWarning)
        table = tables.con.create_table(name, expr, temp=True)
    try:
        yield table
    finally:
        tables.con.raw_sql(f'DROP TABLE IF EXISTS "{name}"')


def as_us(t: pa.Table, **columns: str) -> pa.Table:
    """Timestamp columns of a fetched table as int64 microseconds since 1970, renamed (new=old).

    Times stay timestamps inside the engine: converting there costs DuckDB a time-zone aware difference
    per row, converting the reduced result here costs nothing."""
    for new, old in columns.items():
        i = t.schema.get_field_index(old)
        t = t.set_column(i, new, t[old].cast(pa.timestamp("us", tz="UTC")).cast(pa.int64()))
    return t


# ---------------------------------------------------------------------------------------------------
# registered domains


@cache
def _rules() -> tuple[frozenset[str], frozenset[str], frozenset[str], frozenset[str]]:
    """(rule strings, last-two labels under which k needs more than the last two labels, top-level
    labels, top-level labels under which every name's k is 2), from the ICANN-only public suffix list
    that dga_model uses."""
    from bothunt.dga_model import _psl

    rules = getattr(_psl(False), "_publicsuffix", None)
    if not isinstance(rules, frozenset):  # a future publicsuffixlist: resolve every name one by one
        return frozenset(), frozenset(), frozenset(), frozenset()
    stripped = [(r, _strip(r)) for r in rules]
    deep2 = {".".join(s.split(".")[-2:]) for _, s in stripped if s.count(".") >= 2}
    deep2 |= {s for r, s in stripped if r.startswith("*.") and s.count(".") == 1}
    tlds = frozenset(s.rsplit(".", 1)[-1] for _, s in stripped)
    busy = {s.rsplit(".", 1)[-1] for r, s in stripped if "." in s or r.startswith("*.") or r.startswith("!")}
    return rules, frozenset(deep2), tlds, tlds - busy


def _strip(rule: str) -> str:
    s = rule.lstrip("!")
    return s[2:] if s.startswith("*.") else s


def labels_of(name: str) -> int:
    """Labels in the registered domain of `name` by dga_model (0: it has none)."""
    from bothunt.dga_model import registered_domain

    reg = registered_domain(name)
    return reg.count(".") + 1 if reg else 0


def k_of_tails(t2: pa.Array, has3: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """(k, deep) for distinct (last two labels, has a third label): k labels in the registered domain,
    0 for none; `deep` marks values whose names must be resolved one by one. Vectorised: the public suffix
    checks of the two deepest levels, in the list's order (exception, wildcard, exact)."""
    rules, deep2, tlds, _ = _rules()
    n = len(t2)
    if not rules:
        return np.zeros(n, dtype=np.int64), np.ones(n, dtype=bool)
    rule_arr = pa.array(sorted(rules), pa.string())
    tld = pc.extract_regex(t2, r"(?P<tld>[^.]+)$").field("tld")

    def listed(prefix: str, values: pa.Array) -> np.ndarray:
        v = pc.binary_join_element_wise(pa.scalar(prefix), values, "") if prefix else values
        return pc.is_in(v, value_set=rule_arr).fill_null(False).to_numpy(zero_copy_only=False)

    more = has3.fill_null(False).to_numpy(zero_copy_only=False)
    publen = np.where(listed("!", t2), 1, np.where(listed("*.", t2), 2, np.where(listed("", t2), 2,
                      np.where(listed("*.", tld), 2, 1))))
    k = publen + 1
    k = np.where((k > 2) & ~more, 0, k)
    known = pc.is_in(tld, value_set=pa.array(sorted(tlds), pa.string())).fill_null(False).to_numpy(
        zero_copy_only=False)
    k = np.where(known, k, 0)
    deep = pc.is_in(t2, value_set=pa.array(sorted(deep2), pa.string())).fill_null(False).to_numpy(
        zero_copy_only=False) & known
    return k.astype(np.int64), deep


def with_registered(tables: Any, t: ir.Table) -> ir.Table:
    """`t` (a table with a `query` column; reduce first, it is scanned three times) plus `reg`, the
    registered domain of `query` ("" when there is none).

    Under most top-level domains (com, net, org, ...) every name's registered domain is its last two
    labels, so the engine is first asked for the distinct top-level labels only, and for distinct last-two
    labels only under the top-level domains that have deeper rules (uk, jp, au, us, ...)."""
    rules, _, tlds, flat = _rules()
    tld = t.query.re_extract(_T1, 0)
    t2 = t.query.re_extract(_TAILS[2], 0)
    has3 = t.query.re_extract(_TAILS[3], 0) != ""
    present = tables.to_arrow(t.filter(t2 != "").select(r_tld=tld).distinct())["r_tld"].to_pylist()
    unknown = sorted(x for x in present if x not in tlds) if rules else []
    busy = sorted(x for x in present if x in tlds and x not in flat) if rules else sorted(present)
    out = t.mutate(r_tld=tld, r_t2=t2, r_has3=has3)
    tables_k: list[pa.Table] = []
    if unknown:
        tables_k.append(pa.table({"e_tld": pa.array(unknown, pa.string()), "e_k0": pa.array([0] * len(unknown))}))
    seen = pa.table({"r_t2": pa.array([], pa.string()), "r_has3": pa.array([], pa.bool_())})
    if busy:
        probe = keep_values(t.mutate(r_tld=tld), "r_tld", busy)
        probe = probe.select(r_t2=probe.query.re_extract(_TAILS[2], 0),
                             r_has3=probe.query.re_extract(_TAILS[3], 0) != "").distinct()
        seen = tables.to_arrow(probe)
    k, deep = k_of_tails(seen["r_t2"].combine_chunks(), seen["r_has3"].combine_chunks())
    exceptions = seen.append_column("r_k", pa.array(k, pa.int64())).filter(pa.array(~deep & (k != 2)))
    if unknown:
        ex = ibis.memtable(tables_k[0])
        out = out.left_join(ex, out.r_tld == ex.e_tld).drop("e_tld")
    if exceptions.num_rows:
        ex = ibis.memtable(exceptions.select(["r_t2", "r_has3", "r_k"]).rename_columns(["e_t2", "e_has3", "e_k"]))
        out = out.left_join(ex, [out.r_t2 == ex.e_t2, out.r_has3 == ex.e_has3]).drop("e_t2", "e_has3")
    deep_t2 = seen["r_t2"].filter(pa.array(deep)).to_pylist()
    if deep_t2:  # names under suffixes with deeper rules: one by one
        names = tables.to_arrow(keep_values(t.mutate(r_t2=t2), "r_t2", deep_t2).select("query").distinct())
        names_l = names["query"].to_pylist()
        nt = ibis.memtable(pa.table({"n_query": pa.array(names_l, pa.string()),
                                     "n_k": pa.array([labels_of(x) for x in names_l], pa.int64())}))
        out = out.left_join(nt, out.query == nt.n_query).drop("n_query")
    kexpr: ir.IntegerValue = ibis.literal(2)
    for col in ("e_k", "n_k", "e_k0"):  # later wins: a name's own entry over its last two labels
        if col in out.columns:
            kexpr = out[col].fill_null(kexpr)
    out = out.mutate(r_k=kexpr)
    tail = {n: out.query.re_extract(_TAILS[n], 0) for n in (3, 4, 5)}
    reg = ibis.cases((out.r_k == 2, out.r_t2), *((out.r_k == n, tail[n]) for n in (3, 4, 5)), else_=ibis.literal(""))
    keep = [c for c in out.columns if c not in ("r_tld", "r_t2", "r_has3", "r_k", "e_k", "n_k", "e_k0")]
    return out.mutate(reg=reg).select(*keep, "reg")


def tld_of(query: ir.StringValue) -> ir.StringValue:
    return query.re_extract(_T1, 0)


ISIN_MAX = 200  # longer literal lists are slow to evaluate in DuckDB: join a small table instead


def keep_values(t: ir.Table, column: str, values: list[str]) -> ir.Table:
    """Rows of `t` whose `column` is one of `values`."""
    if len(values) <= ISIN_MAX:
        return t.filter(t[column].isin(values))
    keys = ibis.memtable(pa.table({"k_value": pa.array(sorted(set(values)), pa.string())}))
    return t.join(keys, t[column] == keys.k_value).drop("k_value")
