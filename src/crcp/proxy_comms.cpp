// Communicators in proxy mode (docs/proxy.md): rebuilding every communicator of a restored
// rank in its proxy, creating new ones through the proxy, and answering calls on
// communicators created after the restart (which have no object in the old library).
#include <algorithm>
#include <cstring>
#include <vector>

#include "crcp/backend.h"
#include "crcp/comm_table.h"
#include "crcp/crcp_abort.h"
#include "crcp/crcp_fn_ids.h"
#include "crcp/crcp_hooks.h"
#include "crcp/crcp_proxy.h"
#include "crcp/protocol_state.h"
#include "crcp/proxy_client.h"
#include "crcp/proxy_comms.h"

namespace ocr::crcp {
namespace {

using proxy::Op;

// The handle an application gets for a communicator created after the restart: an
// address of ours, so that it cannot be mistaken for an object of the old library.
struct ProxyCommHandle {
  uint64_t magic = 0x4f4350434f4d4dull;  // "OCPCOMM"
  CommInfo* info = nullptr;
};

// Registers the communicator the proxy just created (results of a kComm* call).
MPI_Comm adopt(const ProxyResult& res, CommInfo* parent, int fn) {
  if (res.r[0] < 0) return MPI_COMM_NULL;
  auto* h = new ProxyCommHandle;
  auto handle = reinterpret_cast<MPI_Comm>(h);
  const int size = static_cast<int>(res.r[1]);
  std::vector<int> world(reinterpret_cast<const int*>(res.data),
                         reinterpret_cast<const int*>(res.data) + size);
  CommInfo* c = comm_register_known(handle, 0, size, static_cast<int>(res.r[2]), world);
  c->proxy_id = res.r[0];
  c->proxy_born = true;
  c->id = comm_id_mix(
      comm_id_mix(comm_id_mix(parent->id, parent->seq.load()), static_cast<uint64_t>(fn)),
      static_cast<uint64_t>(c->min_world));
  h->info = c;
  return handle;
}

CommInfo* born(MPI_Comm comm, const char* call) {
  CommInfo* c = comm_require(comm, call);
  if (!c->proxy_born) fatal("%s: internal: not a communicator created after the restart", call);
  return c;
}

void cart_coords_of(const CommInfo* c, int rank, int* coords) {
  const int nd = static_cast<int>(c->cart_dims.size());
  for (int i = nd - 1; i >= 0; i--) {
    coords[i] = rank % c->cart_dims[static_cast<size_t>(i)];
    rank /= c->cart_dims[static_cast<size_t>(i)];
  }
}

// Rank of coordinates (periodic dimensions wrap); -1 when outside a non-periodic one.
int cart_rank_of(const CommInfo* c, const int* coords) {
  int rank = 0;
  for (size_t i = 0; i < c->cart_dims.size(); i++) {
    int d = c->cart_dims[i], x = coords[i];
    if (c->cart_periods[i])
      x = ((x % d) + d) % d;
    else if (x < 0 || x >= d)
      return -1;
    rank = rank * d + x;
  }
  return rank;
}

CommInfo* cart(MPI_Comm comm, const char* call) {
  CommInfo* c = born(comm, call);
  if (c->cart_dims.empty()) fatal("%s: the communicator has no Cartesian topology", call);
  return c;
}

int proxied_rc(int rc) {
  return rc;
}

}  // namespace

bool rebuild_communicators(std::string* err) {
  std::vector<CommInfo*> all;
  comm_for_each(
      [](CommInfo* c, void* arg) { static_cast<std::vector<CommInfo*>*>(arg)->push_back(c); },
      &all);
  // The same global order on every rank (by job-unique id): the group-collective creations
  // below can never wait on each other in a cycle.
  std::sort(all.begin(), all.end(), [](CommInfo* a, CommInfo* b) { return a->id < b->id; });
  for (CommInfo* c : all) {
    if (c->pseudo) continue;
    if (c->handle == MPI_COMM_WORLD) {
      c->proxy_id = 0;
      continue;
    }
    if (c->handle == MPI_COMM_SELF) {
      c->proxy_id = 1;
      continue;
    }
    ProxyResult res =
        proxy_call(Op::kCommFromRanks, {0, c->size, static_cast<int64_t>(c->id & 0x3fffffff), 0},
                   c->world.data(), c->world.size() * sizeof(int));
    if (res.rc != MPI_SUCCESS || res.r[0] < 0) {
      *err = "the proxy could not rebuild a communicator of " + std::to_string(c->size) + " ranks";
      return false;
    }
    c->proxy_id = res.r[0];
    // A Cartesian communicator gets its topology back (same ranks: no reordering).
    std::vector<int> dims, periods;
    if (c->proxy_born) {
      dims = c->cart_dims;
      periods = c->cart_periods;
    } else {
      int topo = MPI_UNDEFINED;
      PMPI_Topo_test(c->handle, &topo);
      if (topo == MPI_CART) {
        int nd = 0;
        PMPI_Cartdim_get(c->handle, &nd);
        dims.resize(static_cast<size_t>(nd));
        periods.resize(static_cast<size_t>(nd));
        std::vector<int> coords(static_cast<size_t>(nd));
        PMPI_Cart_get(c->handle, nd, dims.data(), periods.data(), coords.data());
      } else if (topo != MPI_UNDEFINED) {
        *err = "graph topologies cannot be rebuilt after a restart";
        return false;
      }
    }
    if (!dims.empty()) {
      std::vector<int> data(dims);
      data.insert(data.end(), periods.begin(), periods.end());
      ProxyResult cr =
          proxy_call(Op::kCartCreate, {c->proxy_id, static_cast<int64_t>(dims.size()), 0},
                     data.data(), data.size() * sizeof(int));
      if (cr.rc != MPI_SUCCESS || cr.r[0] < 0) {
        *err = "the proxy could not rebuild a Cartesian communicator";
        return false;
      }
      const int64_t plain = c->proxy_id;
      c->proxy_id = cr.r[0];
      proxy_call(Op::kCommFree, {plain});
    }
  }
  return true;
}

}  // namespace ocr::crcp

