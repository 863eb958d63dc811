#!/usr/bin/env python3
"""Lists the C functions longer than a limit (default 150 lines, braces included).

usage: funclen.py [--limit N] [DIR_OR_FILE ...]   (default: the library folders and tools/)

Prints "LINES FILE:LINE FUNCTION" per function over the limit, longest first. A function is a
top-level brace block whose opening line is not an initializer (no '=' before the brace), so data
tables are not counted. Comments and string literals are blanked before braces are counted.
"""
import os
import re
import sys

DEFAULT_DIRS = ["common", "libgguf", "libquant", "tokenizer", "input", "arch", "runtime",
                "pipeline", "tools"]


def blank(src):
    """src with comments, strings and char literals replaced by spaces (newlines kept)."""
    pat = re.compile(r'//[^\n]*|/\*.*?\*/|"(?:\\.|[^"\\\n])*"|\'(?:\\.|[^\'\\\n])*\'', re.S)
    return pat.sub(lambda m: re.sub(r"[^\n]", " ", m.group(0)), src)


def functions(path):
    """(first line, line count, name) of each top-level function body in a C file."""
    text = blank(open(path, encoding="utf-8", errors="replace").read())
    out, depth, start, head = [], 0, 0, ""
    for i, line in enumerate(text.split("\n"), 1):
        closed = False
        for ch in line:
            if ch == "{":
                if depth == 0:
                    start, sig = i, head + line[: line.index("{")]
                    is_func = "(" in sig and "=" not in sig.split(")")[-1] and \
                        not re.search(r"=\s*$", sig.strip()) and "=" not in sig
                    names = re.findall(r"([A-Za-z_]\w*)\s*\(", sig)
                    name = names[0] if is_func and names else None
                depth += 1
            elif ch == "}":
                depth -= 1
                if depth == 0:
                    if name:
                        out.append((start, i - start + 1, name))
                    closed = True
        if depth == 0:
            stripped = line.strip()
            if closed or stripped.endswith(";") or stripped.startswith("#"):
                head = ""
            elif stripped:
                head += " " + stripped
    return out


def c_files(args):
    for a in args:
        if os.path.isfile(a):
            yield a
        elif os.path.isdir(a):
            for f in sorted(os.listdir(a)):
                if f.endswith(".c"):
                    yield os.path.join(a, f)


def main():
    argv, limit = sys.argv[1:], 150
    if argv[:1] == ["--limit"]:
        limit, argv = int(argv[1]), argv[2:]
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    args = argv or [os.path.join(root, d) for d in DEFAULT_DIRS]
    long_ones = []
    for path in c_files(args):
        rel = os.path.relpath(path, root)
        for start, n, name in functions(path):
            if n > limit:
                long_ones.append((n, f"{rel}:{start}", name))
    for n, where, name in sorted(long_ones, reverse=True):
        print(f"{n:5d} {where} {name}")


if __name__ == "__main__":
    main()
