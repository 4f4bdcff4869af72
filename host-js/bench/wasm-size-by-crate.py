#!/usr/bin/env python3
"""Code bytes of a wasm module by crate, from its name section (for BENCHMARKS.md, "Size").

Usage: python3 host-js/bench/wasm-size-by-crate.py target-wasm/wasm32-unknown-unknown/wasm-lean/switchboard_wasm.wasm

Use the cargo output (it still has the name section; wasm-opt output does not). Each
function body is attributed to the first lower-case path segment of its mangled name,
so generic code is counted under the crate that defines it (core, alloc, hashbrown),
not the crate that instantiated it. Prints the 40 largest.
"""
import collections
import re
import sys


def leb128(buf, i):
    """An unsigned LEB128 number at buf[i]: (value, next index)."""
    value, shift = 0, 0
    while True:
        byte = buf[i]
        i += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, i


def skip_name(buf, i):
    n, i = leb128(buf, i)
    return i + n


def sections(buf):
    """(id, offset, length) of every section after the 8-byte header."""
    i, out = 8, []
    while i < len(buf):
        sid = buf[i]
        n, i = leb128(buf, i + 1)
        out.append((sid, i, n))
        i += n
    return out


def imported_functions(buf, off):
    """Number of imported functions (they come first in the function index space)."""
    count, j = leb128(buf, off)
    funcs = 0
    for _ in range(count):
        j = skip_name(buf, skip_name(buf, j))
        kind = buf[j]
        j += 1
        if kind == 0:  # function: type index
            funcs += 1
            _, j = leb128(buf, j)
        elif kind == 1:  # table: reftype, limits
            flags, j = leb128(buf, j + 1)
            _, j = leb128(buf, j)
            if flags & 1:
                _, j = leb128(buf, j)
        elif kind == 2:  # memory: limits
            flags, j = leb128(buf, j)
            _, j = leb128(buf, j)
            if flags & 1:
                _, j = leb128(buf, j)
        elif kind == 3:  # global: valtype, mutability
            j += 2
        else:
            raise ValueError(f"unknown import kind {kind}")
    return funcs


def function_names(buf, off, length):
    """Function index -> name, from the `name` custom section's function subsection."""
    names = {}
    n, j = leb128(buf, off)
    if buf[j:j + n] != b"name":
        return names
    j += n
    end = off + length
    while j < end:
        sub = buf[j]
        size, j = leb128(buf, j + 1)
        if sub == 1:
            k = j
            count, k = leb128(buf, k)
            for _ in range(count):
                idx, k = leb128(buf, k)
                n, k = leb128(buf, k)
                names[idx] = buf[k:k + n].decode("utf8", "replace")
                k += n
        j += size
    return names


def crate_of(name):
    """The first lower-case path segment of a legacy-mangled (_ZN...) Rust symbol."""
    m = re.match(r"_ZN(\d+)", name)
    if not m:
        return name[:25]
    ident = name[m.end():m.end() + int(m.group(1))]
    ident = re.sub(r"\$[A-Za-z0-9]+\$", " ", ident).replace("_$", "").replace("..", " ")
    words = [
        w for w in ident.split()
        if re.match(r"^_?[a-z][a-z0-9_]*$", w) and w not in ("mut", "dyn", "as", "_", "impl")
    ]
    return words[0].lstrip("_") if words else ident[:20]


def main():
    buf = open(sys.argv[1], "rb").read()
    imports, code, names = 0, None, {}
    for sid, off, length in sections(buf):
        if sid == 2:
            imports = imported_functions(buf, off)
        elif sid == 10:
            code = off
        elif sid == 0:
            names.update(function_names(buf, off, length))
    if code is None:
        sys.exit("no code section")
    count, j = leb128(buf, code)
    by_crate, total = collections.Counter(), 0
    for f in range(count):
        size, j = leb128(buf, j)
        j += size
        total += size
        by_crate[crate_of(names.get(imports + f, "?"))] += size
    print("total code", total)
    for crate, size in by_crate.most_common(40):
        print(f"{size:9d} {crate}")


if __name__ == "__main__":
    main()
