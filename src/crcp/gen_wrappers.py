#!/usr/bin/env python3
"""gen_wrappers.py: build-time generator of the C MPI wrappers of ompi-cr's CRCP layer.

Reads the MPI Forum's machine-readable API (spec/apis.json) and our per-function decisions
(spec/wrap_spec.txt), looks at what the installed libmpi exports (nm -D), and writes:

  crcp_wrappers.c    one `MPI_X(...)` per function of wrap_spec.txt, body by category
                     (crcp_hooks.h), plus ocr_crcp_fn_name()
  crcp/crcp_custom.h prototypes of ocr_crcp_MPI_X() for the `custom` category
  crcp/crcp_fn_ids.h enum OCR_FN_MPI_X (ids from the sorted list of names)
  crcp/crcp_proxy.h  prototypes of ocr_proxy_MPI_X(), where a restored rank (proxy mode,
                     crcp_hooks.h) dispatches; crcp_wrappers.c also defines each of them
                     weak (the default the core's strong definitions override)
                     (headers under crcp/: the core includes them as "crcp/...", like
                     the hand-written headers of src/crcp)
  crcp_unwrapped.c   `int MPI_X(void)` abort stubs for every exported MPI_/MPIX_ symbol
                     that wrap_spec.txt does not name (no mpi.h: such names may not be
                     declared there, or declared as removed)

Every check runs before anything is written: a refused spec leaves no partial output.
Python 3 standard library only. Documentation: docs/wrappers.md.
"""

import argparse
import json
import os
import re
import subprocess
import sys

CATEGORIES = (
    "query",
    "local",
    "logged",
    "collective",
    "collective_nb",
    "comm_create",
    "comm_free",
    "custom",
    "unsupported",
)

# A call carrying a request or a message handle touches the virtual requests of the core;
# only the core (custom), the nonblocking-collective path or an abort may handle it.
REQUEST_CATEGORIES = ("custom", "collective_nb", "unsupported")

# Proxy mode (crcp_hooks.h; docs/wrappers.md, "Proxy mode"): in a restored rank these
# categories always go to ocr_proxy_MPI_X (they communicate or make communicators) ...
PROXY_ALWAYS_CATEGORIES = ("collective", "collective_nb", "comm_create", "comm_free")
# ... these only when one of their input communicators was created after the restart (the
# old library still answers for everything else: local objects, pre-checkpoint comms) ...
PROXY_BORN_CATEGORIES = ("query", "local", "logged")
# ... and these always, whatever their category (the old library is no longer part of the job).
PROXY_ALWAYS_FUNCTIONS = ("MPI_Abort",)

