"""IP-to-ASN range tables in text form.

Layouts, told from the first data line:

- ``iptoasn-tsv``: the public-domain iptoasn.com files (``ip2asn-v4.tsv``, ``ip2asn-v6.tsv``,
  ``ip2asn-combined.tsv``, plain or gzip): ``range_start  range_end  AS_number  country_code
  AS_description``, tab-separated, inclusive ranges. ASN 0 ("Not routed") rows carry no owner and
  are skipped. ``ip2asn-v4-u32.tsv`` (starts and ends as integers) reads the same way.
- ``asn-csv``: comma-separated ``start,end,asn,organisation`` (DB-IP ASN Lite CSV and the
  ip-location-db ``asn-*.csv`` files); a header line is skipped.

Every address column is parsed vectorised for IPv4; IPv6 rows are parsed one by one at load time.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from bothunt.errors import ConfigError
from bothunt.netclass.layouts import SourceInfo, dated, head_lines, is_gzip, require_file
from bothunt.netclass.ranges import U64, RangeSpec, v4_keys, v6_bytes

_NO_COUNTRY = ("", "None", "none", "ZZ", "--")


@dataclass
class AsnRows:
    """Ranges with local payload rows into asn / names / countries."""

    v4: RangeSpec
    v6: RangeSpec
    asn: np.ndarray  # int64
    names: pa.Array
    countries: pa.Array
    info: SourceInfo


def _is_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _sniff(path: Path) -> tuple[str, str, bool]:
    lines = head_lines(path, 2)
    if not lines:
        raise ConfigError(f"{path}: empty IP-to-ASN file")
    first = lines[0]
    if first.count("\t") >= 3:
        return "iptoasn-tsv", "\t", False
    if first.count(",") >= 3:
        field = first.split(",", 1)[0].strip().strip('"')
        return "asn-csv", ",", not (field.isdigit() or _is_address(field))
    raise ConfigError(f"{path}: not an IP-to-ASN table (expected the iptoasn TSV layout "
                      "'start<TAB>end<TAB>asn<TAB>country<TAB>description' "
                      "or CSV 'start,end,asn,organisation')")


def _read(path: Path, delimiter: str, header: bool, names: list[str]) -> tuple[pa.Table, int]:
    bad = [0]

    def skip(_row: object) -> str:
        bad[0] += 1
        return "skip"

    stream = pa.input_stream(str(path), compression="gzip" if is_gzip(path) else None)
    table = pacsv.read_csv(
        stream,
        read_options=pacsv.ReadOptions(column_names=names, skip_rows=1 if header else 0),
        parse_options=pacsv.ParseOptions(delimiter=delimiter, quote_char=False if delimiter == "\t" else '"',
                                         invalid_row_handler=skip),
        convert_options=pacsv.ConvertOptions(column_types={n: pa.string() for n in names}),
    )
    return table, bad[0]


def _addresses(col: pa.Array) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """family (0/4/6), hi, lo per row: dotted quads and integers vectorised, IPv6 text per row."""
    col = pc.utf8_trim_whitespace(col)
    n = len(col)
    hi, lo = np.zeros(n, U64), np.zeros(n, U64)
    lo4, ok4 = v4_keys(col)
    lo[ok4] = lo4[ok4]
    family = np.where(ok4, 4, 0).astype(np.int8)
    if ok4.all():
        return family, hi, lo
    digits = pc.utf8_is_digit(col).fill_null(False).to_numpy(zero_copy_only=False)
    short = digits & (pc.utf8_length(col).fill_null(0).to_numpy(zero_copy_only=False) <= 10)
    if short.any():
        nums = pc.cast(col.filter(pa.array(short)), pa.uint64()).to_numpy()
        fits = nums <= 0xFFFFFFFF
        rows = np.flatnonzero(short)
        lo[rows[fits]] = nums[fits]
        family[rows[fits]] = 4
    rest = np.flatnonzero((family == 0) & pc.is_valid(col).to_numpy(zero_copy_only=False))
    for row, text in zip(rest.tolist(), col.take(pa.array(rest, pa.int64())).to_pylist(), strict=True):
        value: int | None
        if text.isdigit():
            value = int(text)
            value = value if value < 1 << 128 else None
        else:
            raw = v6_bytes(text)
            value = None if raw is None else int.from_bytes(raw, "big")
        if value is not None:
            hi[row], lo[row], family[row] = value >> 64, value & ((1 << 64) - 1), 6
    return family, hi, lo


def load_asn_table(path: Path, max_age_days: int) -> AsnRows:
    require_file(path, "IP-to-ASN")
    layout, delimiter, header = _sniff(path)
    names = ["start", "end", "asn", "country", "name"] if layout == "iptoasn-tsv" else [
        "start", "end", "asn", "name"]
    table, bad = _read(path, delimiter, header, names)
    table = table.combine_chunks()
    fs, shi, slo = _addresses(table["start"].combine_chunks())
    fe, ehi, elo = _addresses(table["end"].combine_chunks())
    asn_text = pc.utf8_ltrim(pc.utf8_trim_whitespace(table["asn"].combine_chunks()), "ASas")
    asn_ok = pc.utf8_is_digit(asn_text).fill_null(False).to_numpy(zero_copy_only=False)
    asn = np.zeros(len(table), np.int64)
    if asn_ok.any():
        asn[asn_ok] = pc.cast(asn_text.filter(pa.array(asn_ok)), pa.int64()).to_numpy()
    parsed = (fs > 0) & (fs == fe) & asn_ok
    routed = parsed & (asn > 0)
    keep = pa.array(routed)
    if "country" in table.column_names:
        country = pc.utf8_trim_whitespace(table["country"].combine_chunks())
        country = pc.if_else(pc.is_in(country, pa.array(_NO_COUNTRY)), pa.scalar(None, pa.string()), country)
    else:
        country = pa.nulls(len(table), pa.string())
    name = pc.utf8_trim_whitespace(table["name"].combine_chunks())
    name = pc.if_else(pc.equal(name, ""), pa.scalar(None, pa.string()), name)
    rows = np.flatnonzero(routed)
    payload = np.arange(len(rows), dtype=np.int64)
    is4 = fs[rows] == 4
    specs = []
    for mask in (is4, ~is4):
        sel = rows[mask]
        specs.append(RangeSpec(shi[sel], slo[sel], ehi[sel], elo[sel], payload[mask],
                               np.zeros(len(sel), np.int64)))
    date, date_from = dated(path, None, "")
    rejected = bad + int((~parsed).sum())
    info = SourceInfo(str(path), "asn", layout, len(rows), rejected, date, date_from, max_age_days)
    return AsnRows(specs[0], specs[1], asn[rows], name.filter(keep), country.filter(keep), info)
