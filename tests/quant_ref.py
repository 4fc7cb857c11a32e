# SPDX-License-Identifier: MIT
# quant_ref.py: libcck's dequantization (and reference quantization) against gguf-py, bit for bit.
"""Usage: quant_ref.py T_DEQUANT [--models DIR] [--smollm2 FILE]

(a) random blocks of every type gguf.quants dequantizes (random quant bytes, random finite f16 scales,
    plus blocks with NaN and Inf scales): gguf.quants.dequantize vs `T_DEQUANT TYPE`, compared bit
    for bit on the uint32 views (two NaNs count as equal: their payloads may differ after arithmetic).
(a') random floats quantized by gguf.quants.quantize vs `T_DEQUANT -q TYPE` for the types gguf-py
    quantizes like ggml's reference code (q4_0 q4_1 q5_0 q5_1 q8_0 bf16 f16): the bytes must be equal.
(b) every tensor of every GGUF model under DIR, and of the SmolLM2 file: same comparison as (a).
Prints one line per type and data set; exits 1 on any mismatch.
"""
import os
import subprocess
import sys

import numpy as np
import gguf
from gguf import GGMLQuantizationType as T
from gguf.quants import dequantize, quantize

# The types we compare, with the byte offsets of their f16 scale fields in a block.
F16_FIELDS = {
    T.Q4_0: [0], T.Q4_1: [0, 2], T.Q5_0: [0], T.Q5_1: [0, 2], T.Q8_0: [0],
    T.Q2_K: [80, 82], T.Q3_K: [108], T.Q4_K: [0, 2], T.Q5_K: [0, 2], T.Q6_K: [208],
}
TYPES = [T.F32, T.F16, T.BF16] + list(F16_FIELDS)
QUANT_TYPES = [T.Q4_0, T.Q4_1, T.Q5_0, T.Q5_1, T.Q8_0, T.BF16, T.F16]

failures = 0


def run_tool(tool, args, data):
    p = subprocess.run([tool] + args, input=data, stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=False)
    if p.returncode != 0:
        raise RuntimeError(f"{tool} {' '.join(args)}: exit {p.returncode}: {p.stderr.decode(errors='replace')}")
    return p.stdout


def dequant_mismatches(tool, qtype, raw):
    """Dequantizes raw (uint8) both ways; returns (elements, mismatching elements, first mismatch text)."""
    with np.errstate(all="ignore"):  # NaN / Inf scales
        ref = np.ascontiguousarray(dequantize(raw, qtype), dtype=np.float32).reshape(-1)
    ours = np.frombuffer(run_tool(tool, [qtype.name.lower()], raw.tobytes()), dtype="<f4")
    if ours.size != ref.size:
        return ref.size, ref.size, f"{ours.size} elements, expected {ref.size}"
    bad = (ref.view(np.uint32) != ours.view(np.uint32)) & ~(np.isnan(ref) & np.isnan(ours))
    nbad = int(np.count_nonzero(bad))
    first = ""
    if nbad:
        i = int(np.flatnonzero(bad)[0])
        first = (f"first at element {i}: gguf {ref[i]!r} (0x{ref.view(np.uint32)[i]:08x}), "
                 f"ours {ours[i]!r} (0x{ours.view(np.uint32)[i]:08x})")
    return ref.size, nbad, first


def report(label, qtype, elems, nbad, first):
    global failures
    block = gguf.GGML_QUANT_SIZES[qtype][0]
    print(f"{'ok  ' if nbad == 0 else 'FAIL'} {label:>34} {qtype.name:5}: {elems // block:9} blocks, {nbad} mismatches")
    if nbad:
        print(f"     {first}")
        failures += 1


def compare_dequant(tool, qtype, raw, label):
    report(label, qtype, *dequant_mismatches(tool, qtype, raw))


def random_f16(rng, n):
    """Finite halves over the whole range: normal, subnormal, zero, both signs."""
    bits = rng.integers(0, 0x7c00, size=n, dtype=np.uint16)  # exponent < 31: finite
    bits |= (rng.integers(0, 2, size=n, dtype=np.uint16) << 15).astype(np.uint16)
    mag = (rng.standard_normal(n) * 10.0 ** rng.uniform(-4, 2, n)).astype(np.float16).view(np.uint16)
    pick = rng.integers(0, 2, size=n).astype(bool)  # half raw bits, half "typical" scales
    out = np.where(pick, bits, mag).astype(np.uint16)
    out[np.isinf(out.view(np.float16))] = 0x3c00
    return out