# ---- C rendering of apis.json parameter kinds ---------------------------------------------
# apis.json describes each parameter by a semantic kind; the ISO C type follows from the kind
# (the "small", i.e. non-large-count, binding: Open MPI 4.1 has no MPI-4 `_c` functions).
# The table and the pointer/array rules below follow the MPI Forum's pympistandard (isoc.py,
# _kinds.py). A kind not listed here is an error, never a guess.
HANDLE_TYPES = {
    "COMMUNICATOR": "MPI_Comm",
    "DATATYPE": "MPI_Datatype",
    "ERRHANDLER": "MPI_Errhandler",
    "FILE": "MPI_File",
    "GROUP": "MPI_Group",
    "INFO": "MPI_Info",
    "MESSAGE": "MPI_Message",
    "OPERATION": "MPI_Op",
    "REQUEST": "MPI_Request",
    "SESSION": "MPI_Session",
    "WINDOW": "MPI_Win",
    "CVAR": "MPI_T_cvar_handle",
    "PVAR": "MPI_T_pvar_handle",
    "PVAR_SESSION": "MPI_T_pvar_session",
    "TOOLS_ENUM": "MPI_T_enum",
    "EVENT_REGISTRATION": "MPI_T_event_registration",
    "EVENT_INSTANCE": "MPI_T_event_instance",
}
AINT_KINDS = {
    "ALLOC_MEM_NUM_BYTES", "DISPLACEMENT", "DISPLACEMENT_NNI", "WINDOW_SIZE",
    "WIN_ATTACH_SIZE", "LOCATION_SMALL", "POLYLOCATION", "STRIDE_BYTES", "PACK_EXTERNAL_SIZE",
    "RMA_DISPLACEMENT", "RMA_DISPLACEMENT_NNI", "DISPOFFSET_SMALL", "POLYDISPOFFSET",
    "DTYPE_STRIDE_BYTES_SMALL", "POLYDTYPE_STRIDE_BYTES", "DISPLACEMENT_AINT_COUNT_SMALL",
    "POLYDISPLACEMENT_AINT_COUNT", "DTYPE_PACK_SIZE_SMALL", "POLYDTYPE_PACK_SIZE",
}
COUNT_KINDS = {
    "NUM_BYTES", "NUM_BYTES_NNI", "DTYPE_NUM_ELEM", "DTYPE_NUM_ELEM_NNI", "DTYPE_NUM_ELEM_PI",
    "XFER_NUM_ELEM", "XFER_NUM_ELEM_NNI", "GENERIC_DTYPE_COUNT", "TOOLS_TICK_COUNT",
    "DROPPED_COUNT", "DISPOFFSET", "LOCATION", "NUM_PARAM_VALUES", "DISPLACEMENT_COUNT",
    "DISPLACEMENT_AINT_COUNT", "DTYPE_STRIDE_BYTES", "DTYPE_PACK_SIZE", "TOOLS_NUM_ELEM",
}
INT_KINDS = {
    "ACCESS_MODE", "ARGUMENT_COUNT", "ARRAY_LENGTH", "ARRAY_LENGTH_NNI", "ARRAY_LENGTH_PI",
    "ASSERT", "BIND_TYPE", "BLOCKLENGTH", "CAT_INDEX", "COLOR", "COMBINER", "COMM_COMPARISON",
    "COMM_SIZE", "COMM_SIZE_PI", "COORDINATE", "COORDINATE_NNI", "CVAR_INDEX",
    "CVAR_INDEX_SPECIAL", "DEGREE", "DIMENSION", "DISPLACEMENT_COUNT_SMALL",
    "DISPLACEMENT_SMALL", "DISTRIB_ENUM", "DTYPE_DISTRIBUTION", "DTYPE_NUM_ELEM_NNI_SMALL",
    "DTYPE_NUM_ELEM_PI_SMALL", "DTYPE_NUM_ELEM_SMALL", "ENUM", "ERROR_CLASS", "ERROR_CODE",
    "ERROR_CODE_SHOW_INTENT", "EVENT_INDEX", "FILE_DESCRIPTOR", "GENERIC_DTYPE_INT",
    "GROUP_COMPARISON", "INDEX", "INFO_VALUE_LENGTH", "INTEGER", "KEY", "KEYVAL",
    "KEY_INDEX", "LOCK_TYPE", "LOGICAL", "LOGICAL_BOOLEAN", "LOGICAL_OPTIONAL", "MATH",
    "NUM_BYTES_NNI_SMALL", "NUM_BYTES_SMALL", "NUM_DIMS", "NUM_PARAM_VALUES_SMALL", "ORDER",
    "PARTITION", "POLYDISPLACEMENT", "POLYDISPLACEMENT_COUNT", "POLYDTYPE_NUM_ELEM",
    "POLYDTYPE_NUM_ELEM_NNI", "POLYDTYPE_NUM_ELEM_PI", "POLYNUM_BYTES", "POLYNUM_BYTES_NNI",
    "POLYNUM_PARAM_VALUES", "POLYRMA_DISPLACEMENT", "POLYRMA_DISPLACEMENT_NNI",
    "POLYTOOLS_NUM_ELEM", "POLYXFER_NUM_ELEM", "POLYXFER_NUM_ELEM_NNI", "PROCESS_GRID_SIZE",
    "PROFILE_LEVEL", "PVAR_CLASS", "PVAR_INDEX", "RANK", "RANK_NNI",
    "RMA_DISPLACEMENT_NNI_SMALL", "RMA_DISPLACEMENT_SMALL", "SOURCE_INDEX", "SPLIT_TYPE",
    "STRIDE_ELEM", "STRING_LENGTH", "TAG", "THREAD_LEVEL", "TOOLENUM_INDEX", "TOOLENUM_SIZE",
    "TOOLS_NUM_ELEM_SMALL", "TOOL_VAR_VALUE", "TOOL_VAR_VERBOSITY", "TOPOLOGY_TYPE",
    "TYPECLASS", "TYPECLASS_SIZE", "UPDATE_MODE", "UPDATE_NUMBER", "VARIABLE_SCOPE",
    "VERSION", "WEIGHT", "XFER_NUM_ELEM_NNI_SMALL", "XFER_NUM_ELEM_SMALL",
}
# Kinds passed as an untyped address (void *): buffers, attribute values, extra state.
VOID_KINDS = {
    "BUFFER", "C_BUFFER", "C_BUFFER2", "C_BUFFER3", "C_BUFFER4", "EXTRA_STATE",
    "EXTRA_STATE2", "ATTRIBUTE_VAL", "ATTRIBUTE_VAL_10", "TOOL_MPI_OBJ",
}
OTHER_TYPES = {
    "STRING": "char", "STRING_ARRAY": "char", "STRING_2DARRAY": "char", "ARGUMENT_LIST": "char",
    "STATUS": "MPI_Status", "F08_STATUS": "MPI_F08_status", "OFFSET": "MPI_Offset",
    "WALL_TIME": "double", "TICK_RESOLUTION": "double", "NOTHING": "void",
    "SOURCE_ORDERING": "MPI_T_source_order", "CALLBACK_SAFETY": "MPI_T_cb_safety",
    "EVENT_CB_FUNCTION": "MPI_T_event_cb_function",
    "EVENT_FREE_CB_FUNCTION": "MPI_T_event_free_cb_function",
    "EVENT_DROP_CB_FUNCTION": "MPI_T_event_dropped_cb_function",
}
FUNCTION_KINDS = {"FUNCTION", "FUNCTION_SMALL", "POLYFUNCTION"}
# Kinds rendered with one level of pointer whatever their direction (pympistandard rule).
ALWAYS_POINTER_KINDS = VOID_KINDS | FUNCTION_KINDS | {
    "STRING", "STRING_ARRAY", "STATUS", "F08_STATUS", "F90_STATUS"}

# Where Open MPI 4.1.4's mpi.h differs from the C binding apis.json (MPI-4.x) describes.
# Keyed by (function, parameter): the full C declaration of that parameter as mpi.h has
# it. Without an entry here a mismatch is a compile error of crcp_wrappers.c (it includes
# mpi.h), so this table only ever grows by what the compiler proved. See docs/wrappers.md.
PARAM_OVERRIDES = {}

# Array lengths apis.json gives as '*' (or an expression, not a parameter name), for the
# functions whose arguments are serialized (logged, comm_create): a C expression on the
# wrapper's parameters. A '*' without an entry is a generator error.
LENGTH_OVERRIDES = {
    # The number of dimensions of the Cartesian communicator.
    ("MPI_Cart_sub", "remain_dims"): "ocr_cartdim(comm)",
    # index[nnodes-1] is the total number of edges.
    ("MPI_Graph_create", "edges"): "(nnodes > 0 ? index[nnodes - 1] : 0)",
    ("MPI_Dist_graph_create", "destinations"): "ocr_sum(degrees, n)",
    ("MPI_Dist_graph_create", "weights"): "ocr_sum(degrees, n)",
    ("MPI_Dist_graph_create_adjacent", "sourceweights"): "indegree",
    ("MPI_Dist_graph_create_adjacent", "destweights"): "outdegree",
    # Outputs: only the first num_* entries (MPI_Type_get_envelope) are written by the
    # library; the rest of the caller's max_* arrays is not data.
    ("MPI_Type_get_contents", "array_of_integers"): "ocr_envelope(datatype, 0)",
    ("MPI_Type_get_contents", "array_of_addresses"): "ocr_envelope(datatype, 1)",
    ("MPI_Type_get_contents", "array_of_datatypes"): "ocr_envelope(datatype, 2)",
}


