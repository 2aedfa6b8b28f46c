// Tests of the tool <-> runtime control channel: round trips of the three file kinds,
// the allocation-free result writer, refusal of malformed or foreign files, and the
// control directory's safety rules. OMPI_CR_CONTROL_DIR points at a fresh temp dir.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "crs/skip_reasons.h"
#include "snapc/control_channel.h"

namespace ocr {
namespace {

namespace fs = std::filesystem;

class ControlChannelTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* old = getenv("OMPI_CR_CONTROL_DIR");
    had_env_ = old != nullptr;
    if (old) old_env_ = old;
    char tmpl[] = "/tmp/ocr-control-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    base_ = tmpl;
    dir_ = base_ + "/ctl";
    setenv("OMPI_CR_CONTROL_DIR", dir_.c_str(), 1);
  }
  void TearDown() override {
    fs::remove_all(base_);
    if (had_env_)
      setenv("OMPI_CR_CONTROL_DIR", old_env_.c_str(), 1);
    else
      unsetenv("OMPI_CR_CONTROL_DIR");
  }

  std::string resolve() {
    std::string dir, err;
    EXPECT_TRUE(control_dir(&dir, &err)) << err;
    return dir;
  }
  std::string dir_error() {
    std::string dir, err;
    EXPECT_FALSE(control_dir(&dir, &err));
    return err;
  }
  void write_raw(const std::string& name, const std::string& text, mode_t mode = 0600) {
    resolve();
    const std::string path = dir_ + "/" + name;
    int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(write(fd, text.data(), text.size()), static_cast<ssize_t>(text.size()));
    ASSERT_EQ(fchmod(fd, mode), 0);
    close(fd);
  }
  static mode_t mode_of(const std::string& path) {
    struct stat st;
    EXPECT_EQ(lstat(path.c_str(), &st), 0) << path;
    return st.st_mode & 07777;
  }
  // Only the named files, no leftover temporaries.
  std::vector<std::string> listing() {
    std::vector<std::string> names;
    for (const auto& e : fs::directory_iterator(dir_)) names.push_back(e.path().filename());
    std::sort(names.begin(), names.end());
    return names;
  }
  static std::string agent_text(const std::string& override_line = "") {
    std::string t = "version=1\npid=4242\nstart_time=123\nsignal=12\nuid=0\n";
    return t + override_line;
  }
  std::string read_agent_error(const std::string& text) {
    write_raw("4242.agent", text);
    AgentInfo info;
    std::string err;
    EXPECT_FALSE(read_agent_info(4242, &info, &err)) << "accepted:\n" << text;
    EXPECT_EQ(err.find('\n'), std::string::npos);
    return err;
  }
  static std::string result_text(const std::string& status = "ok",
                                 const std::string& image = "/snap/1.crimg") {
    std::string t = "version=1\nid=77\nstatus=" + status + "\nimage=" + image +
                    "\nmessage=hi\nseq=1\nsaved_bytes=2\nmicros=3\nthreads=4\n";
    for (unsigned i = 0; i < OCR_SKIP_REASONS; i++)
      t += std::string("skipped_") + skip_reason_name(i) + "=" + std::to_string(i) + "\n";
    return t;
  }

  bool had_env_ = false;
  std::string old_env_, base_, dir_;
};

// --- control directory ---

TEST_F(ControlChannelTest, DirectoryCreatedPrivate) {
  ASSERT_FALSE(fs::exists(dir_));
  EXPECT_EQ(resolve(), dir_);
  EXPECT_EQ(mode_of(dir_), 0700u);
  EXPECT_EQ(resolve(), dir_);  // existing is fine
}

TEST_F(ControlChannelTest, DirectoryTrailingSlashIgnored) {
  setenv("OMPI_CR_CONTROL_DIR", (dir_ + "//").c_str(), 1);
  EXPECT_EQ(resolve(), dir_);
}

