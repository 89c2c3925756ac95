"""A consistent DNS world: every name has a fixed set of addresses and a TTL; a lookup at time t answers
a window of that set that rotates once per TTL epoch, and a connection to the name at time t goes to one
of the addresses answered at t. CDNs and NTP pools have many addresses per name and short TTLs, like
the real ones.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from bothunt.simulate import net
from bothunt.simulate.rand import ALNUM_LOWER, ragged_arange, random_strings, rng_for

POPULAR = (
    "www.google.com", "www.microsoft.com", "outlook.office365.com", "login.microsoftonline.com",
    "github.com", "en.wikipedia.org", "www.linkedin.com", "www.youtube.com", "www.amazon.com",
    "www.bbc.co.uk", "www.nytimes.com", "stackoverflow.com", "www.reddit.com", "docs.python.org",
    "www.salesforce.com", "zoom.us", "www.dropbox.com", "www.atlassian.com", "app.slack.com",
    "www.apple.com", "www.adobe.com", "edition.cnn.com", "www.theguardian.com", "news.ycombinator.com",
    "weather.com", "www.booking.com", "www.paypal.com", "www.ebay.com", "mail.google.com",
    "drive.google.com", "corp-example.sharepoint.com", "www.office.com", "www.bing.com", "duckduckgo.com",
)
THIRD_PARTY = (
    "fonts.gstatic.com", "fonts.googleapis.com", "www.googletagmanager.com", "www.google-analytics.com",
    "connect.facebook.net", "cdn.jsdelivr.net", "ajax.googleapis.com", "static.cloudflareinsights.com",
    "cdnjs.cloudflare.com", "js.hs-scripts.com", "cdn.cookielaw.org", "static.zdassets.com",
    "securepubads.g.doubleclick.net", "platform.twitter.com", "s.yimg.com", "assets.adobedtm.com",
)
WORDS = (
    "blue", "river", "stone", "garden", "market", "cloud", "north", "city", "green", "light", "open",
    "smart", "home", "travel", "food", "health", "tech", "daily", "world", "local", "media", "study",
    "bright", "silver", "forest", "ocean", "prime", "urban", "solid", "quick", "design", "craft", "data",
    "store", "shop", "news", "sport", "book", "music", "photo", "energy", "auto", "finance", "legal",
    "pet", "coffee", "kitchen", "family", "learn", "code", "build", "star", "peak", "wave", "field",
)
TLDS = ("com", "com", "com", "net", "org", "io", "de", "co.uk", "fr", "nl", "info")

# name -> (kind, pool, addresses, answers per lookup, ttl)
FIXED: dict[str, tuple[str, tuple[str, ...], int, int, int]] = {
    "settings-win.data.microsoft.com": ("telemetry", net.SERVICE_16, 4, 1, 300),
    "v10.events.data.microsoft.com": ("telemetry", net.SERVICE_16, 6, 1, 300),
    "time.windows.com": ("ntp", net.SERVICE_16, 2, 1, 900),
    "pool.ntp.org": ("ntp", net.CLIENT_16, 40, 4, 150),
    "slscr.update.microsoft.com": ("update", net.SERVICE_16, 4, 1, 600),
    "ctldl.windowsupdate.com": ("update", net.CDN_16, 12, 2, 60),
    "app.datadoghq.com": ("monitoring", net.SERVICE_16, 3, 1, 60),
    "collector.newrelic.com": ("monitoring", net.SERVICE_16, 4, 1, 300),
    "xyz83612.live.dynatrace.com": ("monitoring", net.SERVICE_16, 3, 1, 60),
    "presence.teams.microsoft.com": ("chat", net.SERVICE_16, 6, 1, 300),
    "wss-primary.slack.com": ("chat", net.SERVICE_16, 4, 1, 60),
    "licensing.flexnetoperations.com": ("licence", net.SERVICE_16, 1, 1, 3600),
    "f001.backblazeb2.com": ("backup", net.SERVICE_16, 2, 1, 3600),
    "api.partner-saas.com": ("origin", net.SERVICE_16, 2, 1, 300),
    "onedrive.live.com": ("sync", net.SERVICE_16, 4, 1, 300),
    # the organisation's own public names (used as SNI / Host on inbound traffic)
    "www.corp-example.com": ("org", net.SERVICE_16, 1, 1, 3600),
    "app.corp-example.com": ("org", net.SERVICE_16, 1, 1, 3600),
}


@dataclass
class DnsWorld:
    names: list[str] = field(default_factory=list)
    kinds: list[str] = field(default_factory=list)
    index: dict[str, int] = field(default_factory=dict)
    _addrs: list[np.ndarray] = field(default_factory=list)
    _meta: list[tuple[int, int, int]] = field(default_factory=list)  # (answers, ttl, step)
    groups: dict[str, np.ndarray] = field(default_factory=dict)
    frozen: bool = False

    def add(self, name: str, kind: str, addrs: np.ndarray, answers: int, ttl: int, step: int = 1) -> int:
        if self.frozen:
            raise RuntimeError("DNS world is frozen")
        if name in self.index:
            raise ValueError(f"duplicate name {name}")
        self.index[name] = len(self.names)
        self.names.append(name)
        self.kinds.append(kind)
        self._addrs.append(np.asarray(addrs, dtype=np.uint32))
        self._meta.append((min(answers, len(addrs)), ttl, step))
        return self.index[name]

    def freeze(self) -> None:
        n = np.asarray([a.size for a in self._addrs], dtype=np.int64)
        self.addr_n = n
        self.addr_off = np.concatenate([[0], np.cumsum(n)[:-1]]).astype(np.int64)
        self.addr = np.concatenate(self._addrs) if self._addrs else np.empty(0, np.uint32)
        self.addr_text = net.to_text(self.addr)
        meta = np.asarray(self._meta, dtype=np.int64).reshape(-1, 3)
        self.ans_m, self.ttl, self.step = meta[:, 0], meta[:, 1], meta[:, 2]
        self.names_arr = pa.array(self.names, pa.string())
        for kind in set(self.kinds):
            self.groups.setdefault(kind, np.flatnonzero(np.asarray(self.kinds) == kind))
        self.frozen = True

    # -- resolution ----------------------------------------------------------------------------------

    def _window_start(self, dom: np.ndarray, ts: np.ndarray) -> np.ndarray:
        epoch = np.floor(ts / self.ttl[dom]).astype(np.int64)
        return (epoch * self.step[dom]) % np.maximum(self.addr_n[dom], 1)

    def pick(self, rng: np.random.Generator, dom: np.ndarray, ts: np.ndarray) -> np.ndarray:
        """A destination address for each (name, time): one of the addresses answered at that time."""
        dom = np.asarray(dom, dtype=np.int64)
        start = self._window_start(dom, ts)
        r = (rng.random(dom.size) * self.ans_m[dom]).astype(np.int64)
        return self.addr[self.addr_off[dom] + (start + r) % self.addr_n[dom]]

    def answers(self, dom: np.ndarray, ts: np.ndarray, ok: np.ndarray) -> tuple[pa.Array, pa.Array]:
        """Answer and TTL lists for lookups; rows where `ok` is False (NXDOMAIN) get empty lists."""
        dom = np.asarray(dom, dtype=np.int64)
        m = np.where(ok, self.ans_m[dom], 0)
        offsets = np.concatenate([[0], np.cumsum(m)]).astype(np.int32)
        start = np.repeat(self._window_start(dom, ts), m)
        d = np.repeat(dom, m)
        flat = self.addr_off[d] + (start + ragged_arange(m)) % self.addr_n[d]
        values = self.addr_text.take(pa.array(flat))
        ttl_left = self.ttl[dom] - np.mod(ts, self.ttl[dom]).astype(np.int64)
        ttls = pa.array(np.repeat(ttl_left, m).astype(np.float64))
        off = pa.array(offsets)
        return pa.ListArray.from_arrays(off, values), pa.ListArray.from_arrays(off, ttls)


def _cdn_names(rng: np.random.Generator) -> list[tuple[str, int, int]]:
    """Random-looking CDN host names: (name, addresses, answers)."""
    out: list[tuple[str, int, int]] = []
    for s in random_strings(rng, 60, 13, ALNUM_LOWER[:36]).tolist():
        out.append((f"d{s.decode()}.cloudfront.net", 8, 4))
    codes = rng.choice(np.arange(1000, 99999), 40, replace=False)
    subs = ("a", "b", "dscb", "dsca", "dscx")
    for i, c in enumerate(codes.tolist()):
        out.append((f"e{c}.{subs[i % len(subs)]}.akamaiedge.net", 6, 2))
    for s in random_strings(rng, 20, 10, ALNUM_LOWER[:26]).tolist():
        out.append((f"{s.decode()}-prod.azureedge.net", 6, 2))
    return out


def build_world(seed: int, longtail: int = 1500) -> DnsWorld:
    rng = rng_for(seed, 2)
    w = DnsWorld()
    for name in POPULAR:
        w.add(name, "popular", net.draw(rng, net.SERVICE_16, 4), 2, int(rng.choice([60, 300, 3600])))
    for name in THIRD_PARTY:
        w.add(name, "thirdparty", net.draw(rng, net.SERVICE_16, 6), 2, 300)
    for name, n, m in _cdn_names(rng):
        w.add(name, "cdn", net.draw(rng, net.CDN_16, n), m, 60)
    seen: set[str] = set(w.index)
    while len(seen) < len(POPULAR) + len(THIRD_PARTY) + 120 + longtail:
        a, b = rng.choice(len(WORDS), 2, replace=False)
        tld = TLDS[rng.integers(len(TLDS))]
        name = f"www.{WORDS[a]}{WORDS[b]}.{tld}" if rng.random() < 0.6 else f"{WORDS[a]}-{WORDS[b]}.{tld}"
        if name not in seen:
            seen.add(name)
            w.add(name, "longtail", net.draw(rng, net.SERVICE_16, 1), 1, int(rng.choice([300, 3600, 86400])))
    for name, (kind, pool, n, m, ttl) in FIXED.items():
        w.add(name, kind, net.draw(rng, pool, n), m, ttl)
    return w
