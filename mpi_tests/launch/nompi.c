/* nompi: a program started by mpirun that never calls MPI (not even linked with it).
 *
 *   nompi [EXIT_CODE]
 *
 * Writes its report (report.h) when OCR_REPORT_DIR is set, prints one line, and exits
 * with EXIT_CODE (default 0). */
#include <stdio.h>
#include <stdlib.h>

#include "report.h"

int main(int argc, char** argv) {
  const char* r = getenv("OMPI_COMM_WORLD_RANK");
  int rank = r ? atoi(r) : -1;
  int code = argc > 1 ? atoi(argv[1]) : 0;
  ocr_report("nompi", rank);
  printf("nompi rank %d exits with %d\n", rank, code);
  fflush(stdout);
  /* mpirun ends the whole job at the first non-zero exit: a rank that exits with an error
   * waits until every rank has printed (files in OCR_REPORT_DIR), so that stdout does not
   * depend on timing. */
  const char* dir = getenv("OCR_REPORT_DIR");
  const char* sz = getenv("OMPI_COMM_WORLD_SIZE");
  if (dir && *dir && sz && rank >= 0) {
    char path[4096];
    snprintf(path, sizeof path, "%s/printed.%d", dir, rank);
    FILE* f = fopen(path, "w");
    if (f) fclose(f);
    int size = atoi(sz);
    for (int waited = 0; code != 0 && waited < 6000; ++waited) { /* at most 60 s */
      int n = 0;
      for (int r = 0; r < size; ++r) {
        snprintf(path, sizeof path, "%s/printed.%d", dir, r);
        if (access(path, F_OK) == 0) ++n;
      }
      if (n == size) break;
      struct timespec ts = {0, 10 * 1000 * 1000};
      nanosleep(&ts, NULL);
    }
  }
  return code;
}