TEST_F(ControlChannelTest, DirectoryGroupOrOtherWritableRefused) {
  ASSERT_EQ(mkdir(dir_.c_str(), 0700), 0);
  ASSERT_EQ(chmod(dir_.c_str(), 0777), 0);
  EXPECT_EQ(dir_error(), "control directory " + dir_ +
                             ": writable by group or others (mode 0777); it must be private "
                             "(chmod 700)");
  ASSERT_EQ(chmod(dir_.c_str(), 0720), 0);
  EXPECT_NE(dir_error().find("mode 0720"), std::string::npos);
  ASSERT_EQ(chmod(dir_.c_str(), 0755), 0);  // readable by others is not a hole
  EXPECT_EQ(resolve(), dir_);
}

TEST_F(ControlChannelTest, DirectoryOfAnotherOwnerRefused) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to chown";
  ASSERT_EQ(mkdir(dir_.c_str(), 0700), 0);
  ASSERT_EQ(chown(dir_.c_str(), 65534, 65534), 0);
  EXPECT_EQ(dir_error(), "control directory " + dir_ + ": owned by uid 65534, not by uid 0");
  AgentInfo info;
  std::string err;
  EXPECT_FALSE(read_agent_info(1, &info, &err));
  EXPECT_NE(err.find("owned by uid 65534"), std::string::npos) << err;
  char buf[4096];
  EXPECT_EQ(control_dir_nomalloc(buf, sizeof buf), -EPERM);
}

TEST_F(ControlChannelTest, DirectoryMustBeADirectory) {
  { std::ofstream(dir_) << "x"; }
  EXPECT_EQ(dir_error(), "control directory " + dir_ + ": not a directory");
  fs::remove(dir_);
  fs::create_directory(base_ + "/real");
  fs::permissions(base_ + "/real", fs::perms::owner_all);
  fs::create_directory_symlink(base_ + "/real", dir_);  // a planted symlink is refused too
  EXPECT_EQ(dir_error(), "control directory " + dir_ + ": not a directory");
}

TEST_F(ControlChannelTest, RelativeDirectoryRefused) {
  setenv("OMPI_CR_CONTROL_DIR", "relative/dir", 1);
  EXPECT_EQ(dir_error(), "OMPI_CR_CONTROL_DIR=relative/dir: not an absolute path");
}

TEST_F(ControlChannelTest, MissingParentReported) {
  setenv("OMPI_CR_CONTROL_DIR", (base_ + "/no/such").c_str(), 1);
  EXPECT_NE(dir_error().find("No such file or directory"), std::string::npos);
}

TEST_F(ControlChannelTest, DefaultDirectoryIsPerUser) {
  unsetenv("OMPI_CR_CONTROL_DIR");
  std::string dir, err;
  ASSERT_TRUE(control_dir(&dir, &err)) << err;
  EXPECT_EQ(dir, "/tmp/ompi-cr-" + std::to_string(geteuid()));
  char buf[4096];
  EXPECT_EQ(control_dir_nomalloc(buf, sizeof buf), 0);
  EXPECT_EQ(dir, buf);
  EXPECT_EQ(control_dir_nomalloc(buf, 8), -ENAMETOOLONG);
}

