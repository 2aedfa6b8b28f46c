// Collectives of a restored rank (proxy mode, docs/proxy.md). Data crosses the channel as
// packed bytes (the old library's datatype engine packs and unpacks here); the proxy runs
// the collective on MPI_BYTE. Reductions on a predefined datatype with a predefined
// operation run in the proxy with its own handles, i.e. with the same algorithms as the
// original run; any other reduction (user op, derived datatype) gathers every rank's
// contribution and reduces them here, in rank order, with MPI_Reduce_local, which calls
// the application's own function. Nonblocking collectives complete when they are started.
#include <unistd.h>

#include <cstring>
#include <vector>

#include "crcp/backend.h"
#include "crcp/comm_table.h"
#include "crcp/completion.h"
#include "crcp/crcp_abort.h"
#include "crcp/crcp_hooks.h"
#include "crcp/crcp_proxy.h"
#include "crcp/proxy_client.h"
#include "crcp/vrequest.h"
#include "proxy/predefined.h"

namespace ocr::crcp {
namespace {

using proxy::Op;

enum ReduceKind { kReduce = 0, kAllreduce = 1, kScan = 2, kExscan = 3 };

struct Block {  // an arena allocation released at scope end
  int64_t off = -1;
  explicit Block(size_t bytes) : off(arena_alloc(bytes ? bytes : 1)) {
    if (off < 0) fatal("the proxy channel's message arena is full (%zu bytes)", bytes);
  }
  ~Block() { arena_free(off); }
  unsigned char* p() const { return arena_at(off); }
};

MPI_Aint extent_of(MPI_Datatype dt) {
  MPI_Aint lb = 0, ext = 0;
  PMPI_Type_get_extent(dt, &lb, &ext);
  return ext;
}

const char* at(const void* base, MPI_Aint elems, MPI_Datatype dt) {
  return static_cast<const char*>(base) + elems * extent_of(dt);
}
char* at(void* base, MPI_Aint elems, MPI_Datatype dt) {
  return static_cast<char*>(base) + elems * extent_of(dt);
}

size_t pack_into(const void* buf, int count, MPI_Datatype dt, unsigned char* out, size_t cap) {
  int pos = 0;
  if (count > 0 && cap > 0)
    PMPI_Pack(buf, count, dt, out, static_cast<int>(cap), &pos, MPI_COMM_WORLD);
  return static_cast<size_t>(pos);
}

void unpack_from(const unsigned char* in, size_t bytes, void* buf, int count, MPI_Datatype dt) {
  int pos = 0;
  if (count > 0 && bytes > 0)
    PMPI_Unpack(in, static_cast<int>(bytes), &pos, buf, count, dt, MPI_COMM_WORLD);
}

// A typed scratch buffer for `count` elements of dt.
struct TypedBuf {
  std::vector<char> mem;
  char* base;
  TypedBuf(int count, MPI_Datatype dt) {
    MPI_Aint lb = 0, ext = 0, tlb = 0, text = 0;
    PMPI_Type_get_extent(dt, &lb, &ext);
    PMPI_Type_get_true_extent(dt, &tlb, &text);
    mem.resize(static_cast<size_t>(count > 0 ? (count - 1) * ext + text : 0) + 1);
    base = mem.data() - tlb;
  }
};

int px_barrier(CommInfo* c) {
  return proxy_call(Op::kBarrier, {c->proxy_id}).rc;
}

int px_bcast(void* buf, int count, MPI_Datatype dt, int root, CommInfo* c) {
  const size_t n = pack_size(count, dt);
  Block b(n);
  if (c->rank == root) pack_into(buf, count, dt, b.p(), n);
  int rc = proxy_call(Op::kBcast, {b.off, static_cast<int64_t>(n), root, c->proxy_id}).rc;
  if (c->rank != root) unpack_from(b.p(), n, buf, count, dt);
  return rc;
}

int px_reduce(const void* sendbuf, void* recvbuf, int count, MPI_Datatype dt, MPI_Op op, int root,
              CommInfo* c, ReduceKind kind) {
  const bool in_place = sendbuf == MPI_IN_PLACE;
  const bool gets_result = kind == kReduce   ? c->rank == root
                           : kind == kExscan ? c->rank != 0
                                             : true;
  const int ti = proxy::type_index(dt), oi = proxy::op_index(op);
  if (ti >= 0 && oi >= 0) {
    const size_t bytes = static_cast<size_t>(count) * static_cast<size_t>(extent_of(dt));
    Block r(bytes);
    int64_t sendoff = -1;
    Block s(in_place ? 0 : bytes);
    if (in_place) {
      memcpy(r.p(), recvbuf, bytes);
    } else {
      memcpy(s.p(), sendbuf, bytes);
      sendoff = s.off;
      if (kind == kExscan && c->rank == 0 && bytes) memcpy(r.p(), recvbuf, bytes);
    }
    int rc = proxy_call(Op::kReduce, {sendoff, r.off, count, ti, oi, root, c->proxy_id, kind}).rc;
    if (gets_result && bytes) memcpy(recvbuf, r.p(), bytes);
    return rc;
  }
  // Gather every contribution, reduce here in rank order.
  const size_t n = pack_size(count, dt);
  Block mine(n), all(n * static_cast<size_t>(c->size));
  pack_into(in_place ? recvbuf : sendbuf, count, dt, mine.p(), n);
  int rc =
      proxy_call(Op::kGather, {mine.off, static_cast<int64_t>(n), all.off, 0, c->proxy_id, 1, 0})
          .rc;
  if (rc != MPI_SUCCESS || !gets_result) return rc;
  int last = kind == kScan ? c->rank : kind == kExscan ? c->rank - 1 : c->size - 1;
  unpack_from(all.p() + static_cast<size_t>(last) * n, n, recvbuf, count, dt);
  TypedBuf tmp(count, dt);
  for (int i = last - 1; i >= 0; i--) {
    unpack_from(all.p() + static_cast<size_t>(i) * n, n, tmp.base, count, dt);
    PMPI_Reduce_local(tmp.base, recvbuf, count, dt, op);
  }
  return rc;
}

int px_gather(const void* sendbuf, int scount, MPI_Datatype stype, void* recvbuf, int rcount,
              MPI_Datatype rtype, int root, CommInfo* c, bool all) {
  const bool receives = all || c->rank == root;
  const bool in_place = sendbuf == MPI_IN_PLACE;
  const size_t n = in_place ? pack_size(rcount, rtype) : pack_size(scount, stype);
  Block mine(n);
  if (in_place)
    pack_into(at(recvbuf, static_cast<MPI_Aint>(c->rank) * rcount, rtype), rcount, rtype, mine.p(),
              n);
  else
    pack_into(sendbuf, scount, stype, mine.p(), n);
  Block got(receives ? n * static_cast<size_t>(c->size) : 0);
  int rc = proxy_call(Op::kGather, {mine.off, static_cast<int64_t>(n), got.off, root, c->proxy_id,
                                    all ? 1 : 0, 0})
               .rc;
  if (receives)
    for (int i = 0; i < c->size; i++)
      if (!(in_place && i == c->rank))
        unpack_from(got.p() + static_cast<size_t>(i) * n, n,
                    at(recvbuf, static_cast<MPI_Aint>(i) * rcount, rtype), rcount, rtype);
  return rc;
}

int px_gatherv(const void* sendbuf, int scount, MPI_Datatype stype, void* recvbuf,
               const int rcounts[], const int displs[], MPI_Datatype rtype, int root, CommInfo* c,
               bool all) {
  const bool receives = all || c->rank == root;
  const bool in_place = sendbuf == MPI_IN_PLACE;
  std::vector<int> meta(2 * static_cast<size_t>(c->size), 0);
  size_t total = 0;
  if (receives)
    for (int i = 0; i < c->size; i++) {
      meta[static_cast<size_t>(i)] = static_cast<int>(pack_size(rcounts[i], rtype));
      meta[static_cast<size_t>(c->size + i)] = static_cast<int>(total);
      total += static_cast<size_t>(meta[static_cast<size_t>(i)]);
    }
  const size_t n = in_place ? pack_size(rcounts[c->rank], rtype) : pack_size(scount, stype);
  Block mine(n), got(total);
  if (in_place)
    pack_into(at(recvbuf, displs[c->rank], rtype), rcounts[c->rank], rtype, mine.p(), n);
  else
    pack_into(sendbuf, scount, stype, mine.p(), n);
  int rc =
      proxy_call(Op::kGather,
                 {mine.off, static_cast<int64_t>(n), got.off, root, c->proxy_id, all ? 1 : 0, 1},
                 meta.data(), meta.size() * sizeof(int))
          .rc;
  if (receives)
    for (int i = 0; i < c->size; i++)
      if (!(in_place && i == c->rank))
        unpack_from(got.p() + meta[static_cast<size_t>(c->size + i)],
                    static_cast<size_t>(meta[static_cast<size_t>(i)]),
                    at(recvbuf, displs[i], rtype), rcounts[i], rtype);
  return rc;
}

int px_scatter(const void* sendbuf, int scount, MPI_Datatype stype, void* recvbuf, int rcount,
               MPI_Datatype rtype, int root, CommInfo* c) {
  const bool is_root = c->rank == root;
  const bool in_place = recvbuf == MPI_IN_PLACE;
  const size_t n = is_root ? pack_size(scount, stype) : pack_size(rcount, rtype);
  Block all(is_root ? n * static_cast<size_t>(c->size) : 0), mine(n);
  if (is_root)
    for (int i = 0; i < c->size; i++)
      pack_into(at(sendbuf, static_cast<MPI_Aint>(i) * scount, stype), scount, stype,
                all.p() + static_cast<size_t>(i) * n, n);
  int rc = proxy_call(Op::kScatter, {all.off, in_place ? -1 : mine.off, static_cast<int64_t>(n),
                                     root, c->proxy_id, 0})
               .rc;
  if (!in_place) unpack_from(mine.p(), n, recvbuf, rcount, rtype);
  return rc;
}

int px_scatterv(const void* sendbuf, const int scounts[], const int displs[], MPI_Datatype stype,
                void* recvbuf, int rcount, MPI_Datatype rtype, int root, CommInfo* c) {
  const bool is_root = c->rank == root;
  const bool in_place = recvbuf == MPI_IN_PLACE;
  std::vector<int> meta(2 * static_cast<size_t>(c->size), 0);
  size_t total = 0;
  if (is_root)
    for (int i = 0; i < c->size; i++) {
      meta[static_cast<size_t>(i)] = static_cast<int>(pack_size(scounts[i], stype));
      meta[static_cast<size_t>(c->size + i)] = static_cast<int>(total);
      total += static_cast<size_t>(meta[static_cast<size_t>(i)]);
    }
  const size_t n = in_place ? 0 : pack_size(rcount, rtype);
  Block all(total), mine(n);
  if (is_root)
    for (int i = 0; i < c->size; i++)
      pack_into(at(sendbuf, displs[i], stype), scounts[i], stype,
                all.p() + meta[static_cast<size_t>(c->size + i)],
                static_cast<size_t>(meta[static_cast<size_t>(i)]));
  int rc =
      proxy_call(Op::kScatter,
                 {all.off, in_place ? -1 : mine.off, static_cast<int64_t>(n), root, c->proxy_id, 1},
                 meta.data(), meta.size() * sizeof(int))
          .rc;
  if (!in_place) unpack_from(mine.p(), n, recvbuf, rcount, rtype);
  return rc;
}

int px_alltoall(const void* sendbuf, int scount, MPI_Datatype stype, void* recvbuf, int rcount,
                MPI_Datatype rtype, CommInfo* c) {
  const bool in_place = sendbuf == MPI_IN_PLACE;
  const void* src = in_place ? recvbuf : sendbuf;
  const int sc = in_place ? rcount : scount;
  MPI_Datatype st = in_place ? rtype : stype;
  const size_t n = pack_size(sc, st);
  const size_t size = static_cast<size_t>(c->size);
  Block out(n * size), in(n * size);
  for (int i = 0; i < c->size; i++)
    pack_into(at(src, static_cast<MPI_Aint>(i) * sc, st), sc, st,
              out.p() + static_cast<size_t>(i) * n, n);
  int rc = proxy_call(Op::kAlltoall, {out.off, static_cast<int64_t>(n), in.off, c->proxy_id, 0}).rc;
  for (int i = 0; i < c->size; i++)
    unpack_from(in.p() + static_cast<size_t>(i) * n, n,
                at(recvbuf, static_cast<MPI_Aint>(i) * rcount, rtype), rcount, rtype);
  return rc;
}

int px_alltoallv(const void* sendbuf, const int scounts[], const int sdispls[], MPI_Datatype stype,
                 void* recvbuf, const int rcounts[], const int rdispls[], MPI_Datatype rtype,
                 CommInfo* c) {
  const bool in_place = sendbuf == MPI_IN_PLACE;
  const void* src = in_place ? recvbuf : sendbuf;
  const int* sc = in_place ? rcounts : scounts;
  const int* sd = in_place ? rdispls : sdispls;
  MPI_Datatype st = in_place ? rtype : stype;
  const size_t size = static_cast<size_t>(c->size);
  std::vector<int> meta(4 * size, 0);
  size_t stotal = 0, rtotal = 0;
  for (size_t i = 0; i < size; i++) {
    meta[i] = static_cast<int>(pack_size(sc[i], st));
    meta[size + i] = static_cast<int>(stotal);
    stotal += static_cast<size_t>(meta[i]);
    meta[2 * size + i] = static_cast<int>(pack_size(rcounts[i], rtype));
    meta[3 * size + i] = static_cast<int>(rtotal);
    rtotal += static_cast<size_t>(meta[2 * size + i]);
  }
  Block out(stotal), in(rtotal);
  for (size_t i = 0; i < size; i++)
    pack_into(at(src, sd[i], st), sc[i], st, out.p() + meta[size + i],
              static_cast<size_t>(meta[i]));
  int rc = proxy_call(Op::kAlltoall, {out.off, 0, in.off, c->proxy_id, 1}, meta.data(),
                      meta.size() * sizeof(int))
               .rc;
  for (size_t i = 0; i < size; i++)
    unpack_from(in.p() + meta[3 * size + i], static_cast<size_t>(meta[2 * size + i]),
                at(recvbuf, rdispls[i], rtype), rcounts[i], rtype);
  return rc;
}

int px_reduce_scatter(const void* sendbuf, void* recvbuf, const int rcounts[], MPI_Datatype dt,
                      MPI_Op op, CommInfo* c) {
  int total = 0, before = 0;
  for (int i = 0; i < c->size; i++) {
    if (i < c->rank) before += rcounts[i];
    total += rcounts[i];
  }
  TypedBuf full(total, dt);
  const void* src = sendbuf;
  if (sendbuf == MPI_IN_PLACE) src = recvbuf;  // recvbuf holds the whole input then
  int rc = px_reduce(src, full.base, total, dt, op, 0, c, kAllreduce);
  // A typed copy of this rank's block.
  const size_t n = pack_size(rcounts[c->rank], dt);
  std::vector<unsigned char> tmp(n + 1);
  pack_into(at(full.base, before, dt), rcounts[c->rank], dt, tmp.data(), n);
  unpack_from(tmp.data(), n, recvbuf, rcounts[c->rank], dt);
  return rc;
}

CommInfo* comm_of(MPI_Comm comm, const char* call) {
  return comm_require(comm, call);
}

MPI_Request done_request(MPI_Comm comm) {
  VRequest* r = vreq_new(ReqKind::kCollective, comm_lookup(comm));
  r->active = r->done = true;
  empty_status(&r->status);
  active_add(r);
  return handle_of(r);
}

}  // namespace
}  // namespace ocr::crcp

