#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# Makes the llama.cpp reference data (tests/ref/<model-stem>.json) that the engine's tests compare against.
#
# How these files were made (see tests/ref/README.md):
#     ~/.cache/cc/venv/bin/python tests/ref/make_refs.py            # from the repository root
# with llama-cpp-python 0.3.36 (PyPI sdist, `pip install llama-cpp-python` compiled it for this CPU; it
# bundles ggml-org/llama.cpp@0c1e57098), CPU only, on an AMD EPYC; llama_print_system_info:
#   CPU : SSE3 = 1 | SSSE3 = 1 | AVX = 1 | AVX2 = 1 | F16C = 1 | FMA = 1 | BMI2 = 1 | AVX512 = 1 |
#         AVX512_VBMI = 1 | AVX512_VNNI = 1 | AVX512_BF16 = 1 | LLAMAFILE = 1 | OPENMP = 1 | REPACK = 1
# Settings (also written into each JSON's "settings"): n_ctx 512, n_batch 512, n_ubatch 512, one
# sequence, n_threads 2 (and 2 for batches), n_gpu_layers 0, KV cache f16, flash attention DISABLED
# (the Llama class default; llama.cpp's own CLI default "auto" enables it on CPU and changes the numbers),
# use_extra_bufts false (no CPU weight repacking; repacking changes Q4_0 results).
# Two runs give byte-identical files. The peer is not committed; `make check` only reads the JSON.
#
# Only the low-level llama_cpp bindings are used (no Llama class, no sampler): the prompt is one
# llama_decode batch, generation feeds one token per llama_decode, greedy = argmax of the returned
# float32 logits computed here (first index wins an exact tie, like llama.cpp's greedy sampler).
# Each greedy/logits prompt gets a fresh context (empty KV cache).
#
# Options: --models a,b (stems, default all), --out-dir DIR (default: this script's directory),
# --log FILE (all llama.cpp log lines; warnings and errors also go to stderr); for experiments only:
# --flash-attn auto|enabled (default disabled) and --extra-bufts (allow CPU weight repacking).
# Model paths: env CC_MODELS_DIR (default ../shared/models from the repository root, then
# /work/shared/models) and CC_SMOLLM2 (default ~/.cache/cc/models/SmolLM2-135M-Instruct.Q4_1.gguf).

import argparse
import ctypes
import json
import os
import sys

import numpy as np

import llama_cpp

# the llama.cpp commit each llama-cpp-python release bundles (from its CHANGELOG.md)
LLAMA_CPP_COMMITS = {"0.3.36": "0c1e57098"}

N_CTX = 512
N_BATCH = 512
N_UBATCH = 512
N_THREADS = 2
N_GEN = 48
FLASH_ATTN = "disabled"  # --flash-attn (experiments only; the committed files use "disabled")
EXTRA_BUFTS = False  # --extra-bufts (experiments only; the committed files use False)
TIE_EPS = 1e-3

STORIES_GREEDY = ["Once upon a time", "The little dog", "Lily and Tom went to the park", ""]
GREEDY = {
    "stories260K": STORIES_GREEDY,
    "stories260K-F16": STORIES_GREEDY,
    "stories260K-Q8_0": STORIES_GREEDY,
    "stories260K-Q4_0": STORIES_GREEDY,
    "llama-2-tiny-random": ["Hello", "The quick brown fox", "1 2 3", "a b c"],
    "SmolLM2-135M-Instruct.Q4_1": ["The capital of France is", "def fibonacci(n):", "Once upon a time",
                                   "List three colors:"],
}

