#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# make_tokref.py: reference tokenizations for tests/test_tokenizer.c from llama.cpp (the PyPI package
# llama-cpp-python): tests/tokref/<model stem>[@<pre>].json. The "@<pre>" files are SmolLM2's vocabulary with
# tokenizer.ggml.pre replaced (a metadata-only GGUF written with gguf-py), to check the other BPE pre-tokenizers.
#
#   ~/.cache/cc/venv/bin/python tests/tokref/make_tokref.py [--out-dir DIR]
#
# Models are found as the tests find them (CC_MODELS_DIR, CC_SMOLLM2). Each file:
#   {"model", "pre", "peer", "tokenize": [{"text", "add_bos": null (the default) | false, "special", "ids"}],
#    "detokenize": [{"ids", "special", "text_hex"}]}   (llama_detokenize(remove_special=false, unparse_special))
import argparse
import ctypes
import json
import os
import random
import sys
import tempfile

import gguf
import llama_cpp
from llama_cpp import Llama

PRES = ["gpt-2", "llama-bpe", "qwen2", "default", "falcon"]

FIXED = [
    "", " ", "  ", "   ", "\n", "\n\n", "\t", "Hello world", " Hello world", "Hello  world", "Hello world ",
    "Hello, World! 123abc", "I'm here, don't go; THEY'LL see we've and you'd he's I'M DON'T",
    "'s 't 're 've 'm 'll 'd 'S 'T 'RE 'Ll", "12345 3.14159 1,000,000 007 1234567890",
    "caf\u00e9 na\u00efve \u00fcber r\u00e9sum\u00e9", "\u4e2d\u6587\u5b57\u7b26 \u65e5\u672c\u8a9e\u306e\u30c6\u30ad\u30b9\u30c8",
    "\U0001F600 emoji \U0001F680\U0001F30D", "\u0645\u0631\u062d\u0628\u0627 \u0628\u0627\u0644\u0639\u0627\u0644\u0645",
    "\u0928\u092e\u0938\u094d\u0924\u0947", "  leading spaces", "trailing spaces   ", "a\n\nb", "\t\ttabs\tand\ttabs",
    "windows\r\nline\r\nends", "mixed \u00a0nbsp\u3000ideographic\u2009thin", "e\u0301 combining",
    "zero\u200bwidth\u200djoin", "unassigned \u0378\u0379 x", "ctrl \x07\x01 chars",
    "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n", "<s>hello</s> <unk>", "<|endoftext|>x<|endoftext|>",
    "!!!???... ,,, ;;; ::: --- ___ ``` ~~~", "def f(x):\n    return x**2  # comment\n\n\nclass A:\n\tpass\n",
    "<0x41> \u2581 \u2581\u2581x", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "   \n   \n  x  \n",
    "\u00bd \u2153 \u2160 \u0663\u0664 \u00b2\u00b3", "https://example.com/path?q=1&r=2#frag", "$100 + 5% = <tag> ^ | ~",
    "\U00010348 gothic \U0001D400 math", "snake_case camelCase kebab-case", "x\u0000y", "\u0085next \u2028\u2029 seps",
    "a . b , c ! d ? e ' f 's g 'm h 're i 've j 'll k 't l 'd", "it 's a ' quoted ' word",
]


def rand_text(rng):
    out = []
    for _ in range(rng.randint(1, 30)):
        r = rng.random()
        if r < 0.45:
            c = rng.randrange(0x20, 0x7f)
        elif r < 0.6:
            c = rng.choice([9, 10, 13, 32, 32, 32, 0xa0, 0x3000, 0x2009, 0x85])
        elif r < 0.8:
            c = rng.randrange(0x80, 0x3000)
        elif r < 0.97:
            c = rng.randrange(0x3000, 0x10000)
        else:
            c = rng.randrange(0x10000, 0x40000)
        if 0xD800 <= c < 0xE000:
            c = 0x41
        out.append(chr(c))
        if rng.random() < 0.05:
            out.append(rng.choice(["'s", "'LL", " 're", "<|im_end|>", "<s>", "123456"]))
    return "".join(out)


def models_dir():
    env = os.environ.get("CC_MODELS_DIR")
    if env:
        return env
    here = os.path.dirname(os.path.abspath(__file__))
    cand = os.path.join(here, "..", "..", "..", "shared", "models")
    return cand if os.path.isdir(cand) else "/work/shared/models"