class SpecError(Exception):
    """A refused input: reported as one line per problem and a non-zero exit."""


def c_base_type(fn, p):
    kind = p["kind"]
    if kind in FUNCTION_KINDS:
        return p["func_type"]
    if kind in HANDLE_TYPES:
        return HANDLE_TYPES[kind]
    if kind in AINT_KINDS:
        return "MPI_Aint"
    if kind in COUNT_KINDS:
        return "MPI_Count"
    if kind in INT_KINDS:
        return "int"
    if kind in VOID_KINDS:
        return "void"
    if kind.startswith("F90_"):
        return "MPI_Fint"
    if kind in OTHER_TYPES:
        return OTHER_TYPES[kind]
    raise SpecError(f"{fn}: parameter {p['name']} has kind {kind} with no C type in "
                    "gen_wrappers.py (add it to the kind tables)")


def pointer_level(p):
    """Number of '*' after the base type (pympistandard's ISO C rule)."""
    if p["pointer"] is not None and not p["pointer"]:
        return 0
    kind = p["kind"]
    if kind == "STRING_2DARRAY":
        return 2
    if kind == "ARGUMENT_LIST":
        return 3
    if kind == "STRING" and p["length"] == "*" and not p["pointer"]:
        return 0
    if kind in ALWAYS_POINTER_KINDS:
        return 1
    if (p["param_direction"] in ("out", "inout") or p["pointer"]) and p["length"] is None:
        return 1
    return 0


def array_suffix(p):
    kind, length = p["kind"], p["length"]
    if kind == "C_BUFFER4":
        return ""
    if kind == "STRING" and length == "*" and not p["pointer"]:
        return "[]"
    if kind in ("STRING_ARRAY", "STRING_2DARRAY"):
        return "[]"
    if isinstance(length, list):
        return f"[][{length[1]}]"
    if kind != "STRING" and length is not None and not p["pointer"]:
        return "[]"
    return ""


class Param:
    """One C parameter of a wrapped function: apis.json data plus its C rendering."""

    def __init__(self, fn, p):
        self.raw = p
        self.name = p["name"]
        self.kind = p["kind"]
        self.direction = p["param_direction"]
        self.length = p["length"]
        if self.kind == "VARARGS":
            self.decl = "..."
            self.ptr = 0
            self.array = ""
            self.base = "..."
            return
        self.base = c_base_type(fn, p)
        self.ptr = pointer_level(p)
        self.array = array_suffix(p)
        const = "const " if p["constant"] else ""
        self.decl = f"{const}{self.base} {'*' * self.ptr}{self.name}{self.array}"
        if (fn, self.name) in PARAM_OVERRIDES:
            self.decl = PARAM_OVERRIDES[(fn, self.name)]

    @property
    def is_array(self):
        return self.array != ""

    @property
    def is_varargs(self):
        return self.kind == "VARARGS"


def c_return_type(fn, entry):
    kind = entry["return_kind"]
    if kind in ("ERROR_CODE", "ERROR_CLASS"):
        return "int"
    return c_base_type(fn, {"kind": kind, "name": "(return)", "func_type": ""})


class Function:
    def __init__(self, entry, category, line):
        self.name = entry["name"]
        self.category = category
        self.line = line
        self.ret = c_return_type(self.name, entry)
        # Parameters of the C binding: Fortran-only ones (ierror, ...) are suppressed, the
        # large-count-only ones belong to the `_c` variants Open MPI 4.1 lacks.
        self.params = [Param(self.name, p) for p in entry["parameters"]
                       if "c_parameter" not in p["suppress"] and not p["large_only"]]

    def param_list(self):
        return ", ".join(p.decl for p in self.params) if self.params else "void"

    def call_args(self, replace=None):
        replace = replace or {}
        return ", ".join(replace.get(p.name, p.name) for p in self.params if not p.is_varargs)

    def kinds(self):
        return {p.kind for p in self.params}

    def proxy_comms(self):
        """The in/inout COMMUNICATOR parameters a proxied call tests with
        ocr_crcp_proxy_born() (their value on entry: *c for an inout one)."""
        return [p.name if p.ptr == 0 else f"*{p.name}" for p in self.params
                if p.kind == "COMMUNICATOR" and p.direction in ("in", "inout")
                and not p.is_array and p.ptr <= 1]

    @property
    def proxy(self):
        """None, "always" (dispatch whenever proxied) or "born" (only for a communicator
        created after the restart): see PROXY_* above. Never for custom (the core handles
        proxy mode itself) nor unsupported (aborts either way)."""
        if self.category in ("custom", "unsupported"):
            return None
        if self.name in PROXY_ALWAYS_FUNCTIONS or self.category in PROXY_ALWAYS_CATEGORIES:
            return "always"
        if self.category in PROXY_BORN_CATEGORIES and self.proxy_comms():
            return "born"
        return None

    def first(self, kind, directions):
        for p in self.params:
            if p.kind == kind and p.direction in directions and not p.is_array:
                return p
        return None


# ---- Inputs ---------------------------------------------------------------------------------
def read_apis(path):
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    # Callback typedefs and predefined callbacks (MPI_COMM_DUP_FN, ...) are not procedures
    # an application calls through us: leave them out.
    return {v["name"]: v for v in data.values()
            if not v["attributes"]["callback"] and not v["attributes"]["predefined_function"]}