TOKENIZE = [
    "", " ", "Hello world", "hello  world", "  leading spaces", "trailing   ", "tabs\tand\nnewlines\n\n", "\n",
    "Ünïcödé àccents", "naïve café résumé", "日本語のテキスト", "中文测试", "emoji 🦙🔥👍🏽",
    "digits 1234567890 3.14159 -42", "12345678901234567890", "mixed CASE Words", "punctuation!?.,;:'\"()[]{}",
    "it's don't we'll", "a" * 200, "Once upon a time, there was a little girl named Lily.",
    "<|im_start|>user\nhi<|im_end|>", "   \t\t  \n  ", "x\u00a0y", "def f(x):\n    return x**2",
    "http://example.com/a?b=c&d=e", "if (a && b) { c[i] = d->e; }", "SELECT * FROM t WHERE id = 7;",
]
# tokenized again with add_bos forced to true and to false (tokenizer.ggml.add_bos_token overridden)
TOKENIZE_FORCED = ["", "Hello world"]
CHATML = "<|im_start|>user\nhi<|im_end|>"
DETOKENIZE = ["", "Hello world", "  leading spaces", "tabs\tand\nnewlines\n\n", "Ünïcödé àccents", "日本語のテキスト",
              "emoji 🦙🔥👍🏽", "x\u00a0y", CHATML]

LOGITS_COMMON = [
    "Hello", "Hello world", "The quick brown fox jumps over the lazy dog.",
    "Once upon a time, there was a little girl named Lily.", "She went to the store to buy some milk.",
    "1 2 3 4 5 6 7 8 9 10", "3.14159 + 2.71828 = 5.85987", "int main(void) { return 0; }",
    "def add(a, b):\n    return a + b", "for i in range(10): print(i)",
    "The sun was shining and the birds were singing.", "Tom had a big red ball.",
    "What is the capital of Germany?", "a b c d e f g", "The end.", "hello  world\n\nnew paragraph",
    "x = [i * i for i in range(10)]", "I like cats and dogs.",
]
N_LOGITS = 20

_log_lines = []


@llama_cpp.llama_log_callback
def _log_cb(level, text, user_data):
    s = text.decode("utf-8", "replace") if text else ""
    _log_lines.append((level, s))
    if level in (3, 4):  # GGML_LOG_LEVEL_WARN, GGML_LOG_LEVEL_ERROR (this ggml: NONE 0, DEBUG 1, INFO 2, CONT 5)
        sys.stderr.write(s)


def model_paths():
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    mdir = os.environ.get("CC_MODELS_DIR")
    if not mdir:
        mdir = os.path.join(root, "..", "shared", "models")
        if not os.path.isdir(mdir):
            mdir = "/work/shared/models"
    smol = os.environ.get("CC_SMOLLM2") or os.path.expanduser("~/.cache/cc/models/SmolLM2-135M-Instruct.Q4_1.gguf")
    return {
        "stories260K": os.path.join(mdir, "stories260K.gguf"),
        "llama-2-tiny-random": os.path.join(mdir, "llama-2-tiny-random.gguf"),
        "stories260K-F16": os.path.join(mdir, "derived", "stories260K-F16.gguf"),
        "stories260K-Q8_0": os.path.join(mdir, "derived", "stories260K-Q8_0.gguf"),
        "stories260K-Q4_0": os.path.join(mdir, "derived", "stories260K-Q4_0.gguf"),
        "SmolLM2-135M-Instruct.Q4_1": smol,
    }


def gguf_add_bos(path):
    """The GGUF rule: tokenizer.ggml.add_bos_token if present, else true (llama/SPM default)."""
    try:
        import gguf
    except ImportError:
        return None
    r = gguf.GGUFReader(path)
    f = r.fields.get("tokenizer.ggml.add_bos_token")
    return True if f is None else bool(f.contents())


def tokenize(vocab, text, add_bos, special):
    b = text.encode("utf-8")
    nmax = len(b) + 8
    buf = (llama_cpp.llama_token * nmax)()
    n = llama_cpp.llama_tokenize(vocab, b, len(b), buf, nmax, add_bos, special)
    if n < 0:
        nmax = -n
        buf = (llama_cpp.llama_token * nmax)()
        n = llama_cpp.llama_tokenize(vocab, b, len(b), buf, nmax, add_bos, special)
    if n < 0:
        raise RuntimeError("llama_tokenize failed for %r" % text)
    return [int(buf[i]) for i in range(n)]


