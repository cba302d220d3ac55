#!/usr/bin/env python3
"""Finds products of sizes that can overflow, in runtime/ and kernels/.

An empty tensor may have huge other dimensions (`[0, 2^63 - 1, 2^32, 3]`),
so a plain `.product()` of its sizes, or of any part of them, overflows: a
panic under overflow checks, a wrong count in release. Sizes are
multiplied with `numel_of` (0 when any size is 0, otherwise bounded by
the tensor's checked element count), `checked_numel` or `checked_count`.
This check keeps it so: it prints every `.product()` outside test code
and exits 1 if there is one. (Products of values, like the `dot
product`s of the GEMM kernels, are not written with `.product()`.)

Usage: size_products.py [DIR ...]   (default: runtime/src kernels/src)
"""

import os
import re
import sys

PRODUCT = re.compile(r"\.product(::<[^>]*>)?\(\)")


def scan(root):
    found = []
    for folder, _, files in os.walk(root):
        for name in sorted(files):
            if not name.endswith(".rs"):
                continue
            path = os.path.join(folder, name)
            in_tests = False
            with open(path, encoding="utf-8") as f:
                for number, line in enumerate(f, 1):
                    code = line.split("//")[0]
                    # Test modules sit at the end of a file.
                    if code.strip().startswith("#[cfg(test)]"):
                        in_tests = True
                    if not in_tests and PRODUCT.search(code):
                        found.append(f"{path}:{number}: {line.strip()}")
    return found


def main():
    roots = sys.argv[1:] or ["runtime/src", "kernels/src"]
    found = [hit for root in roots for hit in scan(root)]
    for hit in found:
        print(hit)
    if found:
        print(f"{len(found)} unchecked product(s) of sizes: use numel_of, checked_numel or checked_count")
        return 1
    print("no unchecked .product() of sizes in " + ", ".join(roots))
    return 0


if __name__ == "__main__":
    sys.exit(main())
