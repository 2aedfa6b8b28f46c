// Tests of the job-level control files (ompi-checkpoint <-> the ranks of an MPI job):
// round trips, one request at a time, strict parsing of request/result/error files.
// OMPI_CR_CONTROL_DIR points at a fresh temp dir.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include "snapc/control_channel.h"
#include "snapc/job_control.h"

namespace ocr {
namespace {

namespace fs = std::filesystem;
constexpr int64_t kJob = 4242;

class JobControlTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/ocr-jobctl-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    base_ = tmpl;
    dir_ = base_ + "/ctl";
    setenv("OMPI_CR_CONTROL_DIR", dir_.c_str(), 1);
    std::string d, err;
    ASSERT_TRUE(control_dir(&d, &err)) << err;
  }
  void TearDown() override {
    fs::remove_all(base_);
    unsetenv("OMPI_CR_CONTROL_DIR");
  }
  void write_raw(const std::string& name, const std::string& text, mode_t mode = 0600) {
    const std::string path = dir_ + "/" + name;
    int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(write(fd, text.data(), text.size()), static_cast<ssize_t>(text.size()));
    ASSERT_EQ(fchmod(fd, mode), 0);
    close(fd);
  }
  static std::string result_text(const std::string& override_line = "",
                                 const std::string& drop = "") {
    std::string keys[][2] = {
        {"version", "1"},       {"id", "7"},         {"status", "ok"}, {"seq", "3"},
        {"snapshot", "/s/g"},   {"message", "fine"}, {"bytes", "100"}, {"drained_messages", "2"},
        {"drained_bytes", "8"}, {"micros", "5"},     {"nprocs", "4"}};
    std::string text;
    const std::string okey = override_line.substr(0, override_line.find('='));
    for (auto& kv : keys) {
      if (kv[0] == drop) continue;
      if (!override_line.empty() && kv[0] == okey)
        text += override_line + "\n";
      else
        text += kv[0] + "=" + kv[1] + "\n";
    }
    return text;
  }

  std::string base_, dir_;
};