TEST_F(ControlChannelTest, RootCreatesDirectoryForAnotherUser) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root";
  std::string dir, err;
  ASSERT_TRUE(control_dir(&dir, &err, 65534)) << err;
  struct stat st;
  ASSERT_EQ(stat(dir.c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 65534u);
  CheckpointRequest req;
  req.id = 9;
  ASSERT_TRUE(write_request(31, req, &err, 65534)) << err;
  ASSERT_EQ(stat(request_path(dir, 31).c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 65534u);  // so that the runtime of uid 65534 accepts it
  EXPECT_TRUE(withdraw_request(31, 9, 65534));
}

// --- process facts ---

TEST(ProcessFacts, StartTimeAndState) {
  EXPECT_GT(process_start_time(getpid()), 0u);
  EXPECT_EQ(process_start_time(getpid()), process_start_time(getpid()));
  EXPECT_EQ(process_start_time(999999999), 0u);
  EXPECT_EQ(process_start_time(0), 0u);
  EXPECT_EQ(process_state(getpid()), 'R');
  EXPECT_EQ(process_state(999999999), 0);
  // Field 22 of /proc/self/stat, counted independently.
  std::ifstream in("/proc/self/stat");
  std::string stat;
  std::getline(in, stat);
  std::istringstream rest(stat.substr(stat.rfind(')') + 2));
  std::string field;
  for (int i = 3; i <= 22; i++) rest >> field;
  EXPECT_EQ(std::to_string(process_start_time(getpid())), field);
}

// --- agent file ---

TEST_F(ControlChannelTest, AgentRoundTrip) {
  AgentInfo in{4242, 987654321, 12, 1000};
  std::string err;
  ASSERT_TRUE(write_agent_info(in, &err)) << err;
  EXPECT_EQ(mode_of(agent_info_path(dir_, 4242)), 0600u);
  EXPECT_EQ(listing(), std::vector<std::string>{"4242.agent"});
  AgentInfo out;
  ASSERT_TRUE(read_agent_info(4242, &out, &err)) << err;
  EXPECT_EQ(out.pid, 4242);
  EXPECT_EQ(out.start_time, 987654321u);
  EXPECT_EQ(out.signal, 12);
  EXPECT_EQ(out.uid, 1000u);
  remove_agent_info(4242);
  EXPECT_TRUE(listing().empty());
  EXPECT_FALSE(read_agent_info(4242, &out, &err));
  EXPECT_EQ(err, agent_info_path(dir_, 4242) + ": No such file or directory");
}

TEST_F(ControlChannelTest, AgentDropsStaleRequest) {
  CheckpointRequest req;
  req.id = 5;
  std::string err;
  ASSERT_TRUE(write_request(4242, req, &err)) << err;
  ASSERT_TRUE(write_agent_info({4242, 1, 12, 0}, &err)) << err;
  EXPECT_EQ(listing(), std::vector<std::string>{"4242.agent"});
}

TEST_F(ControlChannelTest, AgentMalformed) {
  EXPECT_NE(
      read_agent_error("version=1\npid=4242\nstart_time=123\nsignal=12\n").find("missing key uid"),
      std::string::npos);
  EXPECT_NE(read_agent_error("version=2\npid=4242\nstart_time=123\nsignal=12\nuid=0\n")
                .find("unsupported version 2"),
            std::string::npos);
  EXPECT_NE(read_agent_error("version=1\npid=4243\nstart_time=123\nsignal=12\nuid=0\n")
                .find("describes pid 4243, not 4242"),
            std::string::npos);
  EXPECT_NE(read_agent_error("version=1\npid=4242\nstart_time=123\nsignal=65\nuid=0\n")
                .find("signal=65: not a number in 1..64"),
            std::string::npos);
  EXPECT_NE(read_agent_error("version=1\npid=4242\nstart_time=0\nsignal=12\nuid=0\n")
                .find("start_time=0"),
            std::string::npos);
  for (const char* bad_pid : {"0", "-1", "+5", " 5", "5 ", "0x10", "", "4194305",
                              "18446744073709551616", "99999999999999999999999"}) {
    SCOPED_TRACE(bad_pid);
    std::string text =
        std::string("version=1\npid=") + bad_pid + "\nstart_time=123\nsignal=12\nuid=0\n";
    EXPECT_NE(read_agent_error(text).find("pid="), std::string::npos);
  }
  EXPECT_NE(read_agent_error(agent_text("pid=4242\n")).find("duplicate key pid"),
            std::string::npos);
  EXPECT_NE(read_agent_error(agent_text("garbage\n")).find("line 6: not key=value"),
            std::string::npos);
  EXPECT_NE(read_agent_error(agent_text("=x\n")).find("not key=value"), std::string::npos);
  EXPECT_NE(read_agent_error(agent_text("Bad Key=1\n")).find("bad key"), std::string::npos);
  EXPECT_NE(read_agent_error(agent_text(std::string("note=a\0b\n", 9))).find("control character"),
            std::string::npos);
  EXPECT_NE(read_agent_error(std::string(70000, 'x')).find("too large"), std::string::npos);
}

TEST_F(ControlChannelTest, AgentUnknownKeysAndMissingNewlineAccepted) {
  std::string text = agent_text("future_key=whatever\n\n");
  text += "another=1";  // no final newline
  write_raw("4242.agent", text);
  AgentInfo info;
  std::string err;
  EXPECT_TRUE(read_agent_info(4242, &info, &err)) << err;
}

TEST_F(ControlChannelTest, FileOfAnotherOwnerRefused) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to chown";
  write_raw("4242.agent", agent_text());
  ASSERT_EQ(chown((dir_ + "/4242.agent").c_str(), 65534, 65534), 0);
  EXPECT_EQ(read_agent_error(""), dir_ + "/4242.agent: owned by uid 65534, not by uid 0");
}

