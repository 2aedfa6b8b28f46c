/*
 * mca_shmem_ompicr: the Open MPI 4.1 component that makes
 *
 *     mpirun --am ft-enable-cr -np N ./app
 *
 * start every rank under the ompi-cr runtime, with a stock mpirun (docs/launch.md).
 *
 * Open MPI 4.1 only turns `--am NAME` into OMPI_MCA_mca_base_param_file_prefix=NAME; the
 * file itself is not applied (the aggregate file list is joined with ':' but split with
 * ','). So this component, loaded by every Open MPI process from the component path,
 * looks at that setting when the `shmem` framework is opened. `shmem` is opened inside
 * opal_init(), which mpirun (orterun) calls from orte_submit_init() after parsing its
 * command line and before orte_init(): no thread, no connection, no child exists yet.
 *
 * In mpirun, and only when `ft-enable-cr` was asked for (--am, or --tune), it re-executes
 * mpirun in place (same PID, same argv from /proc/self/cmdline, the environment mpirun
 * was started with) plus:
 *   - OMPI_CR_MPIRUN_PID=<pid>: identifies the job to ompi-checkpoint and guards against
 *     a second re-exec; every rank receives it (mpirun forwards all OMPI_* variables);
 *   - OMPI_MCA_<key>=<value> for each parameter of the ft-enable-cr file that the user
 *     did not set in the environment (the command line still wins over the file);
 *   - LD_PRELOAD=<libompi-cr.so> for the ranks only, through Open MPI's own forwarding
 *     list: mca_base_env_list_internal (the list a --tune file's "-x" lines fill), which
 *     combines with the user's -x options; or, when the user set mca_base_env_list (which
 *     Open MPI refuses to mix with any other list), appended to that list (to its value
 *     in the environment, or on the command line when it was given with --mca).
 * The re-executed mpirun finds OMPI_CR_MPIRUN_PID equal to its own PID and goes on.
 *
 * open() always returns OPAL_ERR_NOT_AVAILABLE, so Open MPI unloads the component; it
 * is never selected. In ranks, daemons, tools and without ft-enable-cr it does nothing.
 *
 * Uses only libc and two mca_base_var calls of libopen-pal; no Open MPI code is copied.
 */
#include "opal_config.h"

#include "opal/constants.h"
#include "opal/mca/base/mca_base_var.h"
#include "opal/mca/shmem/shmem.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef OMPI_CR_RUNTIME_LIB
#error "OMPI_CR_RUNTIME_LIB (absolute path of libompi-cr.so) must be defined"
#endif
#ifndef OMPI_CR_PARAM_FILE
#error "OMPI_CR_PARAM_FILE (absolute path of the shipped ft-enable-cr file) must be defined"
#endif
#ifndef OMPI_CR_VERSION_MAJOR
#define OMPI_CR_VERSION_MAJOR 0
#define OMPI_CR_VERSION_MINOR 0
#define OMPI_CR_VERSION_PATCH 0
#endif

#define OCR_EXPORT __attribute__((visibility("default")))

static const char kSetName[] = "ft-enable-cr";
static const char kPidVar[] = "OMPI_CR_MPIRUN_PID";
static const char kTag[] = "ompi-cr";

/* ----------------------------------------------------------------------------------- */
/* Small helpers: everything here runs once, in mpirun, before Open MPI starts anything. */

static int verbose(void) {
  const char* v = getenv("OMPI_CR_VERBOSE");
  return v != NULL && *v != 0 && strcmp(v, "0") != 0;
}

static void say(const char* fmt, ...) {
  if (!verbose()) return;
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "%s: mpirun[%d]: ", kTag, (int)getpid());
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
}

/* The user asked for C/R and it cannot be provided: one line, and mpirun ends before it
 * has started anything (running the job without C/R would fail only at checkpoint). */
__attribute__((noreturn)) static void die(const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "%s: mpirun --am %s: ", kTag, kSetName);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  fflush(NULL);
  exit(1);
}