def read_exports(libmpi, nm):
    """MPI_/MPIX_ function symbols the installed library defines (T, W, i in nm -D)."""
    try:
        out = subprocess.run([nm, "-D", "--defined-only", libmpi], check=True,
                             capture_output=True, text=True).stdout
    except OSError as e:
        raise SpecError(f"cannot run {nm}: {e}")
    except subprocess.CalledProcessError as e:
        why = (e.stderr or "").strip().splitlines()
        raise SpecError(f"cannot list the symbols of {libmpi} with {nm}: "
                        f"{why[0] if why else e}")
    names = set()
    for line in out.splitlines():
        fields = line.split()
        if len(fields) == 3 and fields[1] in ("T", "W", "i") and \
                re.match(r"MPIX?_\w+$", fields[2]):
            names.add(fields[2])
    if not names:
        raise SpecError(f"{libmpi}: no MPI_ function symbols (is it libmpi?)")
    return names


def read_spec(path):
    """[(name, category, line)] of wrap_spec.txt; format errors are SpecErrors."""
    rows, errors = [], []
    with open(path, encoding="utf-8") as f:
        for no, text in enumerate(f, 1):
            text = text.split("#", 1)[0].strip()
            if not text:
                continue
            fields = text.split()
            if len(fields) != 2:
                errors.append(f"{path}:{no}: expected 'MPI_Name  category', got '{text}'")
                continue
            name, cat = fields
            if cat not in CATEGORIES:
                errors.append(f"{path}:{no}: {name}: unknown category '{cat}' (one of: "
                              f"{', '.join(CATEGORIES)})")
                continue
            rows.append((name, cat, no))
    if errors:
        raise SpecError("\n".join(errors))
    return rows


def check(spec_path, rows, apis, exports):
    """All the rules of wrap_spec.txt; returns the Functions to wrap."""
    errors, funcs, seen = [], [], {}
    for name, cat, no in rows:
        where = f"{spec_path}:{no}: {name}"
        if name in seen:
            errors.append(f"{where}: listed twice (first at line {seen[name]})")
            continue
        seen[name] = no
        if name not in apis:
            errors.append(f"{where}: unknown function (not a procedure of apis.json)")
            continue
        if name not in exports:
            errors.append(f"{where}: not provided by the installed libmpi (MPI-4 only?): "
                          "remove the line")
            continue
        try:
            fn = Function(apis[name], cat, no)
        except SpecError as e:
            errors.append(f"{where}: {e}")
            continue
        errors.extend(f"{where}: {msg}" for msg in category_problems(fn))
        funcs.append(fn)
    missing = sorted(n for n in apis if n in exports and n not in seen)
    if missing:
        errors.append(f"{spec_path}: functions the installed libmpi provides are not "
                      f"categorized (add a line for each): {' '.join(missing)}")
    if errors:
        raise SpecError("\n".join(errors))
    return funcs


def category_problems(fn):
    """Why fn cannot have its category (empty when it can)."""
    problems = []
    kinds = fn.kinds()
    if ({"REQUEST", "MESSAGE"} & kinds) and fn.category not in REQUEST_CATEGORIES:
        which = "/".join(sorted({"REQUEST", "MESSAGE"} & kinds))
        problems.append(f"has a {which} parameter, so it must be one of "
                        f"{', '.join(REQUEST_CATEGORIES)}, not {fn.category}")
    if fn.category in ("collective", "collective_nb", "comm_create") and \
            not fn.first("COMMUNICATOR", ("in",)):
        problems.append(f"{fn.category} needs an input COMMUNICATOR parameter")
    if fn.category == "collective_nb" and not fn.first("REQUEST", ("out",)):
        problems.append("collective_nb needs an output REQUEST parameter")
    if fn.category == "comm_create" and not fn.first("COMMUNICATOR", ("out",)):
        problems.append("comm_create needs an output COMMUNICATOR parameter")
    if fn.category == "comm_free" and not fn.first("COMMUNICATOR", ("inout",)):
        problems.append("comm_free needs an inout COMMUNICATOR parameter")
    if fn.category != "unsupported" and fn.ret not in ("int", "double") and \
            fn.category != "query":
        problems.append(f"returns {fn.ret}: only query or unsupported can wrap it")
    if any(p.is_varargs for p in fn.params) and fn.category not in ("query", "unsupported"):
        problems.append("is variadic: only query (arguments dropped) or unsupported")
    if fn.category in PROXY_BORN_CATEGORIES and any(
            p.kind == "COMMUNICATOR" and p.direction in ("in", "inout") and
            (p.is_array or p.ptr > 1) for p in fn.params):
        problems.append("has an array of input communicators: proxy mode cannot test them "
                        "with ocr_crcp_proxy_born (make it custom)")
    if fn.proxy and any(p.is_varargs for p in fn.params):
        problems.append("is variadic and takes a communicator: proxy mode cannot forward it "
                        "(make it custom)")
    if fn.category in ("logged", "comm_create"):
        for p in fn.params:
            try:
                Serializer.plan(fn, p)
            except SpecError as e:
                problems.append(str(e))
    return problems


