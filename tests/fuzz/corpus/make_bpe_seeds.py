#!/usr/bin/env python3
"""Seeds for the fuzz_tokenizer_json and fuzz_bpe targets (tests/fuzz/fuzz_*.c say the input
formats): tests/fuzz/corpus/tokenizer_json/ from tests/tools/bad_tokenizers.py's cases (the
valid one and every malformed one under 60 KB), tests/fuzz/corpus/bpe/ from a tiny vocabulary
and texts that exercise the pre-tokenizers. Usage: tests/fuzz/corpus/make_bpe_seeds.py"""
import os
import subprocess
import sys
import tempfile

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
C = os.path.join(ROOT, "tests", "fuzz", "corpus")
SEP = b"\n====\n"

with tempfile.TemporaryDirectory() as t:
    man = subprocess.run([sys.executable, os.path.join(ROOT, "tests/tools/bad_tokenizers.py"), t],
                         check=True, capture_output=True, text=True).stdout
    pre = {line.split("|")[0]: line.split("|")[5] for line in man.splitlines()}
    pre["good"] = "gpt-2"
    for name in sorted(os.listdir(t)):
        parts = []
        for f in ("tokenizer.json", "tokenizer_config.json", "config.json", "chat_template.jinja"):
            p = os.path.join(t, name, f)
            parts.append(open(p, "rb").read() if os.path.exists(p) else b"")
        data = bytes([1 if pre.get(name, "-") != "-" else 0]) + SEP.join(parts)
        if len(data) < 60000:
            open(os.path.join(C, "tokenizer_json", name), "wb").write(data)

B2U = {}
keep = list(range(0x21, 0x7F)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
n = 0
for b in range(256):
    B2U[b] = chr(b) if b in keep else chr(256 + n)
    n += b not in keep
G = B2U[32]
tokens = ["ab", G + "a", G + "t", "he", G + "the", "in", "<|end|>", "[u]", "Ġ\u2581x"]
merges = ["a b", G + " a", G + " t", "h e", G + "t he", "i n", "x y z"]
texts = [
    "Hello world's the 12345\n\n  x",
    "\n \n\n \t\t \u00a0\u0085\u3000 ~~ a~b <|end|> [u] \u4e2d\u6587 \U0001F680 caf\u00e9 CamelCase 3.14",
    "I've 'RE 'll \u2581x \u1780\u17b6 \u0430\u0431 \uff21\uff41",
]
pres = [("llama-bpe", 4), ("qwen2", 31), ("gpt-2", 18), ("deepseek-llm", 11), ("deepseek-v3", 13),
        ("tekken", 45), ("starcoder", 17), ("falcon", 15), ("default", 0)]
for i, (name, idx) in enumerate(pres):
    for k, text in enumerate(texts):
        flags = [1 | 16, 1 | 2 | 4 | 8, 0][k]
        blob = bytes([idx, flags]) + b"\x01".join(s.encode() for s in tokens) + b"\x00" + \
            b"\x01".join(s.encode() for s in merges) + b"\x00" + text.encode() + (b"\xff\xc3" if k == 2 else b"")
        open(os.path.join(C, "bpe", f"{name}-{k}"), "wb").write(blob)
