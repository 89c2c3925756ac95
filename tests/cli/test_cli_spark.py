"""`hunt --engine spark` through the installed entry point, in its own process as a user runs it."""

import json
import subprocess
import sys

import pytest

RITA = "zeek/rita-proxy"


@pytest.mark.spark
@pytest.mark.slow
def test_spark_engine_gives_duckdbs_findings_and_keeps_stderr_quiet(shared_data, tmp_path):
    def hunt(engine: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "bothunt", "hunt", str(shared_data / RITA), "--engine", engine,
                               "--format", "jsonl", "--only", "beacon", "-q"], capture_output=True, text=True,
                              cwd=tmp_path, timeout=600)

    spark, duck = hunt("spark"), hunt("duckdb")
    assert spark.returncode == duck.returncode == 0, spark.stderr[-2000:]
    found = [json.loads(x) for x in spark.stdout.splitlines()]
    assert [(f["detection"], f["domain"], f["src_ip"]) for f in found] == [
        ("beacon", "www.honestimnotevil.com", "10.136.0.18")]
    assert found == [json.loads(x) for x in duck.stdout.splitlines()]
    # Spark's log4j banner, default-level notice and INFO/WARN lines would bury a -q run's stderr.
    for noise in ("log4j", "Setting default log level", "NativeCodeLoader", " WARN ", " INFO "):
        assert noise not in spark.stderr, spark.stderr