# ---- Replay records -----------------------------------------------------------------------
class Serializer:
    """C statements appending one parameter to a replay record (layout: docs/wrappers.md).

    Integers of any width become int64 LE, handles uint64 of the handle value, addresses
    (buffers, attribute values, extra state, function pointers) uint64, strings a uint64
    length then the bytes, arrays a uint64 element count then the elements (2-D arrays:
    the row count, then rows x columns elements, row-major)."""

    @staticmethod
    def scalar_kind(p):
        if p.kind in HANDLE_TYPES:
            return "handle"
        if p.kind in VOID_KINDS or p.kind in FUNCTION_KINDS:
            return "addr"
        if p.kind in ("STRING",):
            return "string"
        if p.base in ("int", "MPI_Aint", "MPI_Count", "MPI_Offset"):
            return "int"
        raise SpecError(f"parameter {p.name} (kind {p.kind}) cannot be serialized")

    @staticmethod
    def length_expr(fn, p):
        if (fn.name, p.name) in LENGTH_OVERRIDES:
            return LENGTH_OVERRIDES[(fn.name, p.name)]
        length = p.length[0] if isinstance(p.length, list) else p.length
        names = {q.name: q for q in fn.params}
        if isinstance(length, str) and length in names and names[length].ptr == 0:
            return length
        raise SpecError(f"array {p.name} has length '{length}' that is not a parameter: "
                        "add a LENGTH_OVERRIDES entry in gen_wrappers.py")

    @staticmethod
    def plan(fn, p):
        """Validate that p can be serialized (raises SpecError otherwise)."""
        if p.kind == "STATUS":
            raise SpecError(f"parameter {p.name}: a status cannot be logged")
        if p.is_varargs:
            raise SpecError("variadic")
        Serializer.scalar_kind(p)
        if p.is_array:
            Serializer.length_expr(fn, p)

    @staticmethod
    def emit(fn, p, value, out):
        """Statements appending `value` (an lvalue expression of p's element type when
        scalar, the array pointer when an array) to record `ocr_r`."""
        kind = Serializer.scalar_kind(p)
        put = {"int": "ocr_rec_i64(&ocr_r, (int64_t)({v}));",
               "handle": "ocr_rec_u64(&ocr_r, OCR_HANDLE_U64({v}));",
               "addr": "ocr_rec_u64(&ocr_r, (uint64_t)(uintptr_t)({v}));",
               "string": "ocr_rec_str(&ocr_r, {v});"}[kind]
        if not p.is_array:
            out.append("    " + put.format(v=value))
            return
        n = Serializer.length_expr(fn, p)
        inner = ""
        if isinstance(p.length, list):
            cols = int(p.length[1])
            inner = "[ocr_j]"
        lines = []
        guard = ""
        if p.kind == "WEIGHT":
            # MPI_UNWEIGHTED and MPI_WEIGHTS_EMPTY are sentinel addresses, not arrays.
            lines.append(f"    if ({value} == MPI_UNWEIGHTED) ocr_rec_u64(&ocr_r, "
                         "OCR_REC_UNWEIGHTED);")
            lines.append(f"    else if ({value} == MPI_WEIGHTS_EMPTY) ocr_rec_u64(&ocr_r, "
                         "OCR_REC_WEIGHTS_EMPTY);")
            guard = "else "
        lines.append(f"    {guard}{{")
        lines.append(f"      int64_t ocr_n = (int64_t)({n});")
        lines.append("      if (ocr_n < 0 || " + value + " == NULL) ocr_n = 0;")
        lines.append("      ocr_rec_u64(&ocr_r, (uint64_t)ocr_n);")
        lines.append("      for (int64_t ocr_i = 0; ocr_i < ocr_n; ++ocr_i) {")
        if inner:
            lines.append(f"        for (int ocr_j = 0; ocr_j < {cols}; ++ocr_j)")
            lines.append("          " + put.format(v=f"{value}[ocr_i]{inner}"))
        else:
            lines.append("        " + put.format(v=f"{value}[ocr_i]"))
        lines.append("      }")
        lines.append("    }")
        out.extend(lines)


# ---- C output --------------------------------------------------------------------------------
GENERATED = "Generated by src/crcp/gen_wrappers.py from spec/apis.json and spec/wrap_spec.txt."

RECORD_HELPERS = r"""
/* ---- Replay record builder (layout: docs/wrappers.md, "Replay records") ----------------
 * Starts in a stack buffer and moves to the heap when a record outgrows it. Bytes are
 * written little-endian explicitly, whatever the host. */
#define OCR_REC_STACK 512
#define OCR_REC_NULL_STRING UINT64_MAX
#define OCR_REC_UNWEIGHTED UINT64_MAX
#define OCR_REC_WEIGHTS_EMPTY (UINT64_MAX - 1)
/* Handles are pointers in Open MPI and ints in MPICH: both convert through uintptr_t. */
#define OCR_HANDLE_U64(h) ((uint64_t)(uintptr_t)(h))

typedef struct {
  unsigned char* data;
  size_t len, cap;
  int on_heap;
  const char* fn;
} ocr_rec_t;

static void ocr_rec_init(ocr_rec_t* r, unsigned char* stack, size_t cap, const char* fn) {
  r->data = stack;
  r->len = 0;
  r->cap = cap;
  r->on_heap = 0;
  r->fn = fn;
}

static void ocr_rec_reserve(ocr_rec_t* r, size_t more) {
  if (r->len + more <= r->cap) return;
  size_t cap = r->cap * 2;
  while (cap < r->len + more) cap *= 2;
  unsigned char* p = (unsigned char*)malloc(cap);
  if (p == NULL) {
    /* Fails loudly: a replay log with a hole would rebuild the wrong objects. */
    fprintf(stderr, "ompi-cr: out of memory logging %s for checkpoint/restart\n", r->fn);
    abort();
  }
  memcpy(p, r->data, r->len);
  if (r->on_heap) free(r->data);
  r->data = p;
  r->cap = cap;
  r->on_heap = 1;
}

static void ocr_rec_u64(ocr_rec_t* r, uint64_t v) {
  ocr_rec_reserve(r, 8);
  for (int i = 0; i < 8; ++i) r->data[r->len++] = (unsigned char)(v >> (8 * i));
}

static void ocr_rec_i64(ocr_rec_t* r, int64_t v) { ocr_rec_u64(r, (uint64_t)v); }

static void ocr_rec_str(ocr_rec_t* r, const char* s) {
  if (s == NULL) {
    ocr_rec_u64(r, OCR_REC_NULL_STRING);
    return;
  }
  size_t n = strlen(s);
  ocr_rec_u64(r, (uint64_t)n);
  ocr_rec_reserve(r, n);
  memcpy(r->data + r->len, s, n);
  r->len += n;
}

static void ocr_rec_commit(ocr_rec_t* r, int fn_id) {
  ocr_crcp_replay_append(fn_id, r->data, r->len);
  if (r->on_heap) free(r->data);
}

/* Array lengths apis.json gives as '*' (gen_wrappers.py, LENGTH_OVERRIDES). */
__attribute__((unused)) static int64_t ocr_sum(const int* a, int n) {
  int64_t s = 0;
  for (int i = 0; a != NULL && i < n; ++i) s += a[i];
  return s;
}

__attribute__((unused)) static int64_t ocr_cartdim(MPI_Comm comm) {
  int n = 0;
  if (PMPI_Cartdim_get(comm, &n) != MPI_SUCCESS) n = 0;
  return n;
}

/* which: 0 integers, 1 addresses, 2 datatypes of MPI_Type_get_envelope. */
__attribute__((unused)) static int64_t ocr_envelope(MPI_Datatype type, int which) {
  int n[3] = {0, 0, 0}, combiner = 0;
  if (PMPI_Type_get_envelope(type, &n[0], &n[1], &n[2], &combiner) != MPI_SUCCESS) return 0;
  return n[which];
}
"""