TEST_F(JobControlTest, RequestRoundTrip) {
  JobRequest req;
  req.id = 99;
  req.snapshot_dir = "/data/snaps";
  req.term = true;
  req.kind = "incremental";
  std::string err;
  ASSERT_TRUE(write_job_request(kJob, req, &err)) << err;
  struct stat st;
  ASSERT_EQ(stat(job_request_path(dir_, kJob).c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  JobRequest got;
  bool present = false;
  // Every rank reads the same request: reading does not consume it.
  for (int i = 0; i < 2; i++) {
    ASSERT_TRUE(read_job_request(kJob, &got, &present, &err)) << err;
    ASSERT_TRUE(present);
  }
  EXPECT_EQ(got.id, 99u);
  EXPECT_EQ(got.snapshot_dir, "/data/snaps");
  EXPECT_TRUE(got.term);
  EXPECT_FALSE(got.verbose);
  EXPECT_EQ(got.kind, "incremental");
  EXPECT_EQ(got.mpirun_pid, kJob);
}

TEST_F(JobControlTest, NoRequestIsNotAnError) {
  JobRequest got;
  bool present = true;
  std::string err;
  EXPECT_TRUE(read_job_request(kJob, &got, &present, &err)) << err;
  EXPECT_FALSE(present);
}

TEST_F(JobControlTest, OneRequestAtATime) {
  JobRequest a, b;
  a.id = 1;
  b.id = 2;
  std::string err;
  ASSERT_TRUE(write_job_request(kJob, a, &err)) << err;
  EXPECT_FALSE(write_job_request(kJob, b, &err));
  EXPECT_NE(err.find("already pending"), std::string::npos) << err;
  EXPECT_FALSE(remove_job_request(kJob, 2));  // not its request
  JobRequest got;
  bool present;
  ASSERT_TRUE(read_job_request(kJob, &got, &present, &err));
  EXPECT_EQ(got.id, 1u);
  EXPECT_TRUE(remove_job_request(kJob, 1));
  EXPECT_FALSE(remove_job_request(kJob, 1));
  EXPECT_TRUE(write_job_request(kJob, b, &err)) << err;
  // Another job is independent.
  EXPECT_TRUE(write_job_request(kJob + 1, a, &err)) << err;
}

TEST_F(JobControlTest, RequestRejectsBadInput) {
  JobRequest r;
  std::string err;
  EXPECT_FALSE(write_job_request(kJob, r, &err));  // id 0
  r.id = 5;
  r.snapshot_dir = "relative/dir";
  EXPECT_FALSE(write_job_request(kJob, r, &err));
  r.snapshot_dir = "";
  r.kind = "partial";
  EXPECT_FALSE(write_job_request(kJob, r, &err));
  r.kind = "auto";
  EXPECT_FALSE(write_job_request(0, r, &err));
  EXPECT_TRUE(write_job_request(kJob, r, &err)) << err;
}

TEST_F(JobControlTest, RequestStrictParsing) {
  const std::string good =
      "version=1\nid=5\nmpirun_pid=4242\nsnapshot_dir=\nterm=0\nverbose=0\nkind=full\n";
  const std::string name = std::to_string(kJob) + ".job-request";
  struct Case {
    std::string text, expect;
  } cases[] = {
      {"version=2\nid=5\n", "unsupported version"},
      {"version=1\nid=5\nmpirun_pid=77\nsnapshot_dir=\nterm=0\nverbose=0\nkind=full\n",
       "names job 77"},
      {"version=1\nid=5\nmpirun_pid=4242\nsnapshot_dir=rel\nterm=0\nverbose=0\nkind=full\n",
       "not an absolute path"},
      {"version=1\nid=5\nmpirun_pid=4242\nsnapshot_dir=\nterm=2\nverbose=0\nkind=full\n", "term=2"},
      {"version=1\nid=5\nmpirun_pid=4242\nsnapshot_dir=\nterm=0\nverbose=0\nkind=some\n",
       "kind=some"},
      {"version=1\nid=5\nmpirun_pid=4242\nsnapshot_dir=\nterm=0\nverbose=0\n", "missing key kind"},
      {"garbage\n", "not key=value"},
  };
  for (const Case& c : cases) {
    write_raw(name, c.text);
    JobRequest got;
    bool present = false;
    std::string err;
    EXPECT_FALSE(read_job_request(kJob, &got, &present, &err)) << c.text;
    EXPECT_TRUE(present);
    EXPECT_NE(err.find(c.expect), std::string::npos) << err;
    EXPECT_NE(err.find(name), std::string::npos) << err;
  }
  write_raw(name, good, 0620);
  JobRequest got;
  bool present;
  std::string err;
  EXPECT_FALSE(read_job_request(kJob, &got, &present, &err));
  EXPECT_NE(err.find("writable by group"), std::string::npos) << err;
  write_raw(name, good);
  EXPECT_TRUE(read_job_request(kJob, &got, &present, &err)) << err;
}

TEST_F(JobControlTest, StatusIsOverwritten) {
  std::string line, err;
  EXPECT_FALSE(read_job_status(kJob, 7, &line));
  ASSERT_TRUE(write_job_status(kJob, 7, "coordinating: round 1", &err)) << err;
  ASSERT_TRUE(read_job_status(kJob, 7, &line));
  EXPECT_EQ(line, "coordinating: round 1");
  ASSERT_TRUE(write_job_status(kJob, 7, "writing images\nsecond line", &err)) << err;
  ASSERT_TRUE(read_job_status(kJob, 7, &line));
  EXPECT_EQ(line, "writing images second line");
  EXPECT_FALSE(read_job_status(kJob, 8, &line));
}

TEST_F(JobControlTest, ResultRoundTripWrittenOnce) {
  JobResult r;
  r.id = 7;
  r.ok = true;
  r.seq = 3;
  r.snapshot = "/s/ompi_global_snapshot_4242.ckpt";
  r.message = "two\nlines";
  r.bytes = 1 << 20;
  r.drained_messages = 5;
  r.drained_bytes = 40;
  r.micros = 1234;
  r.nprocs = 4;
  std::string err;
  JobResult got;
  bool present = true;
  ASSERT_TRUE(read_job_result(kJob, 7, &got, &present, &err)) << err;
  EXPECT_FALSE(present);
  ASSERT_TRUE(write_job_result(kJob, r, &err)) << err;
  EXPECT_FALSE(write_job_result(kJob, r, &err));
  EXPECT_NE(err.find("already written"), std::string::npos) << err;
  ASSERT_TRUE(read_job_result(kJob, 7, &got, &present, &err)) << err;
  ASSERT_TRUE(present);
  EXPECT_TRUE(got.ok);
  EXPECT_EQ(got.seq, 3u);
  EXPECT_EQ(got.snapshot, r.snapshot);
  EXPECT_EQ(got.message, "two lines");
  EXPECT_EQ(got.bytes, r.bytes);
  EXPECT_EQ(got.drained_messages, 5u);
  EXPECT_EQ(got.drained_bytes, 40u);
  EXPECT_EQ(got.micros, 1234u);
  EXPECT_EQ(got.nprocs, 4);

  JobResult bad;
  bad.id = 8;
  bad.ok = true;  // ok without a snapshot path
  EXPECT_FALSE(write_job_result(kJob, bad, &err));
  bad.ok = false;
  bad.message = "rank 2: disk full";
  EXPECT_TRUE(write_job_result(kJob, bad, &err)) << err;
  ASSERT_TRUE(read_job_result(kJob, 8, &got, &present, &err)) << err;
  EXPECT_FALSE(got.ok);
  EXPECT_EQ(got.message, "rank 2: disk full");
}

TEST_F(JobControlTest, ResultStrictParsing) {
  const std::string name = std::to_string(kJob) + ".7.job-result";
  struct Case {
    std::string override_line, drop, expect;
  } cases[] = {
      {"", "seq", "missing key seq"},
      {"", "nprocs", "missing key nprocs"},
      {"status=maybe", "", "status=maybe"},
      {"id=8", "", "answers request 8"},
      {"snapshot=relative", "", "not an absolute path"},
      {"seq=-1", "", "seq=-1"},
      {"bytes=18446744073709551616", "", "bytes="},
      {"bytes=12abc", "", "bytes=12abc"},
      {"nprocs=0", "", "nprocs=0"},
      {"nprocs=99999999999", "", "nprocs="},
      {"version=3", "", "unsupported version"},
      {"message=" + std::string(5000, 'x'), "", "message too long"},
  };
  for (const Case& c : cases) {
    write_raw(name, result_text(c.override_line, c.drop));
    JobResult got;
    bool present = false;
    std::string err;
    EXPECT_FALSE(read_job_result(kJob, 7, &got, &present, &err)) << c.override_line << c.drop;
    EXPECT_TRUE(present);
    EXPECT_NE(err.find(c.expect), std::string::npos) << err;
    EXPECT_NE(err.find(name), std::string::npos) << err;
  }
  write_raw(name, result_text() + "seq=4\n");
  JobResult got;
  bool present;
  std::string err;
  EXPECT_FALSE(read_job_result(kJob, 7, &got, &present, &err));
  EXPECT_NE(err.find("duplicate key seq"), std::string::npos) << err;
  write_raw(name, result_text() + "future_key=1\n");
  EXPECT_TRUE(read_job_result(kJob, 7, &got, &present, &err)) << err;
}

TEST_F(JobControlTest, ForeignResultRefused) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to chown";
  const std::string name = std::to_string(kJob) + ".7.job-result";
  write_raw(name, result_text());
  ASSERT_EQ(chown((dir_ + "/" + name).c_str(), 65534, 65534), 0);
  JobResult got;
  bool present;
  std::string err;
  EXPECT_FALSE(read_job_result(kJob, 7, &got, &present, &err));
  EXPECT_NE(err.find("owned by uid 65534"), std::string::npos) << err;
}

TEST_F(JobControlTest, RankErrors) {
  std::string err;
  EXPECT_TRUE(read_rank_errors(kJob, 7).empty());
  ASSERT_TRUE(write_rank_error(kJob, 7, 12, "not yet in MPI_Init", &err)) << err;
  ASSERT_TRUE(write_rank_error(kJob, 7, 3, "already finalized", &err)) << err;
  ASSERT_TRUE(write_rank_error(kJob, 8, 1, "other request", &err)) << err;
  EXPECT_FALSE(write_rank_error(kJob, 7, -1, "x", &err));
  write_raw(std::to_string(kJob) + ".7.rank5.error", "version=1\nid=7\nrank=6\nmessage=x\n");
  write_raw(std::to_string(kJob) + ".7.rank6.error", "nonsense");
  write_raw(std::to_string(kJob) + ".7.rank007.error", "ignored: not canonical");
  auto errors = read_rank_errors(kJob, 7);
  ASSERT_EQ(errors.size(), 4u);
  EXPECT_EQ(errors[0], std::make_pair(3, std::string("already finalized")));
  EXPECT_EQ(errors[1].first, 5);
  EXPECT_NE(errors[1].second.find("does not match its name"), std::string::npos);
  EXPECT_EQ(errors[2].first, 6);
  EXPECT_NE(errors[2].second.find("unreadable error report"), std::string::npos);
  EXPECT_EQ(errors[3], std::make_pair(12, std::string("not yet in MPI_Init")));

  JobResult r;
  r.id = 7;
  ASSERT_TRUE(write_job_result(kJob, r, &err)) << err;
  ASSERT_TRUE(write_job_status(kJob, 7, "x", &err)) << err;
  remove_job_files(kJob, 7);
  EXPECT_TRUE(read_rank_errors(kJob, 7).empty());
  EXPECT_EQ(read_rank_errors(kJob, 8).size(), 1u);
  std::string line;
  EXPECT_FALSE(read_job_status(kJob, 7, &line));
  bool present = true;
  EXPECT_TRUE(read_job_result(kJob, 7, &r, &present, &err));
  EXPECT_FALSE(present);
}

}  // namespace
}  // namespace ocr
