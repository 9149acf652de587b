#!/usr/bin/env python3
"""Checks that the API reference lists every public name of mpp's public headers.

    check_index.py ROOT XML_DIR

The names come from the compiler, not from doxygen: libclang (Debian's python3-clang-14) parses
include/mpp/*.hpp and lists what they declare outside detail namespaces: classes, functions,
members with public access (a class's own, and those of a detail:: base that holds its calls,
such as Pool's map), fields, constants, type aliases, enumerators and macros. Each must be in
doxygen's index (XML_DIR/index.xml) as a compound or as a member of its class, namespace or
file. Prints what is missing and exits 1 if anything is; prints the count otherwise.
"""
import glob
import os
import sys
import xml.etree.ElementTree as ET

try:
    import clang.cindex as ci
except ImportError:
    sys.path.append("/usr/lib/python3/dist-packages")
    import clang.cindex as ci

K = ci.CursorKind
CLASSES = {K.CLASS_DECL, K.STRUCT_DECL, K.CLASS_TEMPLATE, K.UNION_DECL}
MEMBERS = {K.FUNCTION_DECL, K.FUNCTION_TEMPLATE, K.CXX_METHOD, K.CONSTRUCTOR, K.DESTRUCTOR,
           K.FIELD_DECL, K.VAR_DECL, K.TYPE_ALIAS_DECL, K.TYPEDEF_DECL, K.ENUM_DECL,
           K.ENUM_CONSTANT_DECL, K.CONVERSION_FUNCTION}


def load_libclang():
    for lib in sorted(glob.glob("/usr/lib/llvm-*/lib/libclang.so*")) + \
            sorted(glob.glob("/usr/lib/x86_64-linux-gnu/libclang-*.so*")):
        try:
            ci.Config.set_library_file(lib)
            ci.Index.create()
            return
        except Exception:  # noqa: BLE001 - try the next one
            ci.Config.loaded = False
    sys.exit("check_index.py: no libclang found (apt-get install python3-clang-14)")


def public_names(root):
    include = os.path.join(root, "include")
    headers = sorted(glob.glob(os.path.join(include, "mpp", "*.hpp")))
    source = "".join(f'#include "{h}"\n' for h in headers)
    index = ci.Index.create()
    tu = index.parse("all.cpp", args=["-x", "c++", "-std=c++20", "-I" + include],
                     unsaved_files=[("all.cpp", source)],
                     options=ci.TranslationUnit.PARSE_DETAILED_PROCESSING_RECORD |
                     ci.TranslationUnit.PARSE_SKIP_FUNCTION_BODIES)
    errors = [d for d in tu.diagnostics if d.severity >= ci.Diagnostic.Error]
    if errors:
        sys.exit("check_index.py: the headers do not parse:\n" + "\n".join(map(str, errors)))
    public_files = {os.path.realpath(h) for h in headers}
    names = set()

    def in_public_header(c):
        return c.location.file and os.path.realpath(c.location.file.name) in public_files

    def walk(cursor, scope, cls):
        for c in cursor.get_children():
            if c.kind == K.MACRO_DEFINITION:
                if in_public_header(c) and not c.spelling.startswith("MPP_MPI_DETAIL_"):
                    names.add(c.spelling)
                continue
            if c.kind == K.NAMESPACE:
                if c.spelling != "detail":
                    walk(c, scope + [c.spelling], None)
                continue
            if not in_public_header(c) or not scope or scope[0] != "mpp":
                continue
            if cls is not None and c.access_specifier != ci.AccessSpecifier.PUBLIC:
                continue
            if c.kind in CLASSES and c.spelling:
                if not c.is_definition():
                    continue  # a forward declaration (e.g. of a pimpl) documents nothing
                qual = "::".join(scope + [c.spelling])
                names.add(qual)
                walk(c, scope + [c.spelling], qual)
                for base in c.get_children():
                    if base.kind == K.CXX_BASE_SPECIFIER:
                        inherited(base, qual)
            elif c.kind in MEMBERS and c.spelling:
                # A class template's constructor is spelled Array<T>: doxygen says Array.
                spelling = c.spelling.split("<")[0] if c.kind == K.CONSTRUCTOR else c.spelling
                names.add("::".join(scope + [spelling]))
                if c.kind == K.ENUM_DECL:
                    walk(c, scope + [c.spelling], "enum")

    def inherited(base, qual):
        decl = base.referenced
        if decl is None:
            return
        decl = decl.get_definition() or decl
        if decl.kind == K.CLASS_DECL and decl.get_num_template_arguments() > 0:
            template = ci.conf.lib.clang_getSpecializedCursorTemplate(decl)
            decl = template or decl
        parent = decl.semantic_parent
        if parent is None or parent.spelling != "detail":
            return
        for m in decl.get_children():
            if (m.kind in (K.CXX_METHOD, K.FUNCTION_TEMPLATE) and
                    m.access_specifier == ci.AccessSpecifier.PUBLIC and
                    m.spelling != "operator="):  # constructors and assignments are not inherited
                names.add(qual + "::" + m.spelling)

    walk(tu.cursor, [], None)
    return names


def indexed_names(xml_dir):
    tree = ET.parse(os.path.join(xml_dir, "index.xml"))
    names = set()
    for compound in tree.getroot().iter("compound"):
        cname = compound.findtext("name")
        names.add(cname)
        for member in compound.iter("member"):
            mname = member.findtext("name")
            if compound.get("kind") == "file" or member.get("kind") == "define":
                names.add(mname)
            names.add(cname + "::" + mname)
            if member.get("kind") == "enumvalue":
                names.add(cname + "::" + mname)
    return names


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: check_index.py ROOT XML_DIR")
    load_libclang()
    want = public_names(sys.argv[1])
    have = indexed_names(sys.argv[2])
    missing = sorted(n for n in want if n not in have and n.replace("::~", "::") not in have)
    if missing:
        print("check_index.py: public names missing from the API reference's index:")
        for n in missing:
            print("  " + n)
        return 1
    print(f"check_index.py: all {len(want)} public names of include/mpp/*.hpp are in the index")
    return 0


if __name__ == "__main__":
    sys.exit(main())