def record_block(fn, saved):
    """Statements building and appending fn's replay record (after a successful call)."""
    out = ["    unsigned char ocr_stack[OCR_REC_STACK];",
           "    ocr_rec_t ocr_r;",
           f'    ocr_rec_init(&ocr_r, ocr_stack, sizeof ocr_stack, "{fn.name}");']
    # In section: every in/inout parameter, with the value it had on entry.
    for p in fn.params:
        if p.direction not in ("in", "inout"):
            continue
        if p.direction == "inout" and not p.is_array:
            value = saved[p.name]
        elif p.ptr == 1 and not p.is_array and p.kind not in VOID_KINDS | FUNCTION_KINDS | {
                "STRING"}:
            value = f"*{p.name}"
        else:
            value = p.name
        out.append(f"    /* in: {p.name} ({p.kind}) */")
        Serializer.emit(fn, p, value, out)
    # Out section: every out/inout parameter after the call.
    for p in fn.params:
        if p.direction not in ("out", "inout"):
            continue
        if p.is_array:
            value = p.name
        elif p.kind == "C_BUFFER2":
            # MPI_Buffer_detach: declared void *, really the address of a void *.
            value = f"*(void**){p.name}"
        else:
            value = f"*{p.name}"
        out.append(f"    /* out: {p.name} ({p.kind}) */")
        Serializer.emit(fn, p, value, out)
    out.append(f"    ocr_rec_commit(&ocr_r, OCR_FN_{fn.name});")
    return out


def save_inouts(fn):
    """Declarations keeping the entry values of inout scalars (e.g. the handle Type_free
    resets to NULL) for the record's in section."""
    lines, saved = [], {}
    for p in fn.params:
        if p.direction == "inout" and not p.is_array:
            local = f"ocr_in_{p.name}"
            lines.append(f"  const {p.base} {local} = *{p.name};")
            saved[p.name] = local
    return lines, saved


def proxy_dispatch(fn):
    """The proxy-mode test of fn's wrapper ([] when fn never dispatches): placed right after
    the entry hook, before anything touches the old library."""
    if not fn.proxy:
        return []
    test = "__builtin_expect(ocr_crcp_proxied, 0)"
    if fn.proxy == "born":
        borns = " || ".join(f"ocr_crcp_proxy_born({c})" for c in fn.proxy_comms())
        test += f" && ({borns})" if len(fn.proxy_comms()) > 1 else f" && {borns}"
    return [f"  if ({test}) return ocr_proxy_{fn.name}({fn.call_args()});"]


def wrapper(fn):
    """The C definition of MPI_X."""
    head = f"{fn.ret} {fn.name}({fn.param_list()}) {{"
    body = []
    call = f"P{fn.name}({fn.call_args()})"
    cat = fn.category
    proxy = proxy_dispatch(fn)
    if cat == "query":
        body += proxy + [f"  return {call};"]
    elif cat == "local":
        body += ["  ocr_crcp_safe_point();"] + proxy + [f"  return {call};"]
    elif cat == "collective":
        comm = fn.first("COMMUNICATOR", ("in",)).name
        body += [f"  ocr_crcp_coll_enter({comm});"] + proxy + [
                 f"  int ocr_rc = {call};",
                 f"  ocr_crcp_coll_exit({comm});",
                 "  return ocr_rc;"]
    elif cat == "collective_nb":
        comm = fn.first("COMMUNICATOR", ("in",)).name
        req = fn.first("REQUEST", ("out",)).name
        call = f"P{fn.name}({fn.call_args({req: '&ocr_real'})})"
        body += ["  MPI_Request ocr_real = MPI_REQUEST_NULL;",
                 f"  ocr_crcp_coll_enter({comm});"] + proxy + [
                 f"  int ocr_rc = {call};",
                 f"  ocr_crcp_coll_exit({comm});",
                 f"  *{req} = ocr_rc == MPI_SUCCESS ? ocr_crcp_coll_request(ocr_real, {comm})"
                 " : ocr_real;",
                 "  return ocr_rc;"]
    elif cat == "logged":
        saves, saved = save_inouts(fn)
        body += ["  ocr_crcp_safe_point();"] + proxy + saves
        body += [f"  int ocr_rc = {call};", "  if (ocr_rc == MPI_SUCCESS) {"]
        body += record_block(fn, saved)
        body += ["  }", "  return ocr_rc;"]
    elif cat == "comm_create":
        parent = fn.first("COMMUNICATOR", ("in",)).name
        newcomm = fn.first("COMMUNICATOR", ("out",)).name
        body += [f"  ocr_crcp_coll_enter({parent});"] + proxy + [
                 f"  int ocr_rc = {call};",
                 f"  ocr_crcp_coll_exit({parent});",
                 "  if (ocr_rc == MPI_SUCCESS) {",
                 f"    ocr_crcp_comm_created({parent}, *{newcomm}, OCR_FN_{fn.name});"]
        body += record_block(fn, {})
        body += ["  }", "  return ocr_rc;"]
    elif cat == "comm_free":
        comm = fn.first("COMMUNICATOR", ("inout",)).name
        # The proxy implementation does the bookkeeping of ocr_crcp_comm_freeing itself.
        body += ["  ocr_crcp_safe_point();"] + proxy + [
                 f"  ocr_crcp_comm_freeing(*{comm});",
                 f"  return {call};"]
    elif cat == "custom":
        body.append(f"  return ocr_crcp_{fn.name}({fn.call_args()});")
    elif cat == "unsupported":
        body += [f"  (void){p.name};" for p in fn.params if not p.is_varargs]
        if fn.ret == "int":
            body.append(f'  return ocr_crcp_unsupported("{fn.name}");')
        else:
            body += [f'  (void)ocr_crcp_unsupported("{fn.name}");',
                     f"  return ({fn.ret}){{0}};"]
    return "\n".join([f"/* {cat} */", head] + body + ["}"])


