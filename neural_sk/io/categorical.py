"""Categorical node attributes as one small integer per node and a table once per archive.

A report graph's node is one of a few hundred findings at most: a concept (``node_names``,
and its one-hot block of ``x``), a status (``node_status`` and its block of ``x``) and a kind
(``node_kind``). Stored per node, that is a name and a row of bits; stored as a code into a
table of the distinct (x, name, status, kind) combinations seen in the archive, it is one
byte per node plus the table (the vocabulary) once. The code is exact: every attribute is
read back from the table row it names.

The coding is tried on any graph field whose node attributes are categorical like this, and
kept only when it is smaller than storing the attributes as they are.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..graphs import GraphList

__all__ = ["CATEGORICAL_KEYS", "Coded", "code_nodes"]

#: Node attributes considered for the coding (the report graphs' finding descriptors).
CATEGORICAL_KEYS = ("x", "node_names", "node_status", "node_kind")
# More distinct combinations than this and the table would outweigh the codes.
_MAX_CODES = 1 << 16


@dataclass
class Coded:
    """The coding of a graph field's categorical node attributes."""

    keys: list[str]            # attributes coded, in the graphs' order
    codes: np.ndarray          # [N] int64, the table row of every node
    counts: np.ndarray         # [n] nodes per graph
    rows: np.ndarray           # [C] index of one node holding each code (its table row)
    names: list[str] = field(default_factory=list)  # node_names of each code, when coded


def _node_names(graphs: GraphList, counts: np.ndarray) -> np.ndarray | None:
    """Every node's name as one flat array, when every graph names each of its nodes."""
    values, ptr = graphs.flat("node_names")
    if ptr is not None:
        return None
    flat: list[str] = []
    for names, count in zip(values, counts):
        if not isinstance(names, (list, tuple)) or len(names) != count or not all(
                isinstance(s, str) for s in names):
            return None
        flat.extend(names)
    return np.array(flat, dtype=object)


def _rows_codes(values: np.ndarray) -> tuple[np.ndarray, int]:
    """Code of each row of a numeric array (equal rows, equal codes), and the row bytes."""
    rows = np.ascontiguousarray(values.reshape(len(values), -1))
    if rows.dtype.kind == "f" and not np.isfinite(rows).all():
        return np.arange(len(rows)), rows.nbytes  # NaN rows: not categorical
    view = rows.view(np.dtype((np.void, rows.dtype.itemsize * rows.shape[1])))
    _, inverse = np.unique(view.reshape(-1), return_inverse=True)
    return inverse.reshape(-1), rows.nbytes


def code_nodes(graphs: GraphList) -> Coded | None:
    """The coding of ``graphs``' categorical node attributes, or None when it saves nothing.

    Only attributes held one row per node (``x``'s offsets) take part, ``x`` only when it
    is one-hot (zeros and ones: the report graphs'); the coding is kept
    when one code per node plus the table is smaller than the attributes' own bytes.
    """
    if (len(graphs) == 0 or "x" not in graphs.keys or graphs.flat("x")[1] is None
            or not set(CATEGORICAL_KEYS[1:]) & set(graphs.keys)):
        return None  # no descriptor besides x: nothing categorical to code
    node_ptr = graphs.flat("x")[1]
    counts = np.diff(node_ptr)
    total = int(node_ptr[-1])
    if total == 0:
        return None
    keys, codes, stored, names = [], [], 0, None
    for key in graphs.keys:
        if key not in CATEGORICAL_KEYS:
            continue
        values, ptr = graphs.flat(key)
        if key == "node_names":
            names = _node_names(graphs, counts)
            if names is None:
                continue
            _, inverse = np.unique(names.astype(str), return_inverse=True)
            code, size = inverse.reshape(-1), sum(len(s.encode()) for s in names)
        elif ptr is not None and np.array_equal(ptr, node_ptr):
            values = np.asarray(values)
            if values.dtype.kind not in "biuf":
                continue
            if key == "x" and not np.isin(values, (0, 1)).all():
                continue  # real-valued features: stored at the feature dtype, not coded
            code, size = _rows_codes(values)
        else:
            continue
        keys.append(key)
        codes.append(code)
        stored += size
    if not keys:
        return None
    joint, first, inverse = np.unique(np.stack(codes, axis=1), axis=0, return_index=True,
                                      return_inverse=True)
    n_codes = len(joint)
    code_bytes = total * (1 if n_codes <= 256 else 2)
    # The table costs each coded attribute's row once per code; rough, but on the safe side.
    table_bytes = n_codes * max(1, stored // total)
    if n_codes > _MAX_CODES or code_bytes + table_bytes >= stored:
        return None
    return Coded(keys=keys, codes=inverse.reshape(-1).astype(np.int64), counts=counts,
                 rows=first.astype(np.int64),
                 names=[] if names is None or "node_names" not in keys
                 else [str(names[i]) for i in first])
