#!/usr/bin/env python3
"""Every ```cpp block in README.md and docs/*.md must compile against mpp's public headers.

Each block is a whole translation unit, compiled with -fsyntax-only (blocks without main() are fine).
Usage: docs_blocks.py SOURCE_DIR WORK_DIR CXX
"""
import glob
import os
import re
import subprocess
import sys

src, work, cxx = sys.argv[1:4]
os.makedirs(work, exist_ok=True)
docs = sorted(glob.glob(os.path.join(src, "docs", "*.md"))) + [os.path.join(src, "README.md")]
failed, count = [], 0
for doc in docs:
    text = open(doc, encoding="utf-8").read()
    for n, block in enumerate(re.findall(r"^```cpp\n(.*?)^```$", text, re.S | re.M), 1):
        count += 1
        name = f"{os.path.splitext(os.path.basename(doc))[0]}_{n}.cpp"
        path = os.path.join(work, name)
        with open(path, "w", encoding="utf-8") as f:
            f.write(block)
        r = subprocess.run([cxx, "-std=c++20", "-fsyntax-only", "-I" + os.path.join(src, "include"), path],
                           capture_output=True, text=True)
        if r.returncode != 0:
            failed.append(f"{os.path.basename(doc)} block {n}")
            print(f"---- {doc}, block {n} does not compile:\n{r.stderr[:4000]}")
print(f"{count} code blocks checked, {len(failed)} failed")
sys.exit(1 if failed or count == 0 else 0)