def smollm2():
    return os.environ.get("CC_SMOLLM2") or os.path.expanduser("~/.cache/cc/models/SmolLM2-135M-Instruct.Q4_1.gguf")


def with_pre(src, dst, pre):
    r = gguf.GGUFReader(src)
    w = gguf.GGUFWriter(dst, r.fields["general.architecture"].contents())
    for k, f in r.fields.items():
        if k.startswith("GGUF.") or k in ("general.architecture", "tokenizer.ggml.pre"):
            continue
        if f.types[0] == gguf.GGUFValueType.ARRAY:
            w.add_key_value(k, f.contents(), f.types[0], sub_type=f.types[1])
        else:
            w.add_key_value(k, f.contents(), f.types[0])
    w.add_key_value("tokenizer.ggml.pre", pre, gguf.GGUFValueType.STRING)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def make(path, model_name, pre, out):
    llm = Llama(model_path=path, vocab_only=True, verbose=False)
    vocab = llama_cpp.llama_model_get_vocab(llm.model)

    def detok(ids, special):
        arr = (llama_cpp.llama_token * max(1, len(ids)))(*ids)
        buf = ctypes.create_string_buffer(1 << 16)
        n = llama_cpp.llama_detokenize(vocab, arr, len(ids), buf, 1 << 16, False, special)
        assert n >= 0
        return buf.raw[:n]

    rng = random.Random(6)
    texts = FIXED + [rand_text(rng) for _ in range(24)]
    doc = {"model": model_name, "pre": pre, "peer": "llama-cpp-python " + llama_cpp.__version__,
           "tokenize": [], "detokenize": []}
    for i, t in enumerate(texts):
        b = t.encode("utf-8")
        for special in (False, True):
            if special and i % 4:
                continue
            for add_bos in (None, False):
                ids = llm.tokenize(b, add_bos=add_bos is None, special=special)
                doc["tokenize"].append({"text": t, "add_bos": add_bos, "special": special, "ids": ids})
            if pre in (None, "smollm") or i % 4 == 0:
                doc["detokenize"].append({"ids": ids, "special": special, "text_hex": detok(ids, special).hex()})
    nv = llm.n_vocab()
    for _ in range(30 if pre in (None, "smollm") else 8):
        ids = [rng.randrange(nv) for _ in range(rng.randint(1, 6))]
        special = rng.random() < 0.5
        doc["detokenize"].append({"ids": ids, "special": special, "text_hex": detok(ids, special).hex()})
    with open(out, "w", encoding="utf-8") as f:
        f.write("{\"model\": %s, \"pre\": %s, \"peer\": %s,\n" % tuple(json.dumps(doc[k]) for k in ("model", "pre", "peer")))
        for key in ("tokenize", "detokenize"):
            f.write("\"%s\": [\n" % key)
            f.write(",\n".join(json.dumps(c, ensure_ascii=False) for c in doc[key]))
            f.write("\n]%s\n" % ("," if key == "tokenize" else "}"))
    print(out, len(doc["tokenize"]), "tokenize,", len(doc["detokenize"]), "detokenize cases")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out-dir", default=os.path.dirname(os.path.abspath(__file__)))
    a = ap.parse_args()
    for rel in ("stories260K.gguf", "llama-2-tiny-random.gguf"):
        p = os.path.join(models_dir(), rel)
        if os.path.exists(p):
            make(p, rel, None, os.path.join(a.out_dir, rel[:-5] + ".json"))
        else:
            print("missing", p, file=sys.stderr)
    s = smollm2()
    if not os.path.exists(s):
        print("missing", s, file=sys.stderr)
        return
    stem = os.path.basename(s)[:-5]
    make(s, os.path.basename(s), "smollm", os.path.join(a.out_dir, stem + ".json"))
    with tempfile.TemporaryDirectory() as td:
        for pre in PRES:
            tmp = os.path.join(td, "v.gguf")
            with_pre(s, tmp, pre)
            make(tmp, os.path.basename(s), pre, os.path.join(a.out_dir, "%s@%s.json" % (stem, pre)))


if __name__ == "__main__":
    main()
