#!/usr/bin/env python3
"""Doxygen input filter for mpp's public headers (docs/api/Doxyfile, FILTER_PATTERNS).

    filter.py HEADER    prints the header as doxygen should read it

The headers are documented with plain // comments (the house style: a comment above a
declaration, or after a member on its line, documents it; one comment above a run of declarations
with no blank line between them documents each of them). This filter turns those comments into
doxygen's: the opening comment of the file becomes its \\file page, a comment above a declaration
becomes ///, a comment after a member on its line becomes ///<, and the comment of a run is given
to every declaration of the run. Comments inside function bodies stay implementation comments.
Copy/move constructors and assignments and destructors the header leaves without a comment get a
one-line description of what they are (the file comment says what moving or copying means).
Every line keeps its line number, so that doxygen's warnings point at the header's own lines.

Each file page ends with its example: one of the programs of examples/, which are built and run
as tests (EXAMPLES below; a public header without an entry is an error).
"""
import os
import re
import sys

# Public header -> the example its page shows (examples/<path>). All are ctest tests.
EXAMPLES = {
    "mpp.hpp": "quickstart.cpp",
    "process.hpp": "quickstart.cpp",
    "start_method.hpp": "openmp_parent.cpp",
    "pool.hpp": "pool_pseudowords.cpp",
    "queue.hpp": "queue_pseudowords.cpp",
    "shared.hpp": "shared_counter.cpp",
    "sync.hpp": "barrier_pipeline.cpp",
    "pipe.hpp": "pipe_codec.cpp",
    "codec.hpp": "pipe_codec.cpp",
    "errors.hpp": "pipe_codec.cpp",
    "mpi.hpp": "mpi/pseudowords_mpi.cpp",
}

# Public classes deriving from a detail:: base that holds their calls: the base's public members
# are shown as the class's own (with the base's comments), since detail:: is not in the reference.
BASES = {
    "PoolFront": "detail/pool_core/front.hpp",
    "BasicAsyncResult": "detail/pool_core/results.hpp",
    "BasicImapRange": "detail/pool_core/results.hpp",
}
INHERITED = re.compile(r"^\s*class\b.*:\s*public\s+(?:mpp::)?detail::(\w+)<.*\{\s*$")

COMMENT = re.compile(r"^(\s*)//(?!/)\s?(.*)$")
TRAILING = re.compile(r"^(\s*[^/\s#][^\"']*?[;,{}]|\s*[^/\s#][^\"']*?\)\s*(const\s*)?)"
                      r"(\s+)//(?!/)\s?(.*)$")
SCOPE_HEAD = re.compile(r"^\s*(template\s*<.*>\s*)?(class|struct|union|enum|namespace)\b|"
                        r"^\s*(export\s+)?namespace\b|^\s*extern\s+\"C\"")
ACCESS = re.compile(r"^\s*(public|protected|private)\s*:")


def escape(text):
    """Comment text -> doxygen text: no doxygen commands or HTML tags by accident, except inside
    `code spans`."""
    out = []
    for i, part in enumerate(text.split("`")):
        if i % 2 == 0:
            part = part.replace("\\", "\\\\").replace("@", "\\@").replace("<", "\\<")
            part = part.replace(">", "\\>").replace("#", "\\#").replace("%", "\\%")
            part = part.replace("&", "\\&").replace("$", "\\$")
        out.append(part)
    return "`".join(out)


def braces(code):
    """Net brace depth change of a line of code, strings and char literals skipped."""
    code = re.sub(r'"(\\.|[^"\\])*"', '""', code)
    code = re.sub(r"'(\\.|[^'\\])*'", "''", code)
    code = code.split("//")[0]
    return code.count("{") - code.count("}")