def detokenize(vocab, ids):
    arr = (llama_cpp.llama_token * max(len(ids), 1))(*ids)
    size = 64 + 16 * len(ids)
    buf = ctypes.create_string_buffer(size)
    n = llama_cpp.llama_detokenize(vocab, arr, len(ids), buf, size, False, False)
    if n < 0:
        size = -n
        buf = ctypes.create_string_buffer(size)
        n = llama_cpp.llama_detokenize(vocab, arr, len(ids), buf, size, False, False)
    if n < 0:
        raise RuntimeError("llama_detokenize failed")
    return buf.raw[:n].decode("utf-8")


def vocab_model_add_bos(path, add_bos):
    """A vocab-only model with tokenizer.ggml.add_bos_token overridden (like llama.cpp's --override-kv):
    llama_tokenize(add_special=true) adds BOS only when the vocab says so, so this is how to force it."""
    kvo = (llama_cpp.llama_model_kv_override * 2)()
    kvo[0].tag = llama_cpp.LLAMA_KV_OVERRIDE_TYPE_BOOL
    kvo[0].key = b"tokenizer.ggml.add_bos_token"
    kvo[0].value.val_bool = add_bos
    kvo[1].key = b""
    mp = llama_cpp.llama_model_default_params()
    mp.vocab_only = True
    mp.kv_overrides = kvo
    model = llama_cpp.llama_model_load_from_file(path.encode(), mp)
    if not model:
        raise RuntimeError("cannot load the vocabulary of " + path)
    vocab = llama_cpp.llama_model_get_vocab(model)
    if bool(llama_cpp.llama_vocab_get_add_bos(vocab)) != add_bos:
        raise RuntimeError("add_bos_token override had no effect")
    return model, vocab


class Ctx:
    """A fresh llama_context (empty KV cache) for one sequence."""

    def __init__(self, model):
        cp = llama_cpp.llama_context_default_params()
        cp.n_ctx = N_CTX
        cp.n_batch = N_BATCH
        cp.n_ubatch = N_UBATCH
        cp.n_seq_max = 1
        cp.n_threads = N_THREADS
        cp.n_threads_batch = N_THREADS
        cp.flash_attn_type = {"disabled": llama_cpp.LLAMA_FLASH_ATTN_TYPE_DISABLED,
                              "enabled": llama_cpp.LLAMA_FLASH_ATTN_TYPE_ENABLED,
                              "auto": llama_cpp.LLAMA_FLASH_ATTN_TYPE_AUTO}[FLASH_ATTN]
        cp.type_k = llama_cpp.GGML_TYPE_F16
        cp.type_v = llama_cpp.GGML_TYPE_F16
        cp.embeddings = False
        cp.no_perf = True
        self.ctx = llama_cpp.llama_init_from_model(model, cp)
        if not self.ctx:
            raise RuntimeError("llama_init_from_model failed")
        self.batch = llama_cpp.llama_batch_init(N_BATCH, 0, 1)

    def decode(self, ids, pos0):
        """Decodes ids at positions pos0.. as one batch; returns the last position's logits (float32 copy)."""
        assert 0 < len(ids) <= N_BATCH
        b = self.batch
        for i, t in enumerate(ids):
            b.token[i] = t
            b.pos[i] = pos0 + i
            b.n_seq_id[i] = 1
            b.seq_id[i][0] = 0
            b.logits[i] = 1 if i == len(ids) - 1 else 0
        b.n_tokens = len(ids)
        rc = llama_cpp.llama_decode(self.ctx, b)
        if rc != 0:
            raise RuntimeError("llama_decode returned %d" % rc)
        p = llama_cpp.llama_get_logits_ith(self.ctx, -1)
        n_vocab = self.n_vocab
        return np.ctypeslib.as_array(p, shape=(n_vocab,)).astype(np.float32, copy=True)

    def close(self):
        llama_cpp.llama_batch_free(self.batch)
        llama_cpp.llama_free(self.ctx)


