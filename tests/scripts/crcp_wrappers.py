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
  proxy_set      crcp_proxy.h declares ocr_proxy_MPI_X for exactly the functions of the
                 proxy-mode rule (collective, collective_nb, comm_create, comm_free; query,
                 local and logged ones with an input communicator; MPI_Abort), each defined
                 once and WEAK by the objects, each called by its wrapper after the entry
                 hook and before PMPI_X (comm_free: before ocr_crcp_comm_freeing)
  proxy_dispatch a shared library of the objects, hook doubles in proxy mode and one strong
                 ocr_proxy_MPI_Barrier: MPI_Barrier reaches the strong one, MPI_Bcast,
                 MPI_Comm_rank on a proxy-born communicator and MPI_Abort the weak defaults
Exit 0 on success; otherwise one line per problem on stderr and exit 1.
"""

import argparse
import json
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
int ocr_crcp_proxied;
int ocr_crcp_proxy_born(MPI_Comm comm) { (void)comm; return 0; }
int ocr_crcp_unsupported_in_proxy(const char* name) { (void)name; return MPI_ERR_OTHER; }
"""


def custom_doubles(gendir):
    """(C source, count): the core's custom functions as doubles, the prototypes of
    crcp_custom.h with an empty body."""
    with open(os.path.join(gendir, "crcp", "crcp_custom.h"), encoding="utf-8") as f:
        protos = re.findall(r"^int (ocr_crcp_MPI_\w+)\((.*)\);$", f.read(), re.M)
    return '#include "crcp/crcp_custom.h"\n' + "".join(
        f"int {n}({params}) {{ return 0; }}\n" for n, params in protos), len(protos)