static char* xstrdup(const char* s) {
  char* d = strdup(s);
  if (d == NULL) die("out of memory");
  return d;
}

static char* xasprintf(const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char* s = NULL;
  int n = vasprintf(&s, fmt, ap);
  va_end(ap);
  if (n < 0) die("out of memory");
  return s;
}

/* The current string value of an MCA variable of the "mca_base" group, or NULL. */
static const char* mca_base_string(const char* name) {
  int idx = mca_base_var_find("opal", "mca", "base", name);
  if (idx < 0) return NULL;
  const char** value = NULL;
  if (mca_base_var_get_value(idx, &value, NULL, NULL) != OPAL_SUCCESS || value == NULL) return NULL;
  return *value;
}

/* Reads a whole file whose content is a sequence of NUL-terminated strings
 * (/proc/self/cmdline, /proc/self/environ) into a NULL-terminated vector. */
static char** read_nul_list(const char* path) {
  FILE* f = fopen(path, "re");
  if (f == NULL) die("cannot read %s: %s", path, strerror(errno));
  size_t cap = 4096, len = 0;
  char* buf = malloc(cap + 1);
  if (buf == NULL) die("out of memory");
  size_t n;
  while ((n = fread(buf + len, 1, cap - len, f)) > 0) {
    len += n;
    if (len == cap) {
      cap *= 2;
      char* nb = realloc(buf, cap + 1);
      if (nb == NULL) die("out of memory");
      buf = nb;
    }
  }
  if (ferror(f)) die("cannot read %s: %s", path, strerror(errno));
  fclose(f);
  if (len > 0 && buf[len - 1] != 0) buf[len++] = 0; /* a truncated last entry */
  size_t count = 0;
  for (size_t i = 0; i < len; ++i)
    if (buf[i] == 0) ++count;
  char** v = calloc(count + 1, sizeof *v);
  if (v == NULL) die("out of memory");
  size_t k = 0;
  for (size_t i = 0; i < len; i += strlen(buf + i) + 1) v[k++] = buf + i;
  v[k] = NULL;
  return v;
}

/* An environment vector we can add to. */
struct env {
  char** v;
  size_t n, cap;
};

static const char* env_get(const struct env* e, const char* name) {
  size_t len = strlen(name);
  for (size_t i = 0; i < e->n; ++i)
    if (strncmp(e->v[i], name, len) == 0 && e->v[i][len] == '=') return e->v[i] + len + 1;
  return NULL;
}

static void env_set(struct env* e, const char* name, const char* value) {
  char* entry = xasprintf("%s=%s", name, value);
  size_t len = strlen(name);
  for (size_t i = 0; i < e->n; ++i)
    if (strncmp(e->v[i], name, len) == 0 && e->v[i][len] == '=') {
      e->v[i] = entry;
      return;
    }
  if (e->n + 2 > e->cap) {
    e->cap = e->cap ? 2 * e->cap : 64;
    char** nv = realloc(e->v, e->cap * sizeof *nv);
    if (nv == NULL) die("out of memory");
    e->v = nv;
  }
  e->v[e->n++] = entry;
  e->v[e->n] = NULL;
}

/* ----------------------------------------------------------------------------------- */
/* Was ft-enable-cr asked for? */

/* Finds `ft-enable-cr` in a list of parameter-set names (Open MPI separates --am entries
 * with ':' and --tune entries with ','). An entry matches when its last path component is
 * ft-enable-cr. Returns a malloc'd copy of the entry, or NULL. */
static char* find_set(const char* list) {
  if (list == NULL) return NULL;
  const char* p = list;
  while (*p) {
    size_t len = strcspn(p, ":,");
    if (len > 0) {
      const char* base = p;
      for (size_t i = 0; i < len; ++i)
        if (p[i] == '/') base = p + i + 1;
      size_t blen = len - (size_t)(base - p);
      if (blen == sizeof kSetName - 1 && memcmp(base, kSetName, blen) == 0) {
        char* entry = malloc(len + 1);
        if (entry == NULL) die("out of memory");
        memcpy(entry, p, len);
        entry[len] = 0;
        return entry;
      }
    }
    p += len;
    if (*p) ++p;
  }
  return NULL;
}

