#!/usr/bin/env python3
"""Checks of the generated MPI wrappers (src/crcp/gen_wrappers.py) on the built artifacts.

Run by ctest (tests/scripts/crcp_wrappers.cmake), one check per test:
  exports        every MPI_/MPIX_ function libmpi exports is defined, global and with default
                 visibility, exactly once, by the objects of ocr_crcp_wrappers; no PMPI_ is
  link           those objects plus test doubles of the core's hooks link into a shared
                 library with -z defs (the hook contract is complete) that exports them all
  custom_protos  every `custom` function of wrap_spec.txt has its ocr_crcp_ prototype in
                 crcp_custom.h, and nothing else does
  request_rule   the generator refuses a spec putting a REQUEST-carrying function in `local`
  unknown_name   the generator refuses a spec naming an unknown function
Exit 0 on success; otherwise one line per problem on stderr and exit 1.
"""

import argparse
import os
import re
import subprocess
import sys
import tempfile


def fail(lines):
    for line in lines:
        print(f"crcp_wrappers: {line}", file=sys.stderr)
    sys.exit(1)


def libmpi_exports(nm, libmpi):
    out = subprocess.run([nm, "-D", "--defined-only", libmpi], check=True,
                         capture_output=True, text=True).stdout
    names = set()
    for line in out.splitlines():
        f = line.split()
        if len(f) == 3 and f[1] in ("T", "W", "i") and re.match(r"MPIX?_\w+$", f[2]):
            names.add(f[2])
    return names


def defined_symbols(readelf, objects):
    """{name: [(bind, visibility)]} of the functions defined in the objects."""
    defs = {}
    for obj in objects:
        out = subprocess.run([readelf, "-sW", obj], check=True, capture_output=True,
                             text=True).stdout
        for line in out.splitlines():
            f = line.split()
            # Num: Value Size Type Bind Vis Ndx Name
            if len(f) == 8 and f[3] == "FUNC" and f[6] != "UND":
                defs.setdefault(f[7], []).append((f[4], f[5]))
    return defs


def spec_rows(spec):
    rows = []
    with open(spec, encoding="utf-8") as f:
        for text in f:
            text = text.split("#", 1)[0].split()
            if len(text) == 2:
                rows.append(tuple(text))
    return rows


def check_exports(a):
    exports = libmpi_exports(a.nm, a.libmpi)
    defs = defined_symbols(a.readelf, a.objects.split(";"))
    problems = []
    for name in sorted(exports):
        got = defs.get(name, [])
        if not got:
            problems.append(f"{name}: exported by {a.libmpi}, not defined by the wrappers")
        elif len(got) > 1:
            problems.append(f"{name}: defined {len(got)} times")
        elif got[0] != ("GLOBAL", "DEFAULT"):
            problems.append(f"{name}: defined {got[0][0]} {got[0][1]}, not GLOBAL DEFAULT")
    problems += [f"{n}: a PMPI_ name is defined (the wrappers must call libmpi's)"
                 for n in sorted(defs) if n.startswith("PMPI")]
    if problems:
        fail(problems)
    print(f"{len(exports)} exported MPI functions, all defined by the wrappers")


# Test doubles of the core's side of src/crcp/crcp_hooks.h (only linked, never run).
HOOK_DOUBLES = r"""
#include <stddef.h>
#include "crcp/crcp_hooks.h"
int ocr_crcp_ckpt_pending;
void ocr_crcp_safe_point_slow(void) {}
void ocr_crcp_coll_enter(MPI_Comm comm) { (void)comm; }
void ocr_crcp_coll_exit(MPI_Comm comm) { (void)comm; }
MPI_Request ocr_crcp_coll_request(MPI_Request real, MPI_Comm comm) { (void)comm; return real; }
void ocr_crcp_comm_created(MPI_Comm parent, MPI_Comm newcomm, int fn) {
  (void)parent; (void)newcomm; (void)fn;
}
void ocr_crcp_comm_freeing(MPI_Comm comm) { (void)comm; }
void ocr_crcp_replay_append(int fn, const void* record, size_t len) {
  (void)fn; (void)record; (void)len;
}
int ocr_crcp_unsupported(const char* name) { (void)name; return MPI_ERR_OTHER; }
"""