def make_model(stem, path):
    mp = llama_cpp.llama_model_default_params()
    mp.n_gpu_layers = 0
    mp.use_extra_bufts = EXTRA_BUFTS  # False: no CPU weight repacking (plain ggml vec_dot/llamafile paths)
    model = llama_cpp.llama_model_load_from_file(path.encode(), mp)
    if not model:
        raise RuntimeError("cannot load " + path)
    vocab = llama_cpp.llama_model_get_vocab(model)
    n_vocab = llama_cpp.llama_vocab_n_tokens(vocab)
    add_bos = bool(llama_cpp.llama_vocab_get_add_bos(vocab))
    add_eos = bool(llama_cpp.llama_vocab_get_add_eos(vocab))
    meta_bos = gguf_add_bos(path)
    if meta_bos is not None and meta_bos != add_bos:
        raise RuntimeError("%s: llama.cpp add_bos %s != GGUF rule %s" % (stem, add_bos, meta_bos))
    if add_eos:
        raise RuntimeError("%s: add_eos is set; the format has no field for it" % stem)
    eog = [t for t in range(n_vocab) if llama_cpp.llama_vocab_is_eog(vocab, t)]

    out = {
        "model": os.path.basename(path),
        "peer": "llama-cpp-python " + llama_cpp.__version__,
        "n_ctx": N_CTX,
        "settings": {
            "llama_cpp_commit": LLAMA_CPP_COMMITS.get(llama_cpp.__version__, "unknown"),
            "n_ctx": N_CTX, "n_batch": N_BATCH, "n_ubatch": N_UBATCH, "n_seq_max": 1,
            "n_threads": N_THREADS, "n_threads_batch": N_THREADS, "n_gpu_layers": 0,
            "flash_attn": FLASH_ATTN, "type_k": "f16", "type_v": "f16", "use_extra_bufts": EXTRA_BUFTS,
            "add_bos_default": add_bos, "bos": int(llama_cpp.llama_vocab_bos(vocab)),
            "eos": int(llama_cpp.llama_vocab_eos(vocab)), "eog_ids": eog,
            "greedy_n": N_GEN, "near_tie_eps": TIE_EPS,
            "tokenize_api": "llama_cpp.llama_tokenize(add_special=add_bos, parse_special=special)",
            "detokenize_api": "llama_cpp.llama_detokenize(remove_special=false, unparse_special=false)",
            "greedy": "argmax of llama_get_logits_ith(-1) float32 (lowest id wins exact ties); stops after an "
                      "EOG id (included in ids, \"eos\": true); prompt = one llama_decode batch, then 1 token/decode",
        },
        "tokenize": [],
        "detokenize": [],
        "greedy": [],
        "logits": [],
    }

    for text in TOKENIZE:
        out["tokenize"].append({"text": text, "add_bos": add_bos, "ids": tokenize(vocab, text, add_bos, False)})
    for ab in (True, False):
        vmodel, vvocab = vocab_model_add_bos(path, ab)
        for text in TOKENIZE_FORCED:
            out["tokenize"].append({"text": text, "add_bos": ab, "ids": tokenize(vvocab, text, True, False)})
        llama_cpp.llama_model_free(vmodel)
    if stem.startswith("SmolLM2"):
        out["tokenize"].append({"text": CHATML, "add_bos": add_bos, "special": True,
                                "ids": tokenize(vocab, CHATML, add_bos, True)})

    for text in DETOKENIZE:
        ids = tokenize(vocab, text, add_bos, False)
        out["detokenize"].append({"ids": ids, "text": detokenize(vocab, ids)})
        if add_bos and ids:  # the same without BOS
            out["detokenize"].append({"ids": ids[1:], "text": detokenize(vocab, ids[1:])})

    for prompt in GREEDY[stem]:
        pids = tokenize(vocab, prompt, add_bos, False)
        c = Ctx(model)
        c.n_vocab = n_vocab
        logits = c.decode(pids, 0)
        gen, ties, eos = [], [], False
        for k in range(N_GEN):
            top2 = np.sort(logits)[-2:]
            if float(top2[1]) - float(top2[0]) < TIE_EPS:
                ties.append(k)
            tok = int(np.argmax(logits))
            gen.append(tok)
            if llama_cpp.llama_vocab_is_eog(vocab, tok):
                eos = True
                break
            if k + 1 < N_GEN:
                logits = c.decode([tok], len(pids) + k)
        c.close()
        out["greedy"].append({"prompt": prompt, "prompt_ids": pids, "ids": gen, "near_tie_steps": ties, "eos": eos})

    prompts = []
    for p in GREEDY[stem] + LOGITS_COMMON:
        if p not in prompts and (p or add_bos):
            prompts.append(p)
    for prompt in prompts[:N_LOGITS]:
        pids = tokenize(vocab, prompt, add_bos, False)
        c = Ctx(model)
        c.n_vocab = n_vocab
        logits = c.decode(pids, 0)
        c.close()
        order = np.argsort(-logits, kind="stable")[:10]
        out["logits"].append({
            "prompt": prompt, "prompt_ids": pids,
            "top": [[int(i), float(logits[i])] for i in order],
            "n_vocab": n_vocab,
            "l2": float(np.sqrt(np.sum(logits.astype(np.float64) ** 2))),
        })

    llama_cpp.llama_model_free(model)
    return out