TEST_F(ControlChannelTest, GroupWritableFileRefused) {
  write_raw("4242.agent", agent_text(), 0620);
  AgentInfo info;
  std::string err;
  EXPECT_FALSE(read_agent_info(4242, &info, &err));
  EXPECT_EQ(err, dir_ + "/4242.agent: writable by group or others");
}

TEST_F(ControlChannelTest, SymlinkFileRefused) {
  write_raw("real", agent_text());
  fs::create_symlink(dir_ + "/real", dir_ + "/4242.agent");
  AgentInfo info;
  std::string err;
  EXPECT_FALSE(read_agent_info(4242, &info, &err));
  EXPECT_NE(err.find("Too many levels of symbolic links"), std::string::npos) << err;
}

TEST_F(ControlChannelTest, DirectoryInPlaceOfFileRefused) {
  resolve();
  ASSERT_EQ(mkdir((dir_ + "/4242.agent").c_str(), 0700), 0);
  AgentInfo info;
  std::string err;
  EXPECT_FALSE(read_agent_info(4242, &info, &err));
  EXPECT_EQ(err, dir_ + "/4242.agent: not a regular file");
}

// --- requests ---

TEST_F(ControlChannelTest, RequestRoundTrip) {
  CheckpointRequest in;
  in.id = 0xfedcba9876543210ull;
  in.snapshot_dir = "/scratch/snaps";
  in.term = true;
  in.verbose = true;
  in.kind = "incremental";
  std::string err;
  ASSERT_TRUE(write_request(4242, in, &err)) << err;
  EXPECT_EQ(mode_of(request_path(dir_, 4242)), 0600u);
  EXPECT_EQ(listing(), std::vector<std::string>{"4242.request"});
  CheckpointRequest out;
  ASSERT_TRUE(take_request(4242, &out, &err)) << err;
  EXPECT_EQ(out.id, in.id);
  EXPECT_EQ(out.snapshot_dir, in.snapshot_dir);
  EXPECT_TRUE(out.term);
  EXPECT_TRUE(out.verbose);
  EXPECT_EQ(out.kind, "incremental");
  EXPECT_TRUE(listing().empty());  // taken means removed
  EXPECT_FALSE(take_request(4242, &out, &err));
  EXPECT_EQ(err, request_path(dir_, 4242) + ": No such file or directory");
}

TEST_F(ControlChannelTest, RequestDefaults) {
  CheckpointRequest in;
  in.id = 1;
  std::string err;
  ASSERT_TRUE(write_request(7, in, &err)) << err;
  CheckpointRequest out;
  ASSERT_TRUE(take_request(7, &out, &err)) << err;
  EXPECT_EQ(out.snapshot_dir, "");
  EXPECT_FALSE(out.term);
  EXPECT_FALSE(out.verbose);
  EXPECT_EQ(out.kind, "full");
}

