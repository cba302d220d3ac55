#!/usr/bin/env python3
"""Finds import cycles between the source files of each crate.

File A imports from file B when A names an item (in a `use` or a qualified
path such as `crate::tensor::Tensor`) that B defines. Re-exports are
followed to the file that defines the item, so `crate::Tensor` counts as an
import from `tensor/mod.rs`, not from `lib.rs`. A module declaring its
children (`mod x;`) or re-exporting their items (`pub use x::Item`) is not
importing: that is its facade. Re-exporting a sibling's items is. Test modules inside a file
(`mod tests { ... }`) count as that file.

Prints every cycle (a strongly connected component of more than one file)
and exits 1 if there is one.

Usage: import_cycles.py [CRATE_ROOT ...]   (a src directory with lib.rs, or a
crate's root file; default: runtime/src kernels/src schema/src src
src/bin/qtensor/main.rs)
"""

import os
import re
import sys

ITEM_KINDS = r"(?:struct|enum|fn|trait|type|const|static|union|mod|macro_rules!)"


def strip_comments(text):
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    text = re.sub(r"//[^\n]*", "", text)
    # String literals can hold `crate::` in messages.
    text = re.sub(r'"(?:\\.|[^"\\])*"', '""', text)
    return text


class Module:
    def __init__(self, path, file):
        self.path = path  # tuple of segments from the crate root
        self.file = file
        self.children = {}


def child_file(parent_file, name, attr_path):
    base = os.path.dirname(parent_file)
    stem = os.path.basename(parent_file)
    if attr_path:
        return os.path.normpath(os.path.join(base, attr_path))
    if stem not in ("lib.rs", "mod.rs", "main.rs"):
        base = os.path.join(base, stem[:-3])
    for cand in (os.path.join(base, name + ".rs"), os.path.join(base, name, "mod.rs")):
        if os.path.exists(cand):
            return cand
    return None


def build_tree(root_file):
    modules = {}
    files = {}

    def visit(path, file):
        m = Module(path, file)
        modules[path] = m
        files[file] = m
        text = re.sub(r"//[^\n]*", "", open(file).read())
        for attr, name in re.findall(r'(?:#\[path\s*=\s*"([^"]+)"\]\s*)?(?:pub(?:\([^)]*\))?\s+)?\bmod\s+(\w+)\s*;', text):
            f = child_file(file, name, attr or None)
            if f:
                m.children[name] = path + (name,)
                visit(path + (name,), f)

    visit((), root_file)
    return modules, files


def expand_use(tree):
    """`a::{b, c::{d, e as f}}` into [(['a','b'], 'b'), (['a','c','d'], 'd'), (['a','c','e'], 'f')]."""
    tree = tree.replace(" ", "").replace("\n", "")
    out = []

    def rec(prefix, t):
        if "{" in t and t.endswith("}"):
            i = t.index("{")
            head = [s for s in t[:i].split("::") if s]
            inner = t[i + 1 : -1]
            depth, start = 0, 0
            for j, ch in enumerate(inner + ","):
                if ch == "{":
                    depth += 1
                elif ch == "}":
                    depth -= 1
                elif ch == "," and depth == 0:
                    part = inner[start:j]
                    start = j + 1
                    if part:
                        rec(prefix + head, part)
            return
        alias = None
        if "as" in t and re.search(r"\bas\b", t.replace("::", " :: ").replace("as", " as ")):
            parts = re.split(r"as(?=\w+$)", t)
            if len(parts) == 2 and not parts[0].endswith("::"):
                t, alias = parts[0], parts[1]
        segs = [s for s in t.split("::") if s]
        if segs and segs[-1] == "self":
            segs = segs[:-1]
        name = alias or (segs[-1] if segs else None)
        out.append((prefix + segs, name))

    rec([], tree)
    return out


