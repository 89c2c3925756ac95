"""_UidIndex: the uid -> names-row lookup that names conn batches (built once, binary-searched per batch)."""

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from bothunt.sources.zeek_join import _UidIndex


def test_finds_exact_uids_only():
    names = pa.chunked_array([["Cabc", "Cz"], ["Cabcdef", "Cq\u00e9x"]])
    found = _UidIndex(names).find(pa.array(["Cz", "Cabc", "nope", None, "Cabcdefgh", "Cabcdef", "Cq\u00e9x", "C",
                                            "Cab"]))
    # a prefix, a longer uid that starts with a known one, and a missing one all find nothing
    assert found.to_pylist() == [1, 0, None, None, None, 2, 3, None, None]


def test_agrees_with_index_in_on_many_random_uids():
    rng = np.random.default_rng(3)
    alphabet = np.array(list("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"))
    def uids(n):
        return pa.array(["C" + "".join(rng.choice(alphabet, rng.integers(4, 18))) for _ in range(n)])
    known = uids(3000)
    queries = pa.concat_arrays([known.take(pa.array(rng.integers(0, 3000, 2000))), uids(2000)])
    assert _UidIndex(known).find(queries).to_pylist() == pc.index_in(queries, value_set=known).to_pylist()