def banner(role):
    return f"/* {role}\n * {GENERATED}\n * Do not edit: change the spec or the generator. */\n"


def gen_fn_ids(funcs):
    names = sorted(f.name for f in funcs)
    lines = [banner("Ids of the wrapped MPI functions (replay records, comm lineage)."),
             "#ifndef OMPI_CR_CRCP_FN_IDS_H", "#define OMPI_CR_CRCP_FN_IDS_H", "",
             "#ifdef __cplusplus", 'extern "C" {', "#endif", "",
             "/* Assigned from the sorted list of names in wrap_spec.txt: stable as long as",
             " * that list is. 0 is never a function. */",
             "enum {"]
    for i, n in enumerate(names, 1):
        lines.append(f"  OCR_FN_{n} = {i},")
    lines += [f"  OCR_FN_COUNT = {len(names) + 1}", "};", "",
              "/* \"MPI_X\" for OCR_FN_MPI_X, NULL for an id out of range. */",
              "const char* ocr_crcp_fn_name(int id);", "",
              "#ifdef __cplusplus", "}", "#endif", "", "#endif", ""]
    return "\n".join(lines)


def gen_custom_h(funcs):
    lines = [banner("Prototypes of the functions the CRCP core implements (category custom)."),
             "#ifndef OMPI_CR_CRCP_CUSTOM_H", "#define OMPI_CR_CRCP_CUSTOM_H", "",
             "/* C++ includers want the C API only (Open MPI's C++ bindings do not build",
             " * warning-free); effective if mpi.h was not included before. */",
             "#ifndef OMPI_SKIP_MPICXX", "#define OMPI_SKIP_MPICXX 1", "#endif",
             "#ifndef MPICH_SKIP_MPICXX", "#define MPICH_SKIP_MPICXX 1", "#endif",
             "#include <mpi.h>", "", "#ifdef __cplusplus", 'extern "C" {', "#endif", ""]
    for f in sorted(funcs, key=lambda f: f.name):
        if f.category == "custom":
            lines.append(f"{f.ret} ocr_crcp_{f.name}({f.param_list()});")
    lines += ["", "#ifdef __cplusplus", "}", "#endif", "", "#endif", ""]
    return "\n".join(lines)


def gen_proxy_h(funcs):
    lines = [banner("Prototypes of the proxy-mode implementations (docs/wrappers.md, "
                    "\"Proxy mode\")."),
             "#ifndef OMPI_CR_CRCP_PROXY_H", "#define OMPI_CR_CRCP_PROXY_H", "",
             "/* In a restored rank (ocr_crcp_proxied != 0) the wrapper of MPI_X calls",
             " * ocr_proxy_MPI_X(args) instead of PMPI_X: always for the collective,",
             " * collective_nb, comm_create and comm_free functions (right after",
             " * ocr_crcp_coll_enter / ocr_crcp_safe_point; the implementation does the rest",
             " * of the bookkeeping: coll_exit, request wrapping, comm registration or",
             " * ocr_crcp_comm_freeing, replay records) and MPI_Abort; for the query, local",
             " * and logged functions only when ocr_crcp_proxy_born() is true for one of their",
             " * input communicators. crcp_wrappers.c defines every one of them weak, as",
             " * ocr_crcp_unsupported_in_proxy(\"MPI_X\"); the core overrides those it supports",
             " * with ordinary (strong) definitions. */", "",
             "#ifndef OMPI_SKIP_MPICXX", "#define OMPI_SKIP_MPICXX 1", "#endif",
             "#ifndef MPICH_SKIP_MPICXX", "#define MPICH_SKIP_MPICXX 1", "#endif",
             "#include <mpi.h>", "", "#ifdef __cplusplus", 'extern "C" {', "#endif", ""]
    for cat in CATEGORIES:
        group = sorted((f for f in funcs if f.proxy and f.category == cat),
                       key=lambda f: f.name)
        if not group:
            continue
        how = "always" if cat in PROXY_ALWAYS_CATEGORIES else \
            "when an input communicator is proxy-born"
        always = [f.name for f in group if f.name in PROXY_ALWAYS_FUNCTIONS]
        if cat not in PROXY_ALWAYS_CATEGORIES and always:
            how += f" ({', '.join(always)}: always)"
        lines.append(f"/* {cat}: {how} */")
        lines += [f"{f.ret} ocr_proxy_{f.name}({f.param_list()});" for f in group]
        lines.append("")
    lines += ["#ifdef __cplusplus", "}", "#endif", "", "#endif", ""]
    return "\n".join(lines)