using namespace ocr::crcp;
using ocr::proxy::Op;

extern "C" {

int ocr_crcp_proxy_born(MPI_Comm comm) {
  CommInfo* c = comm_lookup(comm);
  return c && c->proxy_born;
}

int ocr_proxy_MPI_Comm_dup(MPI_Comm comm, MPI_Comm* newcomm) {
  CommInfo* p = comm_require(comm, "MPI_Comm_dup");
  ProxyResult res = proxy_call(Op::kCommDup, {p->proxy_id});
  *newcomm = adopt(res, p, OCR_FN_MPI_Comm_dup);
  return proxied_rc(res.rc);
}

int ocr_proxy_MPI_Comm_dup_with_info(MPI_Comm comm, MPI_Info, MPI_Comm* newcomm) {
  CommInfo* p = comm_require(comm, "MPI_Comm_dup_with_info");
  ProxyResult res = proxy_call(Op::kCommDup, {p->proxy_id});
  *newcomm = adopt(res, p, OCR_FN_MPI_Comm_dup_with_info);
  return res.rc;
}

int ocr_proxy_MPI_Comm_split(MPI_Comm comm, int color, int key, MPI_Comm* newcomm) {
  CommInfo* p = comm_require(comm, "MPI_Comm_split");
  ProxyResult res = proxy_call(Op::kCommSplit, {p->proxy_id, color, key});
  *newcomm = adopt(res, p, OCR_FN_MPI_Comm_split);
  return res.rc;
}

int ocr_proxy_MPI_Comm_split_type(MPI_Comm comm, int type, int key, MPI_Info, MPI_Comm* newcomm) {
  CommInfo* p = comm_require(comm, "MPI_Comm_split_type");
  ProxyResult res = proxy_call(Op::kCommSplitType, {p->proxy_id, type, key});
  *newcomm = adopt(res, p, OCR_FN_MPI_Comm_split_type);
  return res.rc;
}

int ocr_proxy_MPI_Comm_create(MPI_Comm comm, MPI_Group group, MPI_Comm* newcomm) {
  CommInfo* p = comm_require(comm, "MPI_Comm_create");
  // Groups are local objects of the old library: translate to world ranks here.
  int n = 0;
  PMPI_Group_size(group, &n);
  std::vector<int> ranks(static_cast<size_t>(n)), world(static_cast<size_t>(n));
  for (int i = 0; i < n; i++) ranks[static_cast<size_t>(i)] = i;
  MPI_Group wg;
  PMPI_Comm_group(MPI_COMM_WORLD, &wg);
  PMPI_Group_translate_ranks(group, n, ranks.data(), wg, world.data());
  PMPI_Group_free(&wg);
  ProxyResult res = proxy_call(Op::kCommFromRanks, {p->proxy_id, n, 0, 1}, world.data(),
                               world.size() * sizeof(int));
  *newcomm = adopt(res, p, OCR_FN_MPI_Comm_create);
  return res.rc;
}

int ocr_proxy_MPI_Cart_create(MPI_Comm comm, int ndims, const int dims[], const int periods[],
                              int reorder, MPI_Comm* newcomm) {
  CommInfo* p = comm_require(comm, "MPI_Cart_create");
  std::vector<int> data(dims, dims + ndims);
  data.insert(data.end(), periods, periods + ndims);
  ProxyResult res = proxy_call(Op::kCartCreate, {p->proxy_id, ndims, reorder}, data.data(),
                               data.size() * sizeof(int));
  *newcomm = adopt(res, p, OCR_FN_MPI_Cart_create);
  if (*newcomm != MPI_COMM_NULL) {
    CommInfo* c = comm_lookup(*newcomm);
    c->cart_dims.assign(dims, dims + ndims);
    c->cart_periods.assign(periods, periods + ndims);
    for (int& x : c->cart_periods) x = x ? 1 : 0;
  }
  return res.rc;
}

int ocr_proxy_MPI_Cart_sub(MPI_Comm comm, const int remain_dims[], MPI_Comm* newcomm) {
  CommInfo* p = comm_require(comm, "MPI_Cart_sub");
  std::vector<int> dims, periods;
  if (p->proxy_born) {
    dims = p->cart_dims;
    periods = p->cart_periods;
  } else {
    int nd = 0;
    PMPI_Cartdim_get(comm, &nd);
    dims.resize(static_cast<size_t>(nd));
    periods.resize(static_cast<size_t>(nd));
    std::vector<int> coords(static_cast<size_t>(nd));
    PMPI_Cart_get(comm, nd, dims.data(), periods.data(), coords.data());
  }
  const int nd = static_cast<int>(dims.size());
  std::vector<int> remain(remain_dims, remain_dims + nd);
  ProxyResult res =
      proxy_call(Op::kCartSub, {p->proxy_id, nd}, remain.data(), remain.size() * sizeof(int));
  *newcomm = adopt(res, p, OCR_FN_MPI_Cart_sub);
  if (*newcomm != MPI_COMM_NULL) {
    CommInfo* c = comm_lookup(*newcomm);
    for (int i = 0; i < nd; i++)
      if (remain[static_cast<size_t>(i)]) {
        c->cart_dims.push_back(dims[static_cast<size_t>(i)]);
        c->cart_periods.push_back(periods[static_cast<size_t>(i)] ? 1 : 0);
      }
  }
  return res.rc;
}

int ocr_proxy_MPI_Comm_free(MPI_Comm* comm) {
  CommInfo* c = comm_require(*comm, "MPI_Comm_free");
  // First the protocol's part (it may park here, and a parked rank drains every
  // registered communicator through the proxy), then the proxy's communicator. Its id is
  // read only afterwards: if this rank was checkpointed while parked here and restarted,
  // the communicator now lives in another proxy under another id (the CommInfo itself
  // stays allocated after unregistering).
  ocr_crcp_comm_freeing(*comm);
  int rc = proxy_call(Op::kCommFree, {c->proxy_id}).rc;
  *comm = MPI_COMM_NULL;  // the old library's object (if any) is left alone: it is dead
  return rc;
}

// --- local calls on communicators created after the restart ---------------------------

int ocr_proxy_MPI_Comm_rank(MPI_Comm comm, int* rank) {
  *rank = born(comm, "MPI_Comm_rank")->rank;
  return MPI_SUCCESS;
}

int ocr_proxy_MPI_Comm_size(MPI_Comm comm, int* size) {
  *size = born(comm, "MPI_Comm_size")->size;
  return MPI_SUCCESS;
}

int ocr_proxy_MPI_Comm_test_inter(MPI_Comm comm, int* flag) {
  born(comm, "MPI_Comm_test_inter");
  *flag = 0;
  return MPI_SUCCESS;
}

int ocr_proxy_MPI_Topo_test(MPI_Comm comm, int* status) {
  *status = born(comm, "MPI_Topo_test")->cart_dims.empty() ? MPI_UNDEFINED : MPI_CART;
  return MPI_SUCCESS;
}

int ocr_proxy_MPI_Comm_group(MPI_Comm comm, MPI_Group* group) {
  CommInfo* c = born(comm, "MPI_Comm_group");
  MPI_Group wg;
  PMPI_Comm_group(MPI_COMM_WORLD, &wg);  // the old library builds groups locally
  int rc = PMPI_Group_incl(wg, c->size, c->world.data(), group);
  PMPI_Group_free(&wg);
  return rc;
}

int ocr_proxy_MPI_Comm_compare(MPI_Comm a, MPI_Comm b, int* result) {
  if (a == b) {
    *result = MPI_IDENT;
    return MPI_SUCCESS;
  }
  CommInfo* ca = comm_require(a, "MPI_Comm_compare");
  CommInfo* cb = comm_require(b, "MPI_Comm_compare");
  if (ca->world == cb->world)
    *result = MPI_CONGRUENT;
  else {
    std::vector<int> x(ca->world), y(cb->world);
    std::sort(x.begin(), x.end());
    std::sort(y.begin(), y.end());
    *result = x == y ? MPI_SIMILAR : MPI_UNEQUAL;
  }
  return MPI_SUCCESS;
}

int ocr_proxy_MPI_Comm_get_attr(MPI_Comm comm, int keyval, void* value, int* flag) {
  born(comm, "MPI_Comm_get_attr");
  // Predefined attributes are the same on every communicator of the job.
  return PMPI_Comm_get_attr(MPI_COMM_WORLD, keyval, value, flag);
}

int ocr_proxy_MPI_Comm_set_errhandler(MPI_Comm comm, MPI_Errhandler) {
  born(comm, "MPI_Comm_set_errhandler");
  return MPI_SUCCESS;  // errors are fatal in the proxy, as with the default handler
}

int ocr_proxy_MPI_Comm_set_name(MPI_Comm comm, const char*) {
  born(comm, "MPI_Comm_set_name");
  return MPI_SUCCESS;
}

int ocr_proxy_MPI_Comm_get_name(MPI_Comm comm, char* name, int* len) {
  born(comm, "MPI_Comm_get_name");
  name[0] = 0;
  *len = 0;
  return MPI_SUCCESS;
}

int ocr_proxy_MPI_Pack(const void* inbuf, int incount, MPI_Datatype dt, void* outbuf, int outsize,
                       int* position, MPI_Comm) {
  return PMPI_Pack(inbuf, incount, dt, outbuf, outsize, position, MPI_COMM_WORLD);
}

int ocr_proxy_MPI_Unpack(const void* inbuf, int insize, int* position, void* outbuf, int outcount,
                         MPI_Datatype dt, MPI_Comm) {
  return PMPI_Unpack(inbuf, insize, position, outbuf, outcount, dt, MPI_COMM_WORLD);
}

int ocr_proxy_MPI_Pack_size(int incount, MPI_Datatype dt, MPI_Comm, int* size) {
  return PMPI_Pack_size(incount, dt, MPI_COMM_WORLD, size);
}

int ocr_proxy_MPI_Cartdim_get(MPI_Comm comm, int* ndims) {
  *ndims = static_cast<int>(cart(comm, "MPI_Cartdim_get")->cart_dims.size());
  return MPI_SUCCESS;
}

int ocr_proxy_MPI_Cart_get(MPI_Comm comm, int maxdims, int dims[], int periods[], int coords[]) {
  CommInfo* c = cart(comm, "MPI_Cart_get");
  const int nd = std::min(maxdims, static_cast<int>(c->cart_dims.size()));
  std::vector<int> me(c->cart_dims.size());
  cart_coords_of(c, c->rank, me.data());
  for (int i = 0; i < nd; i++) {
    dims[i] = c->cart_dims[static_cast<size_t>(i)];
    periods[i] = c->cart_periods[static_cast<size_t>(i)];
    coords[i] = me[static_cast<size_t>(i)];
  }
  return MPI_SUCCESS;
}

int ocr_proxy_MPI_Cart_coords(MPI_Comm comm, int rank, int maxdims, int coords[]) {
  CommInfo* c = cart(comm, "MPI_Cart_coords");
  std::vector<int> all(c->cart_dims.size());
  cart_coords_of(c, rank, all.data());
  for (int i = 0; i < maxdims && i < static_cast<int>(all.size()); i++)
    coords[i] = all[static_cast<size_t>(i)];
  return MPI_SUCCESS;
}

int ocr_proxy_MPI_Cart_rank(MPI_Comm comm, const int coords[], int* rank) {
  CommInfo* c = cart(comm, "MPI_Cart_rank");
  *rank = cart_rank_of(c, coords);
  return *rank < 0 ? MPI_ERR_ARG : MPI_SUCCESS;
}

int ocr_proxy_MPI_Cart_shift(MPI_Comm comm, int direction, int disp, int* source, int* dest) {
  CommInfo* c = cart(comm, "MPI_Cart_shift");
  if (direction < 0 || direction >= static_cast<int>(c->cart_dims.size())) return MPI_ERR_DIMS;
  std::vector<int> me(c->cart_dims.size());
  cart_coords_of(c, c->rank, me.data());
  std::vector<int> x(me);
  x[static_cast<size_t>(direction)] += disp;
  int r = cart_rank_of(c, x.data());
  *dest = r < 0 ? MPI_PROC_NULL : r;
  x = me;
  x[static_cast<size_t>(direction)] -= disp;
  r = cart_rank_of(c, x.data());
  *source = r < 0 ? MPI_PROC_NULL : r;
  return MPI_SUCCESS;
}

}  // extern "C"