def check_link(a):
    customs, ncustom = custom_doubles(a.gendir)
    doubles = HOOK_DOUBLES + customs
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
    print(f"linked with -z defs against {ncustom} custom doubles; "
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


# ---- Proxy mode ------------------------------------------------------------------------------
# The rule of docs/wrappers.md ("Proxy mode"), written again from apis.json and wrap_spec.txt
# rather than taken from the generator.
PROXY_ALWAYS = ("collective", "collective_nb", "comm_create", "comm_free")
PROXY_BORN = ("query", "local", "logged")


def expected_proxy(a):
    """{name: category} of the functions that must have an ocr_proxy_ counterpart."""
    with open(a.apis, encoding="utf-8") as f:
        apis = {v["name"]: v for v in json.load(f).values()}
    want = {}
    for name, cat in spec_rows(a.spec):
        comms = [p for p in apis[name]["parameters"]
                 if p["kind"] == "COMMUNICATOR" and p["param_direction"] in ("in", "inout")
                 and "c_parameter" not in p["suppress"] and not p["large_only"]]
        if cat in PROXY_ALWAYS or (cat in PROXY_BORN and comms) or \
                (name == "MPI_Abort" and cat not in ("custom", "unsupported")):
            want[name] = cat
    return want


def wrapper_bodies(gendir):
    """{MPI_X: body text} of the wrappers in crcp_wrappers.c."""
    with open(os.path.join(gendir, "crcp_wrappers.c"), encoding="utf-8") as f:
        text = f.read()
    return {m.group(1): m.group(2) for m in
            re.finditer(r"^\w[\w ]*? (MPIX?_\w+)\([^)]*\) \{\n(.*?)^\}", text, re.M | re.S)}


def check_proxy_set(a):
    with open(os.path.join(a.gendir, "crcp", "crcp_proxy.h"), encoding="utf-8") as f:
        declared = set(re.findall(r"^\w+ ocr_proxy_(MPI_\w+)\(", f.read(), re.M))
    want = expected_proxy(a)
    problems = [f"{n} ({want[n]}): no ocr_proxy_{n} in crcp_proxy.h"
                for n in sorted(set(want) - declared)]
    problems += [f"{n}: ocr_proxy_{n} in crcp_proxy.h, but the proxy-mode rule does not "
                 "name it" for n in sorted(declared - set(want))]
    defs = defined_symbols(a.readelf, a.objects.split(";"))
    for n in sorted(declared):
        got = defs.get(f"ocr_proxy_{n}", [])
        if len(got) != 1 or got[0][0] != "WEAK":
            problems.append(f"ocr_proxy_{n}: defined {got or 'nowhere'} by the wrapper "
                            "objects, expected once and WEAK (the core overrides it)")
    problems += [f"{name}: a proxy function not declared in crcp_proxy.h"
                 for name in sorted(defs) if name.startswith("ocr_proxy_")
                 and name[len("ocr_proxy_"):] not in declared]
    bodies = wrapper_bodies(a.gendir)
    for n, cat in sorted(want.items()):
        body = bodies.get(n, "")
        call = body.find(f"return ocr_proxy_{n}(")
        test = body.rfind("if (__builtin_expect(ocr_crcp_proxied, 0)", 0, call)
        if call < 0 or test < 0:
            problems.append(f"{n}: its wrapper does not dispatch to ocr_proxy_{n}")
            continue
        born = "ocr_crcp_proxy_born(" in body[test:call]
        if born != (cat in PROXY_BORN and n != "MPI_Abort"):
            problems.append(f"{n} ({cat}): the dispatch {'tests' if born else 'skips'} "
                            "ocr_crcp_proxy_born")
        hook = {"collective": "ocr_crcp_coll_enter(", "collective_nb": "ocr_crcp_coll_enter(",
                "comm_create": "ocr_crcp_coll_enter(", "comm_free": "ocr_crcp_safe_point();",
                "local": "ocr_crcp_safe_point();", "logged": "ocr_crcp_safe_point();"}.get(cat)
        if hook and not 0 <= body.find(hook) < test:
            problems.append(f"{n}: the dispatch is not after {hook.rstrip('(;')}")
        for later in (f"P{n}(", "ocr_crcp_comm_freeing(", "ocr_crcp_replay_append(",
                      "ocr_rec_init("):
            if 0 <= body.find(later) < call:
                problems.append(f"{n}: {later.rstrip('(')} before the dispatch")
    problems += [f"{n}: its wrapper calls ocr_proxy_ but the rule does not name it"
                 for n, body in sorted(bodies.items()) if n not in want and "ocr_proxy_" in body]
    if problems:
        fail(problems)
    counts = {c: sum(v == c for v in want.values()) for c in PROXY_ALWAYS + PROXY_BORN}
    print(f"{len(want)} ocr_proxy_ functions, all WEAK and dispatched: " +
          " ".join(f"{c}={n}" for c, n in counts.items()))


# Proxy mode switched on; MPI_COMM_SELF plays a communicator created after the restart.
PROXY_DOUBLES = HOOK_DOUBLES.replace("int ocr_crcp_proxied;", "int ocr_crcp_proxied = 1;") \
    .replace("int ocr_crcp_proxy_born(MPI_Comm comm) { (void)comm; return 0; }",
             "int ocr_crcp_proxy_born(MPI_Comm comm) { return comm == MPI_COMM_SELF; }") \
    .replace("int ocr_crcp_unsupported_in_proxy(const char* name) { (void)name; "
             "return MPI_ERR_OTHER; }",
             "const char* ocr_test_unsupported;\n"
             "int ocr_crcp_unsupported_in_proxy(const char* name) {\n"
             "  ocr_test_unsupported = name;\n  return 77;\n}")
# What the core would do: an ordinary definition in another object of the library.
PROXY_STRONG = r"""
#include "crcp/crcp_proxy.h"
int ocr_proxy_MPI_Barrier(MPI_Comm comm) { (void)comm; return 4242; }
"""
PROXY_MAIN = r"""
#include <stdio.h>
#include <string.h>
#include <mpi.h>
extern const char* ocr_test_unsupported;
static int bad;
static void expect(const char* what, int rc, int want, const char* name) {
  const char* got = ocr_test_unsupported ? ocr_test_unsupported : "(none)";
  if (rc != want || (name && strcmp(got, name) != 0)) {
    printf("%s: rc %d (want %d), unsupported_in_proxy saw %s (want %s)\n", what, rc, want,
           got, name ? name : "-");
    bad = 1;
  }
  ocr_test_unsupported = NULL;
}
int main(void) {
  int x = 0, r = -1;
  expect("MPI_Barrier -> strong ocr_proxy_MPI_Barrier", MPI_Barrier(MPI_COMM_WORLD), 4242,
         "(none)");
  expect("MPI_Bcast -> weak default", MPI_Bcast(&x, 1, MPI_INT, 0, MPI_COMM_WORLD), 77,
         "MPI_Bcast");
  expect("MPI_Comm_rank(born comm) -> weak default", MPI_Comm_rank(MPI_COMM_SELF, &r), 77,
         "MPI_Comm_rank");
  expect("MPI_Abort -> weak default", MPI_Abort(MPI_COMM_WORLD, 3), 77, "MPI_Abort");
  return bad;
}
"""


def check_proxy_dispatch(a):
    mpi = [f for f in a.mpi_compile.split(";") if f]
    inc = [f"-I{a.gendir}", f"-I{os.path.dirname(a.srcdir)}"] + mpi
    with tempfile.TemporaryDirectory() as tmp:
        files = {"doubles.c": PROXY_DOUBLES + custom_doubles(a.gendir)[0], "strong.c": PROXY_STRONG, "main.c": PROXY_MAIN}
        for name, text in files.items():
            with open(os.path.join(tmp, name), "w", encoding="utf-8") as f:
                f.write(text)
        lib = os.path.join(tmp, "libproxytest.so")
        exe = os.path.join(tmp, "proxytest")
        steps = [
            [a.cc, "-shared", "-fPIC", "-Wl,-z,defs", "-o", lib,
             os.path.join(tmp, "doubles.c"), os.path.join(tmp, "strong.c")] + inc +
            a.objects.split(";") + [a.libmpi],
            [a.cc, "-o", exe, os.path.join(tmp, "main.c")] + mpi +
            [lib, f"-Wl,-rpath,{tmp}", a.libmpi],
        ]
        for cmd in steps:
            r = subprocess.run(cmd, capture_output=True, text=True)
            if r.returncode != 0:
                fail(["build failed: " + " ".join(cmd)] + r.stderr.splitlines())
        out = subprocess.run([a.nm, "-D", "--defined-only", lib], check=True,
                             capture_output=True, text=True).stdout
        binds = {f[2]: f[1] for f in (line.split() for line in out.splitlines()) if len(f) == 3}
        problems = []
        if binds.get("ocr_proxy_MPI_Barrier") != "T":
            problems.append(f"ocr_proxy_MPI_Barrier is "
                            f"{binds.get('ocr_proxy_MPI_Barrier')!r} in the library, want "
                            "'T' (the strong definition wins)")
        if binds.get("ocr_proxy_MPI_Bcast") != "W":
            problems.append(f"ocr_proxy_MPI_Bcast is {binds.get('ocr_proxy_MPI_Bcast')!r} "
                            "in the library, want 'W' (the weak default)")
        r = subprocess.run([exe], capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            problems += [f"proxytest exited {r.returncode}"] + r.stdout.splitlines() + \
                r.stderr.splitlines()
    if problems:
        fail(problems)
    print("proxy mode: MPI_Barrier reached the strong ocr_proxy_MPI_Barrier; MPI_Bcast, "
          "MPI_Comm_rank (born comm), MPI_Abort reached their weak defaults")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("check", choices=["exports", "link", "custom_protos", "request_rule",
                                      "unknown_name", "proxy_set", "proxy_dispatch"])
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
     "request_rule": check_request_rule, "unknown_name": check_unknown_name,
     "proxy_set": check_proxy_set, "proxy_dispatch": check_proxy_dispatch}[a.check](a)


if __name__ == "__main__":
    main()