static int readable_file(const char* path) {
  struct stat st;
  return stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, R_OK) == 0;
}

/* Resolves the ft-enable-cr entry to a file the way Open MPI does: an absolute path as
 * is, a path with a '/' relative to the working directory (no fallback for either: the
 * user named a file), a bare name along mca_base_param_file_path (<pkgdatadir>/
 * amca-param-sets:<cwd>, prefixed by mca_base_param_file_path_force) and, if Open MPI
 * cannot find it there, the file this component was built with (*from_search = 0).
 * Returns NULL when there is none. */
static char* resolve_param_file(const char* entry, int* from_search) {
  *from_search = 1;
  if (entry[0] == '/') return readable_file(entry) ? xstrdup(entry) : NULL;
  if (strchr(entry, '/') != NULL) {
    char cwd[PATH_MAX];
    if (getcwd(cwd, sizeof cwd) == NULL) return NULL;
    char* p = xasprintf("%s/%s", cwd, entry);
    if (readable_file(p)) return p;
    free(p);
    return NULL;
  }
  const char* force = mca_base_string("param_file_path_force");
  const char* path = mca_base_string("param_file_path");
  char* search = xasprintf("%s:%s", force ? force : "", path ? path : "");
  char* found = NULL;
  for (char *save = NULL, *dir = strtok_r(search, ":", &save); dir && !found;
       dir = strtok_r(NULL, ":", &save)) {
    char* p = xasprintf("%s/%s", dir, entry);
    if (readable_file(p))
      found = p;
    else
      free(p);
  }
  free(search);
  if (found) return found;
  *from_search = 0;
  return readable_file(OMPI_CR_PARAM_FILE) ? xstrdup(OMPI_CR_PARAM_FILE) : NULL;
}

/* ----------------------------------------------------------------------------------- */
/* The parameter file: "key = value" lines (and "--mca key value" lines, as in a --tune
 * file); '#' starts a comment. Each parameter becomes OMPI_MCA_<key> unless the user's
 * environment already sets it. */

static char* trim(char* s) {
  while (*s == ' ' || *s == '\t') ++s;
  char* e = s + strlen(s);
  while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\n' || e[-1] == '\r')) *--e = 0;
  size_t n = strlen(s);
  if (n >= 2 && (s[0] == '"' || s[0] == '\'') && s[n - 1] == s[0]) {
    s[n - 1] = 0;
    ++s;
  }
  return s;
}

static int valid_key(const char* k) {
  if (*k == 0) return 0;
  for (; *k; ++k)
    if (!((*k >= 'a' && *k <= 'z') || (*k >= 'A' && *k <= 'Z') || (*k >= '0' && *k <= '9') ||
          *k == '_'))
      return 0;
  return 1;
}

static void apply_param_file(const char* file, struct env* out, const struct env* user) {
  FILE* f = fopen(file, "re");
  if (f == NULL) die("cannot read %s: %s", file, strerror(errno));
  char line[4096];
  int lineno = 0;
  while (fgets(line, sizeof line, f) != NULL) {
    ++lineno;
    char* hash = strchr(line, '#');
    if (hash) *hash = 0;
    char* s = trim(line);
    if (*s == 0) continue;
    char *key, *value;
    if (strncmp(s, "--mca ", 6) == 0 || strncmp(s, "-mca ", 5) == 0) {
      key = s + (s[1] == '-' ? 6 : 5);
      while (*key == ' ' || *key == '\t') ++key;
      value = key + strcspn(key, " \t");
      if (*value) *value++ = 0;
    } else {
      char* eq = strchr(s, '=');
      if (eq == NULL) die("%s:%d: expected \"name = value\"", file, lineno);
      *eq = 0;
      key = s;
      value = eq + 1;
    }
    key = trim(key);
    value = trim(value);
    if (!valid_key(key)) die("%s:%d: invalid parameter name \"%s\"", file, lineno, key);
    char* name = xasprintf("OMPI_MCA_%s", key);
    if (env_get(user, name) != NULL) {
      say("%s=%s kept (set by the user; the file says %s)", name, env_get(user, name), value);
    } else {
      env_set(out, name, value);
      say("%s=%s (from %s)", name, value, file);
    }
    free(name);
  }
  fclose(f);
}