def special_member(code, cls):
    """A one-line description for an undocumented special member of class `cls`, or None."""
    if not cls:
        return None
    c = re.escape(cls)
    deleted = re.search(r"=\s*delete\s*;", code)
    if re.match(rf"^\s*~{c}\s*\(", code):
        return "Destructor."
    if re.match(rf"^\s*{c}\s*\(\s*const\s+{c}\s*&\s*\w*\s*\)", code):
        return "Not copyable." if deleted else "Copy constructor."
    if re.match(rf"^\s*{c}\s*\(\s*{c}\s*&&\s*\w*\s*\)", code):
        return "Not movable." if deleted else "Move constructor: the moved-from object is empty."
    if re.match(rf"^\s*{c}\s*&\s*operator=\s*\(\s*const\s+{c}\s*&", code):
        return "Not copy-assignable." if deleted else "Copy assignment."
    if re.match(rf"^\s*{c}\s*&\s*operator=\s*\(\s*{c}\s*&&", code):
        return "Not move-assignable." if deleted else "Move assignment."
    return None


def filter_header(path, text):
    lines = text.split("\n")
    out = list(lines)
    name = os.path.relpath(path, os.path.join(os.path.dirname(path), "..")).replace(os.sep, "/")
    public = not name.startswith("mpp/detail/")

    # 1. The file comment (up to #pragma once) becomes the \file page.
    i = 0
    head = []
    while i < len(lines) and not lines[i].startswith("#pragma"):
        m = COMMENT.match(lines[i])
        head.append(escape(m.group(2)) if m else "")
        out[i] = ""
        i += 1
    if head:
        first = re.sub(r"^mpp/[\w/]+\.hpp:\s*", "", head[0])
        out[0] = "/** \\file"
        out[1:len(head)] = [""] * (len(head) - 1)
        body = [first] + head[1:]
        # Keep the text on the lines it came from (line numbers), closing on the last one; the
        # first line names the file (\\file takes the rest of its line as the file name).
        if len(body) == 1:
            body.append("")
            out.insert(1, "")  # one more line, at the top of a one-line file comment only
        body[1] = body[0] + " " + body[1]
        body[0] = "/** \\file " + name
        for k, t in enumerate(body):
            out[k] = t if k == 0 else " " + t
        out[len(body) - 1] += " */"

    # 2. Declarations and their comments.
    stack = []  # scope kinds: "ns", "class", "code"
    classes = []  # names of the open class scopes
    access_public = []  # per class scope: is the current access public
    pending = None  # text of the comment above the current run
    run_open = False  # inside a run of declarations documented by `pending`
    trailing_col = None  # column of the trailing comment on the previous line
    cont = False  # the statement on the previous line is not finished
    for n in range(i, len(lines)):
        line = lines[n]
        in_code = bool(stack) and stack[-1] == "code"
        m = COMMENT.match(line)
        if m and not in_code:
            if trailing_col is not None and len(m.group(1)) >= trailing_col - 1:
                out[n] = m.group(1) + "///< " + escape(m.group(2))  # continues a trailing one
                continue
            text = escape(m.group(2))
            out[n] = m.group(1) + "/// " + text
            pending = (pending + " " + text) if (pending is not None and not run_open) else text
            run_open = False
            continue
        trailing_col = None
        if not line.strip():
            pending, run_open = None, False
            cont = False
            continue
        if in_code or line.lstrip().startswith("#"):
            stack_change(stack, classes, access_public, line, in_code)
            continue
        code = line
        t = TRAILING.match(line)
        if t and not line.lstrip().startswith("}"):
            code = t.group(1)
            out[n] = t.group(1) + t.group(3) + "///< " + escape(t.group(4))
            trailing_col = len(t.group(1)) + len(t.group(3))
        a = ACCESS.match(code)
        if a:
            if access_public:
                access_public[-1] = a.group(1) == "public"
            pending, run_open = None, False
            continue
        starts_statement = not cont and not code.lstrip().startswith("}")
        own_doc = t is not None  # a member with its own trailing comment
        special = special_member(code, classes[-1]) if classes and access_public[-1] else None
        if starts_statement and pending is not None:
            if run_open and not own_doc:
                if special:
                    doc = special
                elif re.match(r"^\s*(static_assert|friend|using\s+\w+::)", code):
                    doc = None
                else:
                    doc = pending
                if doc:
                    out[n] = re.sub(r"^(\s*)", lambda g: g.group(1) + "/** " + doc + " */ ",
                                    out[n], count=1)
            run_open = True
        elif starts_statement and pending is None and special and not own_doc:
            out[n] = re.sub(r"^(\s*)", lambda g: g.group(1) + "/** " + special + " */ ", out[n],
                            count=1)
        base = INHERITED.search(code)
        if base and base.group(1) in BASES:
            out[n] += " " + inherited_members(os.path.dirname(path), base.group(1))
        depth = sum(k != "code" for k in stack)
        stack_change(stack, classes, access_public, code, False)
        if sum(k != "code" for k in stack) != depth:  # a class or namespace opened or closed
            pending, run_open = None, False
        stripped = code.split("//")[0].rstrip()
        cont = not (stripped.endswith(";") or stripped.endswith("{") or stripped.endswith("}")
                    or stripped.endswith(":"))
    if public:
        example = EXAMPLES.get(os.path.basename(path)) if name.count("/") == 1 else None
        if example is None:
            sys.exit(f"docs/api/filter.py: no example for {name} (add it to EXAMPLES)")
        out.append(f"/** \\file\n\\par Example\nexamples/{example}, built and run by the test "
                   f"suite (ctest):\n\\include {example}\n*/")
    return "\n".join(out)


