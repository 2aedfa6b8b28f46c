/* What a process of a launch test reports about itself: whether the ompi-cr runtime is
 * in it, how it was launched, and which parts of Open MPI it loaded. Written to
 * $OCR_REPORT_DIR/<tag>.<pid> (one "key=value" per line) so that the test script can
 * check it, while stdout stays identical with and without the runtime. */
#ifndef OCR_LAUNCH_REPORT_H
#define OCR_LAUNCH_REPORT_H

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Does /proc/self/maps map a file whose name contains `needle`? */
static int ocr_mapped(const char* needle) {
  FILE* f = fopen("/proc/self/maps", "r");
  if (!f) return -1;
  char line[4096];
  int found = 0;
  while (!found && fgets(line, sizeof line, f))
    if (strstr(line, needle)) found = 1;
  fclose(f);
  return found;
}

/* Private_Dirty kB of libc's executable mapping: non-zero when someone patched libc's
 * code (Open MPI's "patcher" memory hooks, UCX's UCM). */
static long ocr_libc_text_dirty_kb(void) {
  FILE* f = fopen("/proc/self/smaps", "r");
  if (!f) return -1;
  char line[4096];
  int in_libc_text = 0;
  long total = 0;
  while (fgets(line, sizeof line, f)) {
    unsigned long a, b;
    char perms[8];
    if (sscanf(line, "%lx-%lx %7s", &a, &b, perms) == 3 && strchr(line, '/') != NULL) {
      in_libc_text = strstr(line, "/libc.so") != NULL && perms[2] == 'x';
      continue;
    }
    if (sscanf(line, "%lx-%lx %7s", &a, &b, perms) == 3) {
      in_libc_text = 0;
      continue;
    }
    long kb;
    if (in_libc_text && sscanf(line, "Private_Dirty: %ld kB", &kb) == 1) total += kb;
  }
  fclose(f);
  return total;
}

/* The runtime publishes <control dir>/<pid>.agent from its agent thread, shortly after
 * the process starts: wait for it (up to `seconds`) when the library is mapped. */
static int ocr_agent_file(double seconds) {
  char dir[4096];
  const char* env = getenv("OMPI_CR_CONTROL_DIR");
  if (env && *env)
    snprintf(dir, sizeof dir, "%s", env);
  else
    snprintf(dir, sizeof dir, "/tmp/ompi-cr-%u", (unsigned)geteuid());
  char path[4200];
  snprintf(path, sizeof path, "%s/%d.agent", dir, (int)getpid());
  for (double waited = 0;; waited += 0.01) {
    if (access(path, F_OK) == 0) return 1;
    if (waited >= seconds) return 0;
    struct timespec ts = {0, 10 * 1000 * 1000};
    nanosleep(&ts, NULL);
  }
}

/* Lists the Open MPI components and transport libraries mapped into this process. */
static void ocr_list_mapped(FILE* out) {
  FILE* f = fopen("/proc/self/maps", "r");
  if (!f) return;
  char line[4096], seen[64][128];
  int nseen = 0;
  fputs("mapped=", out);
  while (fgets(line, sizeof line, f)) {
    char* slash = strrchr(line, '/');
    if (!slash) continue;
    char* name = slash + 1;
    name[strcspn(name, "\n")] = 0;
    if (strncmp(name, "mca_", 4) != 0 && strncmp(name, "libuc", 5) != 0 &&
        strncmp(name, "libfabric", 9) != 0 && strncmp(name, "libpsm", 6) != 0)
      continue;
    int dup = 0;
    for (int i = 0; i < nseen; ++i)
      if (strcmp(seen[i], name) == 0) dup = 1;
    if (dup || nseen == 64) continue;
    snprintf(seen[nseen++], sizeof seen[0], "%s", name);
    fprintf(out, "%s,", name);
  }
  fputc('\n', out);
  fclose(f);
}

/* Writes the report; `tag` names the program ("hello", "nompi", ...), rank is -1 when
 * unknown. Does nothing unless OCR_REPORT_DIR is set. */
static void ocr_report(const char* tag, int rank) {
  const char* dir = getenv("OCR_REPORT_DIR");
  if (!dir || !*dir) return;
  char path[4096];
  snprintf(path, sizeof path, "%s/%s.%d", dir, tag, (int)getpid());
  char tmp[4200];
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  FILE* out = fopen(tmp, "w");
  if (!out) {
    fprintf(stderr, "report: cannot write %s: %s\n", tmp, strerror(errno));
    return;
  }
  int runtime = ocr_mapped("libompi-cr.so");
  const char* mpirun_pid = getenv("OMPI_CR_MPIRUN_PID");
  const char* preload = getenv("LD_PRELOAD");
  const char* pml = getenv("OMPI_MCA_pml");
  fprintf(out, "tag=%s\nrank=%d\npid=%d\nppid=%d\n", tag, rank, (int)getpid(), (int)getppid());
  fprintf(out, "runtime=%d\n", runtime);
  fprintf(out, "agent=%d\n", runtime == 1 ? ocr_agent_file(20.0) : ocr_agent_file(0));
  fprintf(out, "mpirun_pid=%s\n", mpirun_pid ? mpirun_pid : "");
  fprintf(out, "ld_preload=%s\n", preload ? preload : "");
  fprintf(out, "env_pml=%s\n", pml ? pml : "");
  fprintf(out, "libc_text_dirty_kb=%ld\n", ocr_libc_text_dirty_kb());
  ocr_list_mapped(out);
  extern char** environ;
  for (char** e = environ; *e; ++e) /* variables the tests pass with -x and friends */
    if (strncmp(*e, "OCR_X_", 6) == 0) fprintf(out, "env_%s\n", *e);
  fclose(out);
  rename(tmp, path);
}

/* Appends "key=value" to this process's report (e.g. state measured at the end). */
static void ocr_report_add(const char* tag, const char* key, long value) {
  const char* dir = getenv("OCR_REPORT_DIR");
  if (!dir || !*dir) return;
  char path[4096];
  snprintf(path, sizeof path, "%s/%s.%d", dir, tag, (int)getpid());
  FILE* out = fopen(path, "a");
  if (!out) return;
  fprintf(out, "%s=%ld\n", key, value);
  fclose(out);
}

#endif