TEST_F(ControlChannelTest, OnlyOneRequestPending) {
  CheckpointRequest a, b;
  a.id = 1;
  b.id = 2;
  std::string err;
  ASSERT_TRUE(write_request(7, a, &err)) << err;
  EXPECT_FALSE(write_request(7, b, &err));
  EXPECT_NE(err.find("already pending"), std::string::npos) << err;
  EXPECT_EQ(listing(), std::vector<std::string>{"7.request"});  // no temporary left
  CheckpointRequest out;
  ASSERT_TRUE(take_request(7, &out, &err)) << err;
  EXPECT_EQ(out.id, 1u);
  EXPECT_TRUE(write_request(7, b, &err)) << err;
}

TEST_F(ControlChannelTest, WithdrawOnlyOwnRequest) {
  CheckpointRequest a;
  a.id = 11;
  std::string err;
  ASSERT_TRUE(write_request(7, a, &err)) << err;
  EXPECT_FALSE(withdraw_request(7, 12));
  EXPECT_EQ(listing(), std::vector<std::string>{"7.request"});
  EXPECT_TRUE(withdraw_request(7, 11));
  EXPECT_TRUE(listing().empty());
  EXPECT_FALSE(withdraw_request(7, 11));
}

TEST_F(ControlChannelTest, RequestWriterValidates) {
  CheckpointRequest r;
  std::string err;
  EXPECT_FALSE(write_request(7, r, &err));  // id 0
  EXPECT_NE(err.find("id must not be 0"), std::string::npos);
  r.id = 3;
  r.snapshot_dir = "relative";
  EXPECT_FALSE(write_request(7, r, &err));
  EXPECT_NE(err.find("absolute"), std::string::npos);
  r.snapshot_dir = "/a\nkind=evil";
  EXPECT_FALSE(write_request(7, r, &err));
  r.snapshot_dir = "";
  r.kind = "partial";
  EXPECT_FALSE(write_request(7, r, &err));
  EXPECT_NE(err.find("kind must be"), std::string::npos);
  EXPECT_TRUE(listing().empty());
}

TEST_F(ControlChannelTest, MalformedRequestRemovedButIdKept) {
  write_raw("7.request", "version=1\nid=55\nsnapshot_dir=\nterm=2\nverbose=0\nkind=full\n");
  CheckpointRequest out;
  std::string err;
  EXPECT_FALSE(take_request(7, &out, &err));
  EXPECT_EQ(out.id, 55u);  // the runtime can still answer with an error result
  EXPECT_EQ(err, request_path(dir_, 7) + ": term=2: not a number in 0..1");
  EXPECT_TRUE(listing().empty());

  write_raw("7.request", "version=1\nid=0\nsnapshot_dir=\nterm=0\nverbose=0\nkind=full\n");
  EXPECT_FALSE(take_request(7, &out, &err));
  EXPECT_EQ(out.id, 0u);
  write_raw("7.request", "version=1\nid=5\nsnapshot_dir=rel\nterm=0\nverbose=0\nkind=full\n");
  EXPECT_FALSE(take_request(7, &out, &err));
  EXPECT_NE(err.find("snapshot_dir=rel: not an absolute path"), std::string::npos) << err;
  write_raw("7.request", "version=1\nid=5\nsnapshot_dir=\nterm=0\nverbose=0\nkind=half\n");
  EXPECT_FALSE(take_request(7, &out, &err));
  EXPECT_NE(err.find("kind=half"), std::string::npos) << err;
  write_raw("7.request", "version=1\nid=5\nterm=0\nverbose=0\nkind=full\n");
  EXPECT_FALSE(take_request(7, &out, &err));
  EXPECT_NE(err.find("missing key snapshot_dir"), std::string::npos) << err;
  EXPECT_TRUE(listing().empty());
}

// --- results ---

TEST_F(ControlChannelTest, ResultAbsentUntilWritten) {
  CheckpointResult r;
  bool present = true;
  std::string err;
  EXPECT_TRUE(read_result(7, 77, &r, &present, &err)) << err;
  EXPECT_FALSE(present);
}