def inherited_members(include_dir, base):
    """The public member functions of class template `base` (from its header), each as
    `/** its comment */ declaration;`, on one line (the line numbers of the including header stay
    those of its own lines)."""
    with open(os.path.join(include_dir, BASES[base]), encoding="utf-8") as f:
        lines = f.read().split("\n")
    start = next(i for i, l in enumerate(lines) if re.match(rf"^class {base}\b.*\{{", l))
    depth, public, doc, decl, members = 1, False, [], None, []
    for line in lines[start + 1:]:
        if depth == 1:
            a = ACCESS.match(line)
            if a:
                public, doc = a.group(1) == "public", []
                continue
            m = COMMENT.match(line)
            if m:
                doc.append(escape(m.group(2)))
                continue
            if not line.strip():
                doc = []
                continue
            if decl is None:
                decl = ""
            body = line.split("{")[0] if braces(line) > 0 else line
            decl += " " + body.strip()
        delta = braces(line)
        depth += delta
        if depth <= 0:
            break
        if depth == 1 and decl is not None and (line.rstrip().endswith(";") or delta < 0 or
                                                 (delta == 0 and line.rstrip().endswith("}"))):
            text = re.sub(r"\s+", " ", decl).strip().rstrip(";").strip()
            text = re.sub(r"\{.*$", "", text).strip()
            name = re.search(r"([~\w]+|operator\S+)\s*\(", text)
            if (public and doc and name and not text.startswith(("class ", "using ")) and
                    name.group(1) not in (base, "~" + base, "operator=")):
                members.append("/** " + " ".join(doc) + " */ " + text + ";")
            decl, doc = None, []
    return " ".join(members)


def stack_change(stack, classes, access_public, code, in_code):
    delta = braces(code)
    if delta > 0:
        for _ in range(delta):
            if in_code or (stack and stack[-1] == "code"):
                stack.append("code")
            elif (SCOPE_HEAD.match(code) and
                  not re.search(r"\)\s*(const\s*)?(noexcept\s*)?\{", code)):
                kind = "ns" if re.search(r"\bnamespace\b|extern", code) else "class"
                stack.append(kind)
                if kind == "class":
                    c = re.search(r"\b(class|struct|union)\s+(\[\[\w+\]\]\s+)?(MPP_API\s+)?(\w+)",
                                  code)
                    classes.append(c.group(4) if c else "")
                    access_public.append(not re.search(r"\bclass\b", code))
            else:
                stack.append("code")
    elif delta < 0:
        for _ in range(-delta):
            if stack:
                kind = stack.pop()
                if kind == "class":
                    classes.pop()
                    access_public.pop()


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: filter.py HEADER")
    with open(sys.argv[1], encoding="utf-8") as f:
        sys.stdout.write(filter_header(sys.argv[1], f.read()))
