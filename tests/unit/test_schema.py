import json
from datetime import datetime

import numpy as np
import pyarrow as pa
import pytest

from bothunt.schema import CONN_SCHEMA, DNS_SCHEMA, Finding, conform, finding_id, sort_findings


def test_conform_adds_missing_columns_orders_and_casts_naive_time_to_utc():
    raw = pa.table({"dst_port": pa.array([443], pa.int64()), "src_ip": ["10.0.0.1"], "extra": [1],
                    "ts": pa.array([datetime(2026, 1, 1, 12)], pa.timestamp("ns"))})
    out = conform(raw, "conn")
    assert out.schema == CONN_SCHEMA
    assert out["dst_port"].type == pa.int32()
    assert out["ts"].to_pylist()[0].isoformat() == "2026-01-01T12:00:00+00:00"
    assert out["bytes_out"].null_count == 1
    assert "extra" not in out.column_names


def test_conform_dns_keeps_lists():
    raw = pa.table({"query": ["a.example"], "answers": [["1.2.3.4", "5.6.7.8"]], "ttls": [[60.0, 60.0]]})
    out = conform(raw, "dns")
    assert out.schema == DNS_SCHEMA
    assert out["answers"].to_pylist() == [["1.2.3.4", "5.6.7.8"]]


def _finding(**kw):
    base = dict(detection="beacon", title="t", severity="high", score=0.9, first_seen="2026-01-01T00:00:00Z",
                last_seen="2026-01-02T00:00:00Z", explanation="e", host="ws1", dst_ip="1.2.3.4", dst_port=443)
    base.update(kw)
    return Finding(**base)


def test_finding_id_is_stable_and_depends_on_entities():
    a, b = _finding(), _finding(score=0.5, title="other")
    assert a.id == b.id == finding_id("beacon", "ws1", None, None, "1.2.3.4", 443, None)
    assert _finding(dst_port=8443).id != a.id


def test_finding_validates_severity_score_and_techniques():
    with pytest.raises(ValueError):
        _finding(severity="urgent")
    with pytest.raises(ValueError):
        _finding(score=1.5)
    with pytest.raises(ValueError):
        _finding(techniques=("T1071",))


def test_to_dict_is_json_native_with_numpy_and_nan_evidence():
    f = _finding(evidence={"n": np.int64(3), "arr": np.array([1.5, 2.0]), "nan": float("nan"),
                           "when": datetime(2026, 1, 1)})
    d = json.loads(json.dumps(f.to_dict()))
    assert d["evidence"] == {"n": 3, "arr": [1.5, 2.0], "nan": None, "when": "2026-01-01T00:00:00Z"}
    assert next(iter(d)) == "id" and d["techniques"] == ["T1583.005"]
    assert Finding.from_dict(d).id == f.id


def test_sort_findings_by_severity_then_score():
    fs = [_finding(severity="low", score=0.9, host="a"), _finding(severity="high", score=0.5, host="b"),
          _finding(severity="high", score=0.7, host="c")]
    assert [f.host for f in sort_findings(fs)] == ["c", "b", "a"]
