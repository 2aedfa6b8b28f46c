// Predefined datatypes and reduction operations by index. A restored application still
// holds the old library's addresses for MPI_DOUBLE, MPI_SUM, ...; the proxy has its own.
// Both sides compile this same table, so an index names the same object on both sides.
#pragma once

#include <mpi.h>

namespace ocr::proxy {

inline const MPI_Datatype* predefined_types(int* n) {
  static const MPI_Datatype types[] = {
      MPI_CHAR,          MPI_SIGNED_CHAR,     MPI_UNSIGNED_CHAR,
      MPI_BYTE,          MPI_SHORT,           MPI_UNSIGNED_SHORT,
      MPI_INT,           MPI_UNSIGNED,        MPI_LONG,
      MPI_UNSIGNED_LONG, MPI_LONG_LONG,       MPI_UNSIGNED_LONG_LONG,
      MPI_FLOAT,         MPI_DOUBLE,          MPI_LONG_DOUBLE,
      MPI_WCHAR,         MPI_INT8_T,          MPI_INT16_T,
      MPI_INT32_T,       MPI_INT64_T,         MPI_UINT8_T,
      MPI_UINT16_T,      MPI_UINT32_T,        MPI_UINT64_T,
      MPI_C_BOOL,        MPI_C_FLOAT_COMPLEX, MPI_C_DOUBLE_COMPLEX,
      MPI_AINT,          MPI_OFFSET,          MPI_COUNT,
      MPI_FLOAT_INT,     MPI_DOUBLE_INT,      MPI_LONG_INT,
      MPI_2INT,          MPI_SHORT_INT,       MPI_LONG_DOUBLE_INT,
      MPI_PACKED,        MPI_LONG_LONG_INT,
  };
  *n = static_cast<int>(sizeof types / sizeof types[0]);
  return types;
}

inline const MPI_Op* predefined_ops(int* n) {
  static const MPI_Op ops[] = {MPI_MAX,    MPI_MIN,    MPI_SUM,     MPI_PROD, MPI_LAND,
                               MPI_BAND,   MPI_LOR,    MPI_BOR,     MPI_LXOR, MPI_BXOR,
                               MPI_MAXLOC, MPI_MINLOC, MPI_REPLACE, MPI_NO_OP};
  *n = static_cast<int>(sizeof ops / sizeof ops[0]);
  return ops;
}

inline int type_index(MPI_Datatype t) {
  int n;
  const MPI_Datatype* all = predefined_types(&n);
  for (int i = 0; i < n; i++)
    if (all[i] == t) return i;
  return -1;
}

inline int op_index(MPI_Op o) {
  int n;
  const MPI_Op* all = predefined_ops(&n);
  for (int i = 0; i < n; i++)
    if (all[i] == o) return i;
  return -1;
}

}  // namespace ocr::proxy