class Crate:
    def __init__(self, root_file):
        self.modules, self.files = build_tree(root_file)
        self.text = {f: strip_comments(open(f).read()) for f in self.files}
        self.reexports = {}
        for f, t in self.text.items():
            exp = []
            for m in re.finditer(r"\bpub(?:\([^)]*\))?\s+use\s+([^;]+);", t):
                exp.extend(expand_use(m.group(1)))
            self.reexports[f] = exp

    def defines(self, file, name):
        return re.search(rf"\b{ITEM_KINDS}\s+{re.escape(name)}\b", self.text[file]) is not None

    def start(self, file, first, inline):
        """The module a path beginning with `first` starts from, in `file`."""
        here = self.files[file].path
        if first == "crate":
            return ()
        if first == "self":
            return here
        if first == "super":
            return here if inline else here[:-1]
        return None

    def resolve(self, mod_path, segs, seen=None):
        """The file that defines `segs`, relative to module `mod_path`."""
        seen = seen or set()
        key = (mod_path, tuple(segs))
        if key in seen:
            return None
        seen.add(key)
        m = self.modules.get(mod_path)
        if m is None:
            return None
        while segs and segs[0] == "super":
            mod_path = mod_path[:-1]
            m = self.modules[mod_path]
            segs = segs[1:]
        while segs and segs[0] in m.children:
            m = self.modules[m.children[segs[0]]]
            segs = segs[1:]
        if not segs or segs[0] == "*" or self.defines(m.file, segs[0]):
            return m.file
        item = segs[0]
        for path, name in self.reexports[m.file]:
            if name == item or path[-1:] == ["*"]:
                p = path if name == item else path[:-1] + [item]
                if p[0] in ("crate", "self"):
                    base, rest = self.start(m.file, p[0], False), p[1:]
                elif p[0] == "super" or p[0] in m.children:
                    base, rest = m.path, p
                else:
                    # Re-exported from another crate: no file of this one.
                    if name == item:
                        return None
                    continue
                r = self.resolve(base, list(rest), seen)
                if r and (name == item or self.defines(r, item)):
                    return r
        return m.file

    def imports(self, file):
        text = self.text[file]
        # Lines inside an inline `mod x { ... }` (tests): `super` is this file.
        inline_spans = []
        for m in re.finditer(r"\bmod\s+\w+\s*\{", text):
            depth, i = 0, m.end() - 1
            while i < len(text):
                depth += {"{": 1, "}": -1}.get(text[i], 0)
                if depth == 0:
                    break
                i += 1
            inline_spans.append((m.start(), i))

        def inline(pos):
            return any(a <= pos <= b for a, b in inline_spans)

        paths = []
        uses = list(re.finditer(r"(\bpub(?:\([^)]*\))?\s+)?\buse\s+([^;]+);", text))
        here = self.files[file]
        for m in uses:
            for segs, _ in expand_use(m.group(2)):
                # Re-exporting a child's items (`pub use child::Item`) is the
                # module's facade, not an import.
                local = segs[1:] if segs[:1] == ["self"] else segs
                if m.group(1) and local and local[0] in here.children:
                    continue
                paths.append((m.start(), segs))
        in_use = [(m.start(), m.end()) for m in uses]
        for m in re.finditer(r"\b(?:crate|super|self)(?:::\w+)+", text):
            if not any(a <= m.start() < b for a, b in in_use):
                paths.append((m.start(), m.group(0).split("::")))
        out = set()
        for pos, segs in paths:
            if not segs:
                continue
            if segs[0] in ("crate", "self", "super"):
                base = self.start(file, segs[0], inline(pos))
                rest = segs[1:]
                while segs[0] == "super" and rest and rest[0] == "super":
                    base, rest = base[:-1], rest[1:]
            elif segs[0] in here.children:
                # `use child::Item` (a path relative to this module).
                base, rest = here.path, segs
            else:
                continue
            target = self.resolve(base, list(rest))
            if target and target != file:
                # A parent naming its own child module is not an import.
                out.add(target)
        return out


def cycles(graph):
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def strong(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in list(graph):
        if v not in index:
            strong(v)
    return out


def main():
    roots = sys.argv[1:] or ["runtime/src", "kernels/src", "schema/src", "src", "src/bin/qtensor/main.rs"]
    found = 0
    for root in roots:
        crate = Crate(root if root.endswith(".rs") else os.path.join(root, "lib.rs"))
        root = os.path.dirname(root) if root.endswith(".rs") else root
        graph = {f: crate.imports(f) for f in crate.files}
        for comp in cycles(graph):
            found += 1
            print(f"cycle in {root}:")
            for f in comp:
                back = sorted(os.path.relpath(g, root) for g in graph[f] if g in comp)
                print(f"  {os.path.relpath(f, root)} -> {', '.join(back)}")
        print(f"{root}: {len(crate.files)} files, {sum(len(v) for v in graph.values())} imports between them")
    if found:
        sys.exit(1)
    print("no import cycles")


if __name__ == "__main__":
    main()