/* ----------------------------------------------------------------------------------- */
/* The entry point. */

/* mpirun is orterun under any of its names (mpirun, mpiexec, oshrun, mpirun.openmpi...). */
static int in_mpirun(void) {
  char exe[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n <= 0) return 0;
  exe[n] = 0;
  const char* base = strrchr(exe, '/');
  base = base ? base + 1 : exe;
  static const char* const names[] = {"orterun", "mpirun", "mpiexec", "oshrun", "shmemrun"};
  for (size_t i = 0; i < sizeof names / sizeof names[0]; ++i) {
    size_t len = strlen(names[i]);
    if (strncmp(base, names[i], len) == 0 && (base[len] == 0 || base[len] == '.')) return 1;
  }
  return 0;
}

static void enable_cr(const char* entry) {
  const pid_t pid = getpid();

  int from_search = 0;
  char* file = resolve_param_file(entry, &from_search);
  if (file == NULL && strchr(entry, '/') != NULL)
    die("parameter file %s: %s", entry, strerror(ENOENT));
  if (file == NULL)
    die("parameter file %s not found (looked in mca_base_param_file_path and %s)", entry,
        OMPI_CR_PARAM_FILE);
  if (access(OMPI_CR_RUNTIME_LIB, R_OK) != 0)
    die("runtime library %s: %s", OMPI_CR_RUNTIME_LIB, strerror(errno));
  if (strchr(OMPI_CR_RUNTIME_LIB, ';') != NULL || strchr(OMPI_CR_RUNTIME_LIB, ':') != NULL)
    die("runtime library path %s contains ';' or ':'", OMPI_CR_RUNTIME_LIB);

  char exe[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n <= 0) die("cannot resolve /proc/self/exe: %s", strerror(errno));
  exe[n] = 0;
  char** argv = read_nul_list("/proc/self/cmdline");
  if (argv[0] == NULL) die("/proc/self/cmdline is empty");

  /* The environment mpirun was started with (not the one Open MPI has edited since:
   * the new mpirun derives that again from the same command line). */
  struct env user = {0}, out = {0};
  char** initial = read_nul_list("/proc/self/environ");
  for (char** p = initial; *p; ++p) {
    char* eq = strchr(*p, '=');
    if (eq == NULL || eq == *p) continue;
    *eq = 0;
    env_set(&user, *p, eq + 1);
    env_set(&out, *p, eq + 1);
    *eq = '=';
  }

  char pidbuf[32];
  snprintf(pidbuf, sizeof pidbuf, "%d", (int)pid);
  env_set(&out, kPidVar, pidbuf);

  apply_param_file(file, &out, &user);
  /* Open MPI could not find the file (it warned once, in this mpirun): let the new mpirun
   * and the ranks find the one we use, so that the warning is not repeated by each. */
  if (!from_search && env_get(&user, "OMPI_MCA_mca_base_param_file_path_force") == NULL) {
    char* dir = xstrdup(file);
    *strrchr(dir, '/') = 0;
    env_set(&out, "OMPI_MCA_mca_base_param_file_path_force", dir);
  }

  /* LD_PRELOAD for the ranks: the runtime first, then whatever mpirun's environment
   * preloads (on this node the ranks inherit that too, and ours replaces it). */
  const char* old_preload = env_get(&user, "LD_PRELOAD");
  char* preload = (old_preload && *old_preload && strstr(old_preload, OMPI_CR_RUNTIME_LIB) == NULL)
                      ? xasprintf("%s:%s", OMPI_CR_RUNTIME_LIB, old_preload)
                      : xasprintf("%s", OMPI_CR_RUNTIME_LIB);
  if (strchr(preload, ';') != NULL) die("LD_PRELOAD (%s) contains ';'", preload);

  /* `--mca mca_base_env_list LIST` on the command line: the new mpirun would set that
   * value again, so the entry goes into the command line's value. */
  int list_arg = -1;
  for (int i = 1; argv[i] != NULL && argv[i + 1] != NULL; ++i) {
    const char* o = argv[i];
    if (o[0] == '-' && o[1] == '-') ++o;
    if ((strcmp(o, "-mca") == 0 || strcmp(o, "-gmca") == 0) &&
        strcmp(argv[i + 1], "mca_base_env_list") == 0 && argv[i + 2] != NULL)
      list_arg = i + 2;
  }
  const char* env_list = getenv("OMPI_MCA_mca_base_env_list"); /* env, file or command line */
  const char* sep = getenv("OMPI_MCA_mca_base_env_list_delimiter");
  if (sep == NULL || strlen(sep) != 1) sep = ";";
  if (list_arg > 0) {
    argv[list_arg] = xasprintf("%s%sLD_PRELOAD=%s", argv[list_arg], sep, preload);
    say("LD_PRELOAD for the ranks appended to --mca mca_base_env_list: %s", argv[list_arg]);
  } else if (env_list != NULL && *env_list) {
    char* v = xasprintf("%s%sLD_PRELOAD=%s", env_list, sep, preload);
    env_set(&out, "OMPI_MCA_mca_base_env_list", v);
    say("LD_PRELOAD for the ranks appended to mca_base_env_list: %s", v);
  } else {
    const char* internal = mca_base_string("env_list_internal"); /* -x lines of --tune files */
    char* v = (internal && *internal) ? xasprintf("%s;LD_PRELOAD=%s", internal, preload)
                                      : xasprintf("LD_PRELOAD=%s", preload);
    env_set(&out, "OMPI_MCA_mca_base_env_list_internal", v);
    say("LD_PRELOAD for the ranks via mca_base_env_list_internal: %s", v);
  }

  say("re-executing %s with checkpoint/restart enabled (parameters from %s)", exe, file);
  fflush(NULL);
  execve(exe, argv, out.v);
  die("cannot re-execute %s: %s", exe, strerror(errno));
}

