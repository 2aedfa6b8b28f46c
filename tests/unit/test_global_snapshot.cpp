// Tests of the global snapshot directory and its HDF5 metadata: commits and read-back,
// crash leftovers, refusal of corrupt, foreign or out-of-range files, and that h5dump
// reads what we write.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <hdf5.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>

#include "crs/skip_reasons.h"
#include "snapc/global_snapshot.h"

namespace ocr::snapc {
namespace {

namespace fs = std::filesystem;

JobInfo make_job(int nprocs) {
  JobInfo j;
  j.mpirun_pid = 31337;
  j.nprocs = nprocs;
  j.argv = {"mpirun", "-np", std::to_string(nprocs), "./app", "in dat"};
  j.cwd = "/home/user/run";
  j.environment = {"OMPI_CR_SNAPSHOT_DIR=/scratch", "OMPI_MCA_pml=ob1", "AWS_SECRET=hunter2"};
  j.mpi_library = "Open MPI v4.1.4, package: Debian OpenMPI";
  j.hosts = {"node1"};
  return j;
}

SnapshotInfo make_snap(uint64_t seq, int nprocs, const std::string& kind = "full",
                       int64_t parent = -1) {
  SnapshotInfo s;
  s.seq = seq;
  s.kind = kind;
  s.parent_seq = parent;
  s.started = 1.7e9 + static_cast<double>(seq);
  s.committed = s.started + 0.5;
  s.coordination_seconds = 0.125;
  s.write_seconds = 0.25;
  s.total_seconds = 0.5;
  s.term = seq == 7;
  for (int r = 0; r < nprocs; r++) {
    RankRecord rec{};
    rec.rank = r;
    rec.pid = 1000 + r;
    snprintf(rec.host, sizeof rec.host, "node1");
    snprintf(rec.image_path, sizeof rec.image_path, "%s", rank_image_relpath(seq, r).c_str());
    rec.bytes_written = 4096ull * (r + 1) + seq;
    rec.pages_saved = static_cast<uint64_t>(r + 1);
    for (unsigned i = 0; i < OCR_SKIP_REASONS; i++) rec.pages_skipped[i] = i * 10 + r;
    rec.image_hash = 0xfeedface00000000ull + r;
    rec.write_seconds = 0.01 * (r + 1);
    rec.drained_messages = static_cast<uint64_t>(r);
    rec.drained_bytes = 8ull * r;
    snprintf(rec.kind, sizeof rec.kind, "%s", kind.c_str());
    s.ranks.push_back(rec);
  }
  return s;
}

class GlobalSnapshotTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/ocr-gsnap-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    base_ = tmpl;
    gdir_ = global_snapshot_dir(base_ + "/snaps", 31337);
  }
  void TearDown() override { fs::remove_all(base_); }

  std::string meta() const { return gdir_ + "/" + kMetaFileName; }

  // next_sequence + every rank's directory + commit, as the runtime does it.
  void commit(const SnapshotInfo& s, int nprocs) {
    uint64_t seq = 0;
    std::string err;
    ASSERT_TRUE(next_sequence(gdir_, &seq, &err)) << err;
    ASSERT_EQ(seq, s.seq);
    for (int r = 0; r < nprocs; r++) ASSERT_TRUE(prepare_rank_dir(gdir_, seq, r, &err)) << err;
    ASSERT_TRUE(commit_snapshot(gdir_, make_job(nprocs), s, &err)) << err;
  }

  std::string read_error() {
    GlobalSnapshot g;
    std::string err;
    EXPECT_FALSE(read_global_snapshot(gdir_, &g, &err));
    return err;
  }