using namespace ocr::crcp;

extern "C" {

int ocr_proxy_MPI_Barrier(MPI_Comm comm) {
  return px_barrier(comm_of(comm, "MPI_Barrier"));
}
int ocr_proxy_MPI_Bcast(void* buf, int count, MPI_Datatype dt, int root, MPI_Comm comm) {
  return px_bcast(buf, count, dt, root, comm_of(comm, "MPI_Bcast"));
}
int ocr_proxy_MPI_Reduce(const void* s, void* r, int count, MPI_Datatype dt, MPI_Op op, int root,
                         MPI_Comm comm) {
  return px_reduce(s, r, count, dt, op, root, comm_of(comm, "MPI_Reduce"), kReduce);
}
int ocr_proxy_MPI_Allreduce(const void* s, void* r, int count, MPI_Datatype dt, MPI_Op op,
                            MPI_Comm comm) {
  return px_reduce(s, r, count, dt, op, 0, comm_of(comm, "MPI_Allreduce"), kAllreduce);
}
int ocr_proxy_MPI_Scan(const void* s, void* r, int count, MPI_Datatype dt, MPI_Op op,
                       MPI_Comm comm) {
  return px_reduce(s, r, count, dt, op, 0, comm_of(comm, "MPI_Scan"), kScan);
}
int ocr_proxy_MPI_Exscan(const void* s, void* r, int count, MPI_Datatype dt, MPI_Op op,
                         MPI_Comm comm) {
  return px_reduce(s, r, count, dt, op, 0, comm_of(comm, "MPI_Exscan"), kExscan);
}
int ocr_proxy_MPI_Gather(const void* s, int sc, MPI_Datatype st, void* r, int rc, MPI_Datatype rt,
                         int root, MPI_Comm comm) {
  return px_gather(s, sc, st, r, rc, rt, root, comm_of(comm, "MPI_Gather"), false);
}
int ocr_proxy_MPI_Allgather(const void* s, int sc, MPI_Datatype st, void* r, int rc,
                            MPI_Datatype rt, MPI_Comm comm) {
  return px_gather(s, sc, st, r, rc, rt, 0, comm_of(comm, "MPI_Allgather"), true);
}
int ocr_proxy_MPI_Gatherv(const void* s, int sc, MPI_Datatype st, void* r, const int rcs[],
                          const int ds[], MPI_Datatype rt, int root, MPI_Comm comm) {
  return px_gatherv(s, sc, st, r, rcs, ds, rt, root, comm_of(comm, "MPI_Gatherv"), false);
}
int ocr_proxy_MPI_Allgatherv(const void* s, int sc, MPI_Datatype st, void* r, const int rcs[],
                             const int ds[], MPI_Datatype rt, MPI_Comm comm) {
  return px_gatherv(s, sc, st, r, rcs, ds, rt, 0, comm_of(comm, "MPI_Allgatherv"), true);
}
int ocr_proxy_MPI_Scatter(const void* s, int sc, MPI_Datatype st, void* r, int rc, MPI_Datatype rt,
                          int root, MPI_Comm comm) {
  return px_scatter(s, sc, st, r, rc, rt, root, comm_of(comm, "MPI_Scatter"));
}
int ocr_proxy_MPI_Scatterv(const void* s, const int scs[], const int ds[], MPI_Datatype st, void* r,
                           int rc, MPI_Datatype rt, int root, MPI_Comm comm) {
  return px_scatterv(s, scs, ds, st, r, rc, rt, root, comm_of(comm, "MPI_Scatterv"));
}
int ocr_proxy_MPI_Alltoall(const void* s, int sc, MPI_Datatype st, void* r, int rc, MPI_Datatype rt,
                           MPI_Comm comm) {
  return px_alltoall(s, sc, st, r, rc, rt, comm_of(comm, "MPI_Alltoall"));
}
int ocr_proxy_MPI_Alltoallv(const void* s, const int scs[], const int sds[], MPI_Datatype st,
                            void* r, const int rcs[], const int rds[], MPI_Datatype rt,
                            MPI_Comm comm) {
  return px_alltoallv(s, scs, sds, st, r, rcs, rds, rt, comm_of(comm, "MPI_Alltoallv"));
}
int ocr_proxy_MPI_Reduce_scatter(const void* s, void* r, const int rcs[], MPI_Datatype dt,
                                 MPI_Op op, MPI_Comm comm) {
  return px_reduce_scatter(s, r, rcs, dt, op, comm_of(comm, "MPI_Reduce_scatter"));
}
int ocr_proxy_MPI_Reduce_scatter_block(const void* s, void* r, int rc, MPI_Datatype dt, MPI_Op op,
                                       MPI_Comm comm) {
  CommInfo* c = comm_of(comm, "MPI_Reduce_scatter_block");
  std::vector<int> counts(static_cast<size_t>(c->size), rc);
  return px_reduce_scatter(s, r, counts.data(), dt, op, c);
}

// Nonblocking forms: done when started (documented limitation: a program that needs the
// collective to overlap with point-to-point traffic it depends on cannot be restarted).
int ocr_proxy_MPI_Ibarrier(MPI_Comm comm, MPI_Request* req) {
  int rc = ocr_proxy_MPI_Barrier(comm);
  *req = done_request(comm);
  return rc;
}
int ocr_proxy_MPI_Ibcast(void* buf, int count, MPI_Datatype dt, int root, MPI_Comm comm,
                         MPI_Request* req) {
  int rc = ocr_proxy_MPI_Bcast(buf, count, dt, root, comm);
  *req = done_request(comm);
  return rc;
}
int ocr_proxy_MPI_Ireduce(const void* s, void* r, int count, MPI_Datatype dt, MPI_Op op, int root,
                          MPI_Comm comm, MPI_Request* req) {
  int rc = ocr_proxy_MPI_Reduce(s, r, count, dt, op, root, comm);
  *req = done_request(comm);
  return rc;
}
int ocr_proxy_MPI_Iallreduce(const void* s, void* r, int count, MPI_Datatype dt, MPI_Op op,
                             MPI_Comm comm, MPI_Request* req) {
  int rc = ocr_proxy_MPI_Allreduce(s, r, count, dt, op, comm);
  *req = done_request(comm);
  return rc;
}
int ocr_proxy_MPI_Iscan(const void* s, void* r, int count, MPI_Datatype dt, MPI_Op op,
                        MPI_Comm comm, MPI_Request* req) {
  int rc = ocr_proxy_MPI_Scan(s, r, count, dt, op, comm);
  *req = done_request(comm);
  return rc;
}
int ocr_proxy_MPI_Iexscan(const void* s, void* r, int count, MPI_Datatype dt, MPI_Op op,
                          MPI_Comm comm, MPI_Request* req) {
  int rc = ocr_proxy_MPI_Exscan(s, r, count, dt, op, comm);
  *req = done_request(comm);
  return rc;
}
int ocr_proxy_MPI_Igather(const void* s, int sc, MPI_Datatype st, void* r, int rc, MPI_Datatype rt,
                          int root, MPI_Comm comm, MPI_Request* req) {
  int e = ocr_proxy_MPI_Gather(s, sc, st, r, rc, rt, root, comm);
  *req = done_request(comm);
  return e;
}
int ocr_proxy_MPI_Iallgather(const void* s, int sc, MPI_Datatype st, void* r, int rc,
                             MPI_Datatype rt, MPI_Comm comm, MPI_Request* req) {
  int e = ocr_proxy_MPI_Allgather(s, sc, st, r, rc, rt, comm);
  *req = done_request(comm);
  return e;
}
int ocr_proxy_MPI_Igatherv(const void* s, int sc, MPI_Datatype st, void* r, const int rcs[],
                           const int ds[], MPI_Datatype rt, int root, MPI_Comm comm,
                           MPI_Request* req) {
  int e = ocr_proxy_MPI_Gatherv(s, sc, st, r, rcs, ds, rt, root, comm);
  *req = done_request(comm);
  return e;
}
int ocr_proxy_MPI_Iallgatherv(const void* s, int sc, MPI_Datatype st, void* r, const int rcs[],
                              const int ds[], MPI_Datatype rt, MPI_Comm comm, MPI_Request* req) {
  int e = ocr_proxy_MPI_Allgatherv(s, sc, st, r, rcs, ds, rt, comm);
  *req = done_request(comm);
  return e;
}
int ocr_proxy_MPI_Iscatter(const void* s, int sc, MPI_Datatype st, void* r, int rc, MPI_Datatype rt,
                           int root, MPI_Comm comm, MPI_Request* req) {
  int e = ocr_proxy_MPI_Scatter(s, sc, st, r, rc, rt, root, comm);
  *req = done_request(comm);
  return e;
}
int ocr_proxy_MPI_Iscatterv(const void* s, const int scs[], const int ds[], MPI_Datatype st,
                            void* r, int rc, MPI_Datatype rt, int root, MPI_Comm comm,
                            MPI_Request* req) {
  int e = ocr_proxy_MPI_Scatterv(s, scs, ds, st, r, rc, rt, root, comm);
  *req = done_request(comm);
  return e;
}
int ocr_proxy_MPI_Ialltoall(const void* s, int sc, MPI_Datatype st, void* r, int rc,
                            MPI_Datatype rt, MPI_Comm comm, MPI_Request* req) {
  int e = ocr_proxy_MPI_Alltoall(s, sc, st, r, rc, rt, comm);
  *req = done_request(comm);
  return e;
}
int ocr_proxy_MPI_Ialltoallv(const void* s, const int scs[], const int sds[], MPI_Datatype st,
                             void* r, const int rcs[], const int rds[], MPI_Datatype rt,
                             MPI_Comm comm, MPI_Request* req) {
  int e = ocr_proxy_MPI_Alltoallv(s, scs, sds, st, r, rcs, rds, rt, comm);
  *req = done_request(comm);
  return e;
}
int ocr_proxy_MPI_Ireduce_scatter(const void* s, void* r, const int rcs[], MPI_Datatype dt,
                                  MPI_Op op, MPI_Comm comm, MPI_Request* req) {
  int e = ocr_proxy_MPI_Reduce_scatter(s, r, rcs, dt, op, comm);
  *req = done_request(comm);
  return e;
}
int ocr_proxy_MPI_Ireduce_scatter_block(const void* s, void* r, int rc, MPI_Datatype dt, MPI_Op op,
                                        MPI_Comm comm, MPI_Request* req) {
  int e = ocr_proxy_MPI_Reduce_scatter_block(s, r, rc, dt, op, comm);
  *req = done_request(comm);
  return e;
}

int ocr_proxy_MPI_Abort(MPI_Comm, int errorcode) {
  proxy_call(ocr::proxy::Op::kAbort, {errorcode});
  _exit(errorcode ? errorcode : 1);
}

}  // extern "C"