TEST_F(ControlChannelTest, NomallocResultRoundTrip) {
  uint64_t skipped[OCR_SKIP_REASONS];
  for (unsigned i = 0; i < OCR_SKIP_REASONS; i++) skipped[i] = (i + 1) * 4096ull;
  skipped[OCR_SKIP_UNCHANGED] = UINT64_MAX;
  ASSERT_EQ(write_result_nomalloc(4242, 0xabcdef0123456789ull, true, "/snap/4242/3.crimg",
                                  "saved\nin two lines", 3, 123456789, skipped, 4567, 9),
            0);
  const std::string path = result_path(dir_, 4242, 0xabcdef0123456789ull);
  EXPECT_EQ(mode_of(path), 0600u);
  EXPECT_EQ(listing(), std::vector<std::string>{"4242.12379813738877118345.result"});
  CheckpointResult r;
  bool present = false;
  std::string err;
  ASSERT_TRUE(read_result(4242, 0xabcdef0123456789ull, &r, &present, &err)) << err;
  EXPECT_TRUE(present);
  EXPECT_TRUE(r.ok);
  EXPECT_EQ(r.id, 0xabcdef0123456789ull);
  EXPECT_EQ(r.image, "/snap/4242/3.crimg");
  EXPECT_EQ(r.message, "saved in two lines");
  EXPECT_EQ(r.seq, 3u);
  EXPECT_EQ(r.saved_bytes, 123456789u);
  EXPECT_EQ(r.micros, 4567u);
  EXPECT_EQ(r.threads, 9u);
  for (unsigned i = 0; i < OCR_SKIP_REASONS; i++) EXPECT_EQ(r.skipped[i], skipped[i]) << i;
  remove_result(4242, 0xabcdef0123456789ull);
  EXPECT_TRUE(listing().empty());
}

TEST_F(ControlChannelTest, NomallocErrorResult) {
  std::string long_message(5000, 'm');
  ASSERT_EQ(write_result_nomalloc(5, 6, false, nullptr, long_message.c_str(), 0, 0, nullptr, 0, 0),
            0);
  CheckpointResult r;
  bool present = false;
  std::string err;
  ASSERT_TRUE(read_result(5, 6, &r, &present, &err)) << err;
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.image, "");
  EXPECT_EQ(r.message, std::string(1024, 'm'));
  for (uint64_t s : r.skipped) EXPECT_EQ(s, 0u);
}

TEST_F(ControlChannelTest, NomallocResultReportsBadDirectory) {
  setenv("OMPI_CR_CONTROL_DIR", "relative", 1);
  EXPECT_EQ(write_result_nomalloc(5, 6, true, "/x", "", 0, 0, nullptr, 0, 0), -EINVAL);
}

TEST_F(ControlChannelTest, ResultMalformed) {
  CheckpointResult r;
  bool present = false;
  std::string err;
  auto refused = [&](const std::string& text, const std::string& what) {
    write_raw("7.77.result", text);
    EXPECT_FALSE(read_result(7, 77, &r, &present, &err)) << text;
    EXPECT_TRUE(present);
    EXPECT_NE(err.find(what), std::string::npos) << "got: " << err << "\nwant: " << what;
  };
  write_raw("7.77.result", result_text());
  ASSERT_TRUE(read_result(7, 77, &r, &present, &err)) << err;
  refused(result_text("maybe"), "status=maybe: not ok or error");
  refused(result_text("ok", "relative.crimg"), "image=relative.crimg: not an absolute path");
  refused(result_text("ok", ""), "not an absolute path");
  std::string t = result_text();
  t.replace(t.find("skipped_zero=5\n"), 15, "");
  refused(t, "missing key skipped_zero");
  t = result_text();
  t.replace(t.find("id=77"), 5, "id=78");
  refused(t, "answers request 78");
  t = result_text();
  t.replace(t.find("threads=4"), 9, "threads=x");
  refused(t, "threads=x");
  // An error result needs no image.
  write_raw("7.77.result", result_text("error", ""));
  EXPECT_TRUE(read_result(7, 77, &r, &present, &err)) << err;
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.message, "hi");
}

}  // namespace
}  // namespace ocr