  // Rewrites one attribute of a committed file in place, as damage would.
  void set_attr_i64(const std::string& object, const char* name, int64_t v) {
    hid_t f = H5Fopen(meta().c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
    ASSERT_GE(f, 0);
    hid_t o = H5Oopen(f, object.c_str(), H5P_DEFAULT);
    hid_t a = H5Aopen(o, name, H5P_DEFAULT);
    herr_t rc = H5Awrite(a, H5T_NATIVE_INT64, &v);
    H5Aclose(a);
    H5Oclose(o);
    H5Fclose(f);
    ASSERT_GE(o, 0);
    ASSERT_GE(a, 0);
    ASSERT_GE(rc, 0);
  }

  std::string base_, gdir_;
};

TEST_F(GlobalSnapshotTest, Paths) {
  EXPECT_EQ(global_snapshot_dir("/home/u/", 12), "/home/u/ompi_global_snapshot_12.ckpt");
  EXPECT_EQ(rank_image_relpath(3, 7), "3/opal_snapshot_7.ckpt/image.crimg");
}

TEST_F(GlobalSnapshotTest, CommitSeveralAndReadBack) {
  const int n = 3;
  commit(make_snap(0, n), n);
  commit(make_snap(1, n, "incremental", 0), n);
  commit(make_snap(2, n, "incremental", 1), n);

  GlobalSnapshot g;
  std::string err;
  ASSERT_TRUE(read_global_snapshot(gdir_, &g, &err)) << err;
  EXPECT_EQ(g.dir, gdir_);
  EXPECT_EQ(g.job.mpirun_pid, 31337);
  EXPECT_EQ(g.job.nprocs, n);
  EXPECT_EQ(g.job.argv, make_job(n).argv);
  EXPECT_EQ(g.job.cwd, "/home/user/run");
  // Only C/R and MCA settings are stored.
  EXPECT_EQ(g.job.environment,
            (std::vector<std::string>{"OMPI_CR_SNAPSHOT_DIR=/scratch", "OMPI_MCA_pml=ob1"}));
  EXPECT_EQ(g.job.mpi_library, make_job(n).mpi_library);
  EXPECT_EQ(g.job.hosts, std::vector<std::string>{"node1"});
  ASSERT_EQ(g.snapshots.size(), 3u);
  for (uint64_t seq = 0; seq < 3; seq++) {
    const SnapshotInfo want = seq == 0
                                  ? make_snap(0, n)
                                  : make_snap(seq, n, "incremental", static_cast<int64_t>(seq) - 1);
    const SnapshotInfo& got = g.snapshots[seq];
    EXPECT_EQ(got.seq, seq);
    EXPECT_EQ(got.kind, want.kind);
    EXPECT_EQ(got.parent_seq, want.parent_seq);
    EXPECT_EQ(got.started, want.started);
    EXPECT_EQ(got.committed, want.committed);
    EXPECT_EQ(got.coordination_seconds, want.coordination_seconds);
    EXPECT_EQ(got.write_seconds, want.write_seconds);
    EXPECT_EQ(got.total_seconds, want.total_seconds);
    EXPECT_TRUE(got.complete);
    ASSERT_EQ(got.ranks.size(), static_cast<size_t>(n));
    for (int r = 0; r < n; r++)
      EXPECT_EQ(memcmp(&got.ranks[r], &want.ranks[r], sizeof(RankRecord)), 0) << "rank " << r;
  }
  struct stat st;
  ASSERT_EQ(stat(meta().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  ASSERT_EQ(stat(gdir_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  ASSERT_EQ(stat((gdir_ + "/1/opal_snapshot_2.ckpt").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  // No temporary left behind.
  for (const auto& e : fs::directory_iterator(gdir_))
    EXPECT_EQ(e.path().filename().string().find(".tmp"), std::string::npos) << e.path();
}

TEST_F(GlobalSnapshotTest, CommitRefusals) {
  const int n = 2;
  commit(make_snap(0, n), n);
  std::string err;
  EXPECT_FALSE(commit_snapshot(gdir_, make_job(n), make_snap(0, n), &err));
  EXPECT_NE(err.find("already committed"), std::string::npos) << err;
  EXPECT_FALSE(commit_snapshot(gdir_, make_job(n), make_snap(1, n, "incremental", 5), &err));
  EXPECT_NE(err.find("parent"), std::string::npos) << err;
  EXPECT_FALSE(commit_snapshot(gdir_, make_job(4), make_snap(1, 4), &err));
  EXPECT_NE(err.find("job of 2 ranks"), std::string::npos) << err;
  // A refused commit leaves the file as it was.
  GlobalSnapshot g;
  ASSERT_TRUE(read_global_snapshot(gdir_, &g, &err)) << err;
  EXPECT_EQ(g.snapshots.size(), 1u);
}

TEST_F(GlobalSnapshotTest, FieldValidationOnCommit) {
  const int n = 2;
  uint64_t seq;
  std::string err;
  ASSERT_TRUE(next_sequence(gdir_, &seq, &err)) << err;
  auto refused = [&](const JobInfo& j, const SnapshotInfo& s, const std::string& expect) {
    std::string e;
    EXPECT_FALSE(commit_snapshot(gdir_, j, s, &e)) << expect;
    EXPECT_NE(e.find(expect), std::string::npos) << e;
    EXPECT_FALSE(fs::exists(meta()));
  };
  SnapshotInfo s = make_snap(0, n);
  s.ranks.pop_back();
  refused(make_job(n), s, "1 rank rows for 2 ranks");
  s = make_snap(0, n);
  s.ranks[1].rank = 0;
  refused(make_job(n), s, "rank order");
  s = make_snap(0, n);
  s.ranks[0].pid = 0;
  refused(make_job(n), s, "pid 0 out of range");
  s = make_snap(0, n);
  snprintf(s.ranks[0].image_path, sizeof s.ranks[0].image_path, "0/../../etc/passwd");
  refused(make_job(n), s, "'..' component");
  s = make_snap(0, n);
  snprintf(s.ranks[0].image_path, sizeof s.ranks[0].image_path, "/abs/image");
  refused(make_job(n), s, "not a relative path");
  s = make_snap(0, n);
  memset(s.ranks[0].host, 'x', sizeof s.ranks[0].host);  // no terminating NUL
  refused(make_job(n), s, "host");
  s = make_snap(0, n);
  s.ranks[1].write_seconds = NAN;
  refused(make_job(n), s, "write_seconds");
  s = make_snap(0, n, "incremental", -1);
  refused(make_job(n), s, "not an earlier snapshot");
  s = make_snap(0, n);
  s.kind = "differential";
  refused(make_job(n), s, "differential");
  s = make_snap(0, n);
  s.total_seconds = -1;
  refused(make_job(n), s, "duration");
  JobInfo j = make_job(n);
  j.cwd = "relative";
  refused(j, make_snap(0, n), "cwd");
  j = make_job(n);
  j.argv.clear();
  refused(j, make_snap(0, n), "argv");
  j = make_job(n);
  j.hosts = {"a", "b", "c"};
  refused(j, make_snap(0, n), "hosts has 3 entries for 2 ranks");
  j = make_job(n);
  j.hosts = {"bad/host"};
  refused(j, make_snap(0, n), "host name");
}

TEST_F(GlobalSnapshotTest, CrashLeftoversAreIgnored) {
  const int n = 2;
  commit(make_snap(0, n), n);
  // A rank's directory of seq 1 whose commit never happened, and a half-written temporary.
  std::string err;
  ASSERT_TRUE(prepare_rank_dir(gdir_, 1, 0, &err)) << err;
  {
    std::ofstream junk(meta() + ".tmp.99999");
    junk << "half an HDF5 file";
  }
  GlobalSnapshot g;
  ASSERT_TRUE(read_global_snapshot(gdir_, &g, &err)) << err;
  ASSERT_EQ(g.snapshots.size(), 1u);
  EXPECT_EQ(g.snapshots[0].seq, 0u);
  uint64_t seq = 0;
  ASSERT_TRUE(next_sequence(gdir_, &seq, &err)) << err;
  EXPECT_EQ(seq, 2u);  // 1 is burnt: its directory may hold a partial image
  commit(make_snap(2, n), n);
  ASSERT_TRUE(read_global_snapshot(gdir_, &g, &err)) << err;
  ASSERT_EQ(g.snapshots.size(), 2u);
  EXPECT_EQ(g.snapshots[1].seq, 2u);
}

TEST_F(GlobalSnapshotTest, NextSequenceAlsoCountsCommittedSeqs) {
  commit(make_snap(0, 1), 1);
  fs::remove_all(gdir_ + "/0");
  uint64_t seq = 0;
  std::string err;
  ASSERT_TRUE(next_sequence(gdir_, &seq, &err)) << err;
  EXPECT_EQ(seq, 1u);
}

TEST_F(GlobalSnapshotTest, UnsafeDirectoriesRefused) {
  uint64_t seq;
  std::string err;
  ASSERT_TRUE(next_sequence(gdir_, &seq, &err)) << err;
  EXPECT_EQ(seq, 0u);
  ASSERT_EQ(chmod(gdir_.c_str(), 0770), 0);
  EXPECT_FALSE(next_sequence(gdir_, &seq, &err));
  EXPECT_NE(err.find("writable by group or others"), std::string::npos) << err;
  EXPECT_FALSE(prepare_rank_dir(gdir_, 0, 0, &err));
  ASSERT_EQ(chmod(gdir_.c_str(), 0700), 0);
  const std::string link = base_ + "/link.ckpt";
  ASSERT_EQ(symlink(gdir_.c_str(), link.c_str()), 0);
  EXPECT_FALSE(next_sequence(link, &seq, &err));
  EXPECT_NE(err.find("symbolic link"), std::string::npos) << err;
  EXPECT_FALSE(next_sequence("relative/dir", &seq, &err));
}

TEST_F(GlobalSnapshotTest, MissingMetaFile) {
  std::string err;
  uint64_t seq;
  ASSERT_TRUE(next_sequence(gdir_, &seq, &err)) << err;
  err = read_error();
  EXPECT_NE(err.find(kMetaFileName), std::string::npos) << err;
  EXPECT_NE(err.find("No such file"), std::string::npos) << err;
}

TEST_F(GlobalSnapshotTest, NonHdf5AndTruncatedFilesRefused) {
  commit(make_snap(0, 2), 2);
  const auto size = fs::file_size(meta());
  fs::resize_file(meta(), size / 2);
  std::string err = read_error();
  EXPECT_NE(err.find(meta()), std::string::npos) << err;
  EXPECT_EQ(err.find('\n'), std::string::npos) << err;

  fs::resize_file(meta(), 0);
  err = read_error();
  EXPECT_NE(err.find("not an HDF5 file"), std::string::npos) << err;

  {
    std::ofstream f(meta(), std::ios::trunc);
    f << "version=1\nthis is not HDF5 at all\n";
  }
  err = read_error();
  EXPECT_NE(err.find("not an HDF5 file"), std::string::npos) << err;
  // A broken file must not be silently replaced by a commit either.
  uint64_t seq;
  EXPECT_FALSE(next_sequence(gdir_, &seq, &err));
  EXPECT_FALSE(commit_snapshot(gdir_, make_job(2), make_snap(1, 2), &err));
}

TEST_F(GlobalSnapshotTest, ForeignHdf5FileRefused) {
  std::string err;
  uint64_t seq;
  ASSERT_TRUE(next_sequence(gdir_, &seq, &err)) << err;
  int fd = open(meta().c_str(), O_WRONLY | O_CREAT | O_EXCL, 0600);
  ASSERT_GE(fd, 0);
  close(fd);
  hid_t f = H5Fcreate(meta().c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  ASSERT_GE(f, 0);
  H5Fclose(f);
  err = read_error();
  EXPECT_NE(err.find("not an ompi-cr global snapshot metadata file"), std::string::npos) << err;
}

TEST_F(GlobalSnapshotTest, FileOfAnotherOwnerRefused) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to chown";
  commit(make_snap(0, 1), 1);
  ASSERT_EQ(chown(meta().c_str(), 65534, 65534), 0);
  std::string err = read_error();
  EXPECT_NE(err.find("owned by uid 65534"), std::string::npos) << err;
  ASSERT_EQ(chown(meta().c_str(), 0, 0), 0);
  ASSERT_EQ(chown(gdir_.c_str(), 65534, 65534), 0);
  err = read_error();
  EXPECT_NE(err.find("owned by uid 65534"), std::string::npos) << err;
}

TEST_F(GlobalSnapshotTest, PermissiveOrLinkedMetaRefused) {
  commit(make_snap(0, 1), 1);
  ASSERT_EQ(chmod(meta().c_str(), 0666), 0);
  EXPECT_NE(read_error().find("writable by group or others"), std::string::npos);
  ASSERT_EQ(chmod(meta().c_str(), 0600), 0);
  fs::rename(meta(), base_ + "/elsewhere.h5");
  ASSERT_EQ(symlink((base_ + "/elsewhere.h5").c_str(), meta().c_str()), 0);
  EXPECT_NE(read_error().find("symbolic link"), std::string::npos);
}

TEST_F(GlobalSnapshotTest, DamagedFieldsRefused) {
  const int n = 2;
  commit(make_snap(0, n), n);
  const std::string pristine = base_ + "/pristine.h5";
  fs::copy_file(meta(), pristine);
  auto restore = [&] { fs::copy_file(pristine, meta(), fs::copy_options::overwrite_existing); };

  set_attr_i64("/", "nprocs", 3);  // the rank table has 2 rows
  EXPECT_NE(read_error().find("2 rows for 3 ranks"), std::string::npos);
  restore();
  set_attr_i64("/", "format_version", 2);
  EXPECT_NE(read_error().find("format version 2"), std::string::npos);
  restore();
  set_attr_i64("/", "mpirun_pid", -5);
  EXPECT_NE(read_error().find("mpirun_pid = -5 is out of range"), std::string::npos);
  restore();
  set_attr_i64("/snapshots/0", "term", 7);
  EXPECT_NE(read_error().find("term = 7"), std::string::npos);
  restore();
  set_attr_i64("/snapshots/0", "parent_seq", 0);  // a full snapshot with a parent
  EXPECT_NE(read_error().find("no parent"), std::string::npos);
  restore();
  set_attr_i64("/snapshots/0", "seq", 4);
  EXPECT_NE(read_error().find("seq attribute is 4"), std::string::npos);
  restore();
  GlobalSnapshot g;
  std::string err;
  EXPECT_TRUE(read_global_snapshot(gdir_, &g, &err)) << err;
}

TEST_F(GlobalSnapshotTest, H5dumpReadsIt) {
  if (system("command -v h5dump >/dev/null 2>&1") != 0) GTEST_SKIP() << "no h5dump";
  commit(make_snap(0, 2), 2);
  const std::string out = base_ + "/dump.txt";
  const std::string cmd = "h5dump '" + meta() + "' >'" + out + "' 2>&1";
  ASSERT_EQ(system(cmd.c_str()), 0) << cmd;
  std::ifstream in(out);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  for (const char* want :
       {"format_version", "\"skipped_clean_file\"", "\"drained_bytes\"",
        "\"0/opal_snapshot_1.ckpt/image.crimg\"", "GROUP \"topology\"", "\"complete\""})
    EXPECT_NE(text.find(want), std::string::npos) << want;
}

}  // namespace
}  // namespace ocr::snapc