def dump(out):
    """JSON with one list entry per line (json writes floats with repr(): the float32 values exactly)."""
    parts = []
    for k, v in out.items():
        if isinstance(v, list):
            body = ",\n".join("  " + json.dumps(e, ensure_ascii=False) for e in v)
            parts.append(" %s: [\n%s\n ]" % (json.dumps(k), body) if v else " %s: []" % json.dumps(k))
        else:
            parts.append(" %s: %s" % (json.dumps(k), json.dumps(v, ensure_ascii=False)))
    return "{\n" + ",\n".join(parts) + "\n}\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--models", default="")
    ap.add_argument("--out-dir", default=os.path.dirname(os.path.abspath(__file__)))
    ap.add_argument("--log", default="")
    ap.add_argument("--flash-attn", default="disabled", choices=["disabled", "enabled", "auto"])
    ap.add_argument("--extra-bufts", action="store_true")
    args = ap.parse_args()
    global FLASH_ATTN, EXTRA_BUFTS
    FLASH_ATTN, EXTRA_BUFTS = args.flash_attn, args.extra_bufts

    llama_cpp.llama_log_set(_log_cb, ctypes.c_void_p(0))
    llama_cpp.llama_backend_init()
    sys.stderr.write("llama-cpp-python %s\n%s\n" % (llama_cpp.__version__,
                                                   llama_cpp.llama_print_system_info().decode()))
    os.makedirs(args.out_dir, exist_ok=True)
    paths = model_paths()
    want = [m for m in args.models.split(",") if m] or list(paths)
    rc = 0
    for stem in want:
        path = paths[stem]
        if not os.path.exists(path):
            sys.stderr.write("make_refs: SKIP %s: %s not found\n" % (stem, path))
            rc = 77
            continue
        _log_lines.append((1, "==== %s\n" % stem))
        out = make_model(stem, path)
        dst = os.path.join(args.out_dir, stem + ".json")
        with open(dst, "w", encoding="utf-8") as f:
            f.write(dump(out))
        sys.stderr.write("make_refs: wrote %s (%d bytes)\n" % (dst, os.path.getsize(dst)))
    if args.log:
        with open(args.log, "w", encoding="utf-8") as f:
            f.write("".join(s for _, s in _log_lines))
    return rc


if __name__ == "__main__":
    sys.exit(main())
