"""Shared fixtures: where the third-party data lives, and one engine fixture over DuckDB and Spark."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"


def read_zeek_text(path: Path) -> list[dict[str, str]]:
    """A Zeek TSV log as dicts keyed by its #fields header, in plain Python: the tests' count of what a
    file holds, independent of bothunt's Zeek source. One capture starts with a stray tab before its
    header lines, hence the lstrip."""
    fields: list[str] = []
    rows = []
    for line in path.read_text().splitlines():
        head = line.lstrip()
        if head.startswith("#fields"):
            fields = head.split("\t")[1:]
        elif fields and line and not head.startswith("#"):
            rows.append(dict(zip(fields, line.split("\t"), strict=False)))
    return rows


@pytest.fixture(scope="session")
def zeek_rows():
    """`zeek_rows(path)`: the rows of a Zeek TSV log as dicts (see read_zeek_text)."""
    return read_zeek_text


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data beside the project; integration tests skip with a reason when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"third-party data not found at {SHARED_DATA} (integration test needs ../shared/data)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def spark_con():
    """One small local Spark session for the whole run: one core, one shuffle partition."""
    import os

    os.environ.setdefault("BOTHUNT_SPARK_MASTER", "local[1]")
    os.environ.setdefault("BOTHUNT_SPARK_PARTITIONS", "1")
    os.environ.setdefault("BOTHUNT_SPARK_DRIVER_MEMORY", "2g")
    from bothunt.engine import connect

    return connect("spark")


@pytest.fixture(params=[pytest.param("duckdb", marks=pytest.mark.duckdb),
                        pytest.param("spark", marks=[pytest.mark.spark, pytest.mark.slow])])
def engine_con(request):
    """(engine name, Ibis connection), parametrised over DuckDB and Spark: engine tests run on both."""
    if request.param == "spark":
        return "spark", request.getfixturevalue("spark_con")
    from bothunt.engine import connect

    return "duckdb", connect("duckdb")