static int ompicr_open(void) {
  /* Cheapest test first: every Open MPI process on the machine comes through here. */
  const char* am = getenv("OMPI_MCA_mca_base_param_file_prefix");
  const char* tune = getenv("OMPI_MCA_mca_base_envar_file_prefix");
  char* entry = find_set(am);
  if (entry == NULL) entry = find_set(tune);
  if (entry == NULL) return OPAL_ERR_NOT_AVAILABLE;
  if (!in_mpirun()) {
    free(entry);
    return OPAL_ERR_NOT_AVAILABLE;
  }
  const char* done = getenv(kPidVar);
  if (done != NULL && strtol(done, NULL, 10) == (long)getpid()) {
    say("checkpoint/restart enabled; ranks start under %s", OMPI_CR_RUNTIME_LIB);
    free(entry);
    return OPAL_ERR_NOT_AVAILABLE;
  }
  enable_cr(entry); /* does not return */
  return OPAL_ERR_NOT_AVAILABLE;
}

static int ompicr_runtime_query(mca_base_module_t** module, int* priority, const char* hint) {
  (void)hint;
  *module = NULL;
  *priority = -1;
  return OPAL_ERR_NOT_AVAILABLE;
}

OCR_EXPORT opal_shmem_base_component_2_0_0_t mca_shmem_ompicr_component = {
    .base_version =
        {
            OPAL_SHMEM_BASE_VERSION_2_0_0,
            .mca_component_name = "ompicr",
            MCA_BASE_MAKE_VERSION(component, OMPI_CR_VERSION_MAJOR, OMPI_CR_VERSION_MINOR,
                                  OMPI_CR_VERSION_PATCH),
            .mca_open_component = ompicr_open,
        },
    .base_data = {MCA_BASE_METADATA_PARAM_CHECKPOINT},
    .runtime_query = ompicr_runtime_query,
};
