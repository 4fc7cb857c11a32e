# SPDX-License-Identifier: MIT
# gguf_show_ref.py: checks a GGUF header's JSON view (ccm_gguf_json, `ccctl show --json`) against gguf.GGUFReader.
#
#   gguf_show_ref.py MODEL.gguf [JSON_FILE|-] [--max-array N]
#
# Reads the JSON from the file or stdin (default). Exit 0 if everything matches, 1 with the differences listed,
# 77 if numpy or the gguf package is missing.
import json
import math
import os
import sys

try:
    import numpy as np
    import gguf
except ImportError as e:
    print(f"gguf_show_ref.py: skip: {e} (use the venv python with numpy and gguf)", file=sys.stderr)
    sys.exit(77)

VT = gguf.GGUFValueType
VNAMES = {VT.UINT8: "u8", VT.INT8: "i8", VT.UINT16: "u16", VT.INT16: "i16", VT.UINT32: "u32", VT.INT32: "i32",
          VT.FLOAT32: "f32", VT.BOOL: "bool", VT.STRING: "string", VT.ARRAY: "array", VT.UINT64: "u64",
          VT.INT64: "i64", VT.FLOAT64: "f64"}


def no_constants(name):
    raise ValueError(f"non-standard JSON constant {name}")


def same_scalar(vt, want, got):
    """want: the reader's value (numpy scalar, bytes or bool); got: the JSON value."""
    if vt == VT.STRING:
        return isinstance(got, str) and got == bytes(want).decode("utf-8", errors="replace")
    if vt == VT.BOOL:
        return isinstance(got, bool) and got == bool(want)
    if vt in (VT.FLOAT32, VT.FLOAT64):
        w = float(want)
        if not math.isfinite(w):
            return got is None
        if isinstance(got, bool) or not isinstance(got, (int, float)):
            return False
        if vt == VT.FLOAT32:
            return np.float32(got) == np.float32(w)
        return float(got) == w
    return isinstance(got, int) and not isinstance(got, bool) and got == int(want)


def field_values(field):
    """(value type, element type or None, list of raw values)."""
    vt = field.types[0]
    if vt == VT.ARRAY:
        et = field.types[1] if len(field.types) > 1 else None
        return vt, et, [field.parts[i] for i in field.data]
    return vt, None, [field.parts[field.data[0]]]


def raw_scalar(vt, part):
    if vt == VT.STRING:
        return bytes(part)
    return part[0]


def main(argv):
    args = [a for a in argv[1:]]
    max_array = None
    if "--max-array" in args:
        i = args.index("--max-array")
        max_array = int(args[i + 1])
        del args[i:i + 2]
    if len(args) not in (1, 2):
        print(__doc__ or "usage: gguf_show_ref.py MODEL.gguf [JSON_FILE|-] [--max-array N]", file=sys.stderr)
        return 2
    model = args[0]
    src = args[1] if len(args) == 2 else "-"
    text = sys.stdin.read() if src == "-" else open(src, encoding="utf-8").read()
    try:
        doc = json.loads(text, parse_constant=no_constants)
    except ValueError as e:
        print(f"{model}: invalid JSON: {e}")
        return 1
    errors = []

    def check(cond, msg):
        if not cond:
            errors.append(msg)

    r = gguf.GGUFReader(model)
    fields = [(k, f) for k, f in r.fields.items() if not k.startswith("GGUF.")]
    version = int(r.fields["GGUF.version"].parts[-1][0])
    want_top = {
        "version": version,
        "alignment": int(r.alignment),
        "data_offset": int(r.data_offset),
        "file_size": os.path.getsize(model),
        "kv_count": len(fields),
        "tensor_count": len(r.tensors),
        "data_size": max((int(t.data_offset) - int(r.data_offset) + int(t.n_bytes) for t in r.tensors), default=0),
    }
    for k, v in want_top.items():
        check(doc.get(k) == v, f"{k}: json {doc.get(k)!r}, gguf {v!r}")

    meta = doc.get("metadata")
    check(isinstance(meta, dict), "metadata is not an object")
    meta = meta if isinstance(meta, dict) else {}
    check(list(meta.keys()) == [k for k, _ in fields],
          f"metadata keys (in order) differ: json {list(meta.keys())[:8]}..., gguf {[k for k, _ in fields][:8]}...")
    for key, field in fields:
        if key not in meta:
            continue
        got = meta[key]
        vt, et, parts = field_values(field)
        if vt != VT.ARRAY:
            check(same_scalar(vt, raw_scalar(vt, parts[0]), got), f"metadata {key!r}: json {got!r}, gguf "
                  f"{raw_scalar(vt, parts[0])!r} ({VNAMES[vt]})")
            continue
        n = len(parts)
        if isinstance(got, dict):
            check(got.get("array") == VNAMES.get(et, "?") and got.get("count") == n,
                  f"metadata {key!r}: json {got!r}, gguf array of {n} {VNAMES.get(et, '?')}")
            check(max_array is None or n > max_array, f"metadata {key!r}: {n} elements summarized, max {max_array}")
            continue
        if not isinstance(got, list) or len(got) != n:
            errors.append(f"metadata {key!r}: json {str(got)[:80]}, gguf array of {n} {VNAMES.get(et, '?')}")
            continue
        check(max_array is None or n <= max_array, f"metadata {key!r}: {n} elements inline, max {max_array}")
        bad = [i for i in range(n) if not same_scalar(et, raw_scalar(et, parts[i]), got[i])]
        check(not bad, f"metadata {key!r}: {len(bad)} elements differ, first [{bad[0] if bad else 0}]")

    counts = {}
    for t in r.tensors:
        name = t.tensor_type.name.lower()
        counts[name] = counts.get(name, 0) + 1
    check(doc.get("tensor_types") == counts, f"tensor_types: json {doc.get('tensor_types')}, gguf {counts}")
    tt = list((doc.get("tensor_types") or {}).values())
    check(tt == sorted(tt, reverse=True), f"tensor_types not most frequent first: {doc.get('tensor_types')}")

    tensors = doc.get("tensors")
    check(isinstance(tensors, list) and len(tensors) == len(r.tensors),
          f"tensors: json {len(tensors) if isinstance(tensors, list) else tensors!r}, gguf {len(r.tensors)}")
    for i, (jt, t) in enumerate(zip(tensors if isinstance(tensors, list) else [], r.tensors)):
        want = {
            "name": t.name,
            "type": t.tensor_type.name.lower(),
            "shape": [int(x) for x in t.shape],
            "offset": int(t.data_offset) - int(r.data_offset),
            "bytes": int(t.n_bytes),
        }
        if jt != want:
            errors.append(f"tensor {i}: json {jt}, gguf {want}")
    if errors:
        print(f"{model}: {len(errors)} differences:")
        for e in errors[:40]:
            print("  " + e)
        return 1
    print(f"{model}: ok: version {version}, {len(fields)} kvs, {len(r.tensors)} tensors ({counts}) match gguf")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