def check_link(a):
    with open(os.path.join(a.gendir, "crcp", "crcp_custom.h"), encoding="utf-8") as f:
        protos = re.findall(r"^int (ocr_crcp_MPI_\w+)\((.*)\);$", f.read(), re.M)
    # The core's custom functions as doubles: the prototypes with an empty body.
    doubles = HOOK_DOUBLES + '#include "crcp/crcp_custom.h"\n' + "".join(
        f"int {n}({params}) {{ return 0; }}\n" for n, params in protos)
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "doubles.c")
        lib = os.path.join(tmp, "libdoubles.so")
        with open(src, "w", encoding="utf-8") as f:
            f.write(doubles)
        cmd = [a.cc, "-shared", "-fPIC", "-Wl,-z,defs", "-o", lib, src,
               f"-I{a.gendir}", f"-I{os.path.dirname(a.srcdir)}"] + a.mpi_compile.split(";") + \
            a.objects.split(";") + [a.libmpi]
        r = subprocess.run([c for c in cmd if c], capture_output=True, text=True)
        if r.returncode != 0:
            fail(["link with test doubles failed: " + " ".join(cmd)] + r.stderr.splitlines())
        exported = libmpi_exports(a.nm, lib)
    missing = sorted(libmpi_exports(a.nm, a.libmpi) - exported)
    if missing:
        fail([f"{n}: not exported by a shared library built from the wrappers"
              for n in missing])
    print(f"linked with -z defs against {len(protos)} custom doubles; "
          f"{len(exported)} MPI functions exported")


def check_custom_protos(a):
    with open(os.path.join(a.gendir, "crcp", "crcp_custom.h"), encoding="utf-8") as f:
        declared = set(re.findall(r"\bocr_crcp_(MPI_\w+)\(", f.read()))
    custom = {n for n, c in spec_rows(a.spec) if c == "custom"}
    problems = [f"{n}: custom in wrap_spec.txt, no ocr_crcp_{n} in crcp_custom.h"
                for n in sorted(custom - declared)]
    problems += [f"{n}: declared in crcp_custom.h but not custom in wrap_spec.txt"
                 for n in sorted(declared - custom)]
    if problems:
        fail(problems)
    print(f"{len(custom)} custom functions, all declared")


def run_generator_on(a, edit):
    """Run the generator (check mode) on a copy of wrap_spec.txt changed by edit()."""
    with open(a.spec, encoding="utf-8") as f:
        text = edit(f.read())
    with tempfile.TemporaryDirectory() as tmp:
        spec = os.path.join(tmp, "wrap_spec.txt")
        with open(spec, "w", encoding="utf-8") as f:
            f.write(text)
        outdir = os.path.join(tmp, "out")
        r = subprocess.run([sys.executable, a.generator, "--apis", a.apis, "--spec", spec,
                            "--libmpi", a.libmpi, "--nm", a.nm, "--outdir", outdir],
                           capture_output=True, text=True)
        wrote = os.path.exists(outdir) and os.listdir(outdir)
    return r, wrote


def expect_refusal(a, edit, needles, what):
    r, wrote = run_generator_on(a, edit)
    problems = []
    if r.returncode == 0:
        problems.append(f"{what}: the generator accepted it")
    for needle in needles:
        if needle not in r.stderr:
            problems.append(f"{what}: message lacks '{needle}': {r.stderr.strip()!r}")
    if wrote:
        problems.append(f"{what}: the generator wrote output despite refusing the spec")
    if problems:
        fail(problems)
    print(f"{what}: refused: {r.stderr.strip()}")


def check_request_rule(a):
    def edit(text):
        new, n = re.subn(r"^MPI_Isend\s+custom\s*$", "MPI_Isend  local", text, flags=re.M)
        assert n == 1, "MPI_Isend custom not found in wrap_spec.txt"
        return new
    expect_refusal(a, edit, ["MPI_Isend", "REQUEST", "local"], "MPI_Isend as local")


def check_unknown_name(a):
    # A misspelt name (the real line stays, so nothing else changes).
    expect_refusal(a, lambda t: t + "\nMPI_Barier  collective\n",
                   ["MPI_Barier", "unknown function"], "unknown MPI_Barier")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("check", choices=["exports", "link", "custom_protos", "request_rule",
                                      "unknown_name"])
    ap.add_argument("--libmpi", required=True)
    ap.add_argument("--nm", default="nm")
    ap.add_argument("--readelf", default="readelf")
    ap.add_argument("--objects", default="", help="the objects of ocr_crcp_wrappers (;-list)")
    ap.add_argument("--gendir", help="the generated directory")
    ap.add_argument("--srcdir", help="src/crcp")
    ap.add_argument("--cc", default="cc")
    ap.add_argument("--mpi-compile", default="", help="MPI compile flags (;-list)")
    ap.add_argument("--generator")
    ap.add_argument("--apis")
    ap.add_argument("--spec")
    a = ap.parse_args()
    {"exports": check_exports, "link": check_link, "custom_protos": check_custom_protos,
     "request_rule": check_request_rule, "unknown_name": check_unknown_name}[a.check](a)


if __name__ == "__main__":
    main()