def weak_default(fn):
    """The weak definition of ocr_proxy_MPI_X: fails loudly, unless the core overrides it."""
    body = [f"  (void){p.name};" for p in fn.params if not p.is_varargs]
    if fn.ret == "int":
        body.append(f'  return ocr_crcp_unsupported_in_proxy("{fn.name}");')
    else:
        body += [f'  (void)ocr_crcp_unsupported_in_proxy("{fn.name}");',
                 f"  return ({fn.ret}){{0}};"]
    return "\n".join([f"__attribute__((weak)) {fn.ret} ocr_proxy_{fn.name}("
                      f"{fn.param_list()}) {{"] + body + ["}"])


def gen_wrappers_c(funcs):
    names = sorted(f.name for f in funcs)
    lines = [banner("The MPI wrappers of ompi-cr: one MPI_X per function of wrap_spec.txt, "
                    "calling PMPI_X."),
             "/* Deprecated MPI-1/2 names (MPI_Attr_get, MPI_Keyval_create, ...) are still",
             " * exported by libmpi and wrapped; mpi.h marks them deprecated. */",
             '#pragma GCC diagnostic ignored "-Wdeprecated-declarations"', "",
             "#include <stdint.h>", "#include <stdio.h>", "#include <stdlib.h>",
             "#include <string.h>", "", '#include "crcp/crcp_hooks.h"',
             '#include "crcp/crcp_custom.h"', '#include "crcp/crcp_fn_ids.h"',
             '#include "crcp/crcp_proxy.h"', RECORD_HELPERS,
             "static const char* const ocr_fn_names[OCR_FN_COUNT] = {", "    NULL,"]
    lines += [f'    "{n}",' for n in names]
    lines += ["};", "",
              "const char* ocr_crcp_fn_name(int id) {",
              "  return id > 0 && id < OCR_FN_COUNT ? ocr_fn_names[id] : NULL;", "}", "",
              "/* ---- Proxy mode: defaults of the ocr_proxy_MPI_X of crcp_proxy.h -----------",
              " * Weak (and not static): an ordinary definition of the same name in another",
              " * object of libompi-cr-mpi.so (the core's proxy_*.cpp) replaces it at link",
              " * time. Without one, a restored rank calling MPI_X aborts with a line",
              " * naming it. */"]
    for f in sorted((f for f in funcs if f.proxy), key=lambda f: f.name):
        lines += [weak_default(f), ""]
    for f in funcs:
        lines += [wrapper(f), ""]
    return "\n".join(lines)


def gen_unwrapped_c(exports, wrapped):
    rest = sorted(exports - wrapped)
    lines = [banner("Abort stubs for the MPI_/MPIX_ symbols libmpi exports that wrap_spec.txt "
                    "does not wrap."),
             "/* Removed MPI-1 functions, MPIX_ extensions, Fortran name-mangled aliases",
             " * (all capitals): not in apis.json, so no prototype is known and none is",
             " * needed. mpi.h is not included on purpose (it declares some of these names",
             " * differently or as removed). A call prints the name and aborts the job. */", "",
             "int ocr_crcp_unsupported(const char* name);", ""]
    for n in rest:
        lines.append(f'int {n}(void) {{ return ocr_crcp_unsupported("{n}"); }}')
    lines.append("")
    return "\n".join(lines)


def write_outputs(outdir, files):
    for name, text in files.items():
        path = os.path.join(outdir, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        # Always rewritten (the build tool compares the outputs' times with the inputs');
        # through a rename so that an interrupted run never leaves half a file.
        tmp = path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--apis", required=True, help="spec/apis.json")
    ap.add_argument("--spec", required=True, help="spec/wrap_spec.txt")
    ap.add_argument("--libmpi", required=True, help="the installed libmpi.so (read with nm)")
    ap.add_argument("--nm", default="nm", help="nm program (default: nm)")
    ap.add_argument("--outdir", help="where to write the generated files")
    ap.add_argument("--check", action="store_true", help="check the spec, write nothing")
    ap.add_argument("--summary", action="store_true", help="print the category counts")
    args = ap.parse_args(argv)
    if not args.check and not args.outdir:
        ap.error("--outdir is required unless --check")
    try:
        apis = read_apis(args.apis)
        exports = read_exports(args.libmpi, args.nm)
        funcs = check(args.spec, read_spec(args.spec), apis, exports)
        files = {
            "crcp/crcp_fn_ids.h": gen_fn_ids(funcs),
            "crcp/crcp_custom.h": gen_custom_h(funcs),
            "crcp/crcp_proxy.h": gen_proxy_h(funcs),
            "crcp_wrappers.c": gen_wrappers_c(funcs),
            "crcp_unwrapped.c": gen_unwrapped_c(exports, {f.name for f in funcs}),
        }
    except SpecError as e:
        for line in str(e).splitlines():
            print(f"gen_wrappers.py: error: {line}", file=sys.stderr)
        return 1
    except (OSError, json.JSONDecodeError) as e:
        print(f"gen_wrappers.py: error: {e}", file=sys.stderr)
        return 1
    if args.summary:
        counts = {c: sum(f.category == c for f in funcs) for c in CATEGORIES}
        unwrapped = len(exports - {f.name for f in funcs})
        proxied = sum(bool(f.proxy) for f in funcs)
        print(" ".join(f"{c}={n}" for c, n in counts.items()) +
              f" total={len(funcs)} unwrapped_stubs={unwrapped} proxy={proxied}")
    if not args.check:
        write_outputs(args.outdir, files)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
