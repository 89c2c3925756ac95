"""Shared fixtures: where the third-party data lives, and one engine fixture over DuckDB and Spark."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"


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