def random_blocks(rng, qtype, nblocks, special=None):
    """nblocks random blocks of qtype (uint8, flat). special: an f16 value (NaN, Inf) for every scale field."""
    block, size = gguf.GGML_QUANT_SIZES[qtype]
    if qtype == T.F32:
        v = (rng.standard_normal(nblocks) * 10.0 ** rng.uniform(-30, 30, nblocks)).astype(np.float32)
        if special is not None:
            v[::3] = special
        return v.view(np.uint8)
    if qtype in (T.F16, T.BF16):
        if qtype == T.F16:
            v = random_f16(rng, nblocks)
        else:
            v = rng.integers(0, 0x10000, size=nblocks, dtype=np.uint16)  # every bf16, NaN and Inf included
        if special is not None:
            v[::3] = np.array([special], dtype=np.float16).view(np.uint16)[0] if qtype == T.F16 else \
                np.array([special], dtype=np.float32).view(np.uint32)[0] >> 16
        return v.view(np.uint8)
    raw = rng.integers(0, 256, size=(nblocks, size), dtype=np.uint8)
    for off in F16_FIELDS[qtype]:
        if special is None:
            h = random_f16(rng, nblocks)
        else:
            h = np.full(nblocks, np.array([special], dtype=np.float16).view(np.uint16)[0], dtype=np.uint16)
        raw[:, off:off + 2] = h.view(np.uint8).reshape(nblocks, 2)
    return raw.reshape(-1)


def random_floats(rng, nblocks, block):
    """Rows of blocks with scales from 1e-3 to 1e3, one block of zeros, one constant block, outliers."""
    x = rng.standard_normal((nblocks, block)) * 10.0 ** rng.uniform(-3, 3, (nblocks, 1))
    x[0] = 0.0
    x[1] = 0.5
    x[2, 5] *= 100.0
    x[3] = np.abs(x[3]) + 1.0  # all positive (min > 0)
    return x.astype(np.float32).reshape(-1)


def check_random(tool):
    rng = np.random.default_rng(20240605)
    for qtype in TYPES:
        block = gguf.GGML_QUANT_SIZES[qtype][0]
        nblocks = 4096 if block == 32 else 1024
        if qtype in (T.F32, T.F16, T.BF16):
            nblocks = 1 << 16
        compare_dequant(tool, qtype, random_blocks(rng, qtype, nblocks), "random")
        for special, name in ((np.nan, "NaN"), (np.inf, "Inf"), (-np.inf, "-Inf")):
            compare_dequant(tool, qtype, random_blocks(rng, qtype, 64, special), f"random, {name} scales")


def check_quantize(tool):
    global failures
    rng = np.random.default_rng(7)
    for qtype in QUANT_TYPES:
        block, size = gguf.GGML_QUANT_SIZES[qtype]
        nblocks = 4096 if block == 32 else 1 << 16
        x = random_floats(rng, nblocks // block if block == 1 else nblocks, 32 if block == 1 else block)
        if qtype == T.F16:
            x = x[np.abs(x) < 60000]  # numpy and we both round to nearest even; no overflow or NaN here
        ref = np.ascontiguousarray(quantize(x, qtype)).view(np.uint8).reshape(-1)
        ours = np.frombuffer(run_tool(tool, ["-q", qtype.name.lower()], x.tobytes()), dtype=np.uint8)
        nbl = x.size // block
        bad = int(np.count_nonzero(np.any(ref.reshape(nbl, size) != ours.reshape(nbl, size), axis=1))) \
            if ours.size == ref.size else nbl
        print(f"{'ok  ' if bad == 0 else 'FAIL'} {'quantize':>24} {qtype.name:5}: {nbl:9} blocks, "
              f"{bad} mismatching blocks")
        failures += bad != 0


CHUNK = 1 << 24  # bytes of tensor data per t_dequant run: bounds the memory the comparison takes


def check_model(tool, path, label):
    try:
        reader = gguf.GGUFReader(path)
    except Exception as e:  # e.g. an old GGUF version gguf-py refuses
        print(f"skip {label}: gguf-py cannot read it ({e})")
        return
    tensors = [t for t in reader.tensors if t.tensor_type in TYPES]
    skipped = len(reader.tensors) - len(tensors)
    for qtype in sorted({t.tensor_type for t in tensors}):
        parts, size, elems, nbad, first, count = [], 0, 0, 0, "", 0
        for t in [t for t in tensors if t.tensor_type == qtype] + [None]:
            if t is not None:
                parts.append(np.ascontiguousarray(t.data).view(np.uint8).reshape(-1))
                size += parts[-1].size
                count += 1
            if parts and (t is None or size >= CHUNK):
                e, b, f = dequant_mismatches(tool, qtype, np.concatenate(parts))
                elems, nbad, first = elems + e, nbad + b, first or f
                parts, size = [], 0
        report(f"{label} ({count} tensors)", qtype, elems, nbad, first)
    if skipped:
        print(f"note {label}: {skipped} tensors of types not compared")


def main():
    args = sys.argv[1:]
    if not args:
        print(__doc__)
        return 2
    tool = args[0]
    opts = dict(zip(args[1::2], args[2::2]))
    check_random(tool)
    check_quantize(tool)
    models = opts.get("--models")
    if models and os.path.isdir(models):
        for root, _, files in sorted(os.walk(models)):
            for f in sorted(files):
                if f.endswith(".gguf"):
                    check_model(tool, os.path.join(root, f), os.path.relpath(os.path.join(root, f), models))
    else:
        print(f"note: no model directory ({models}): models not compared")
    smol = opts.get("--smollm2")
    if smol and os.path.isfile(smol):
        check_model(tool, smol, os.path.basename(smol).replace(".gguf", ""))
    else:
        print(f"note: no SmolLM2 file ({smol}): not compared")
    print("quant_ref: " + ("all equal" if not failures else f"{failures} FAILED comparisons"))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
