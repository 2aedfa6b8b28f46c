// Tests of file identity capture/comparison: what the restorer uses to refuse a mapped
// file (program, library, data file) that changed since the checkpoint.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <string>

#include "crs/elf_build_id.h"
#include "crs/file_identity.h"

namespace ocr {
namespace {

class FileIdentityTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/ocr-file-identity-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    path_ = dir_ + "/data.bin";
    write_all("hello, identity\n");
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  void write_all(const std::string& text, int flags = O_TRUNC) {
    int fd = open(path_.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC | flags, 0644);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(write(fd, text.data(), text.size()), static_cast<ssize_t>(text.size()));
    close(fd);
  }
  ocr_file_record capture(const std::string& path) {
    ocr_file_record rec{};
    rec.id = 7;
    rec.path_len = 99;
    int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    EXPECT_GE(fd, 0);
    EXPECT_EQ(capture_file_identity(fd, &rec), 0);
    close(fd);
    return rec;
  }
  // Moves the mtime by a known amount without changing content.
  void set_mtime(int64_t sec, long nsec) {
    timespec ts[2] = {{sec, nsec}, {sec, nsec}};
    ASSERT_EQ(utimensat(AT_FDCWD, path_.c_str(), ts, 0), 0);
  }

  std::string dir_, path_;
};

TEST_F(FileIdentityTest, CaptureFillsFieldsAndLeavesIdAlone) {
  struct stat st;
  ASSERT_EQ(stat(path_.c_str(), &st), 0);
  ocr_file_record rec = capture(path_);
  EXPECT_EQ(rec.id, 7u);
  EXPECT_EQ(rec.path_len, 99u);
  EXPECT_EQ(rec.dev, st.st_dev);
  EXPECT_EQ(rec.ino, st.st_ino);
  EXPECT_EQ(rec.size, 16u);
  EXPECT_EQ(rec.mtime_sec, st.st_mtim.tv_sec);
  EXPECT_EQ(rec.mtime_nsec, st.st_mtim.tv_nsec);
  EXPECT_EQ(rec.mode, st.st_mode);
  EXPECT_EQ(rec.flags & OCR_FILE_ELF, 0u);  // not an ELF file
  EXPECT_EQ(rec.build_id_len, 0u);
}

TEST_F(FileIdentityTest, CaptureBadFd) {
  ocr_file_record rec{};
  EXPECT_EQ(capture_file_identity(-1, &rec), -EBADF);
}

TEST_F(FileIdentityTest, SameFileIsSame) {
  ocr_file_record rec = capture(path_);
  std::string why = "unset";
  EXPECT_TRUE(same_file_identity(path_, rec, &why)) << why;
  EXPECT_EQ(why, "");
}

TEST_F(FileIdentityTest, TouchedFileDiffers) {
  set_mtime(1700000000, 1);
  ocr_file_record rec = capture(path_);
  set_mtime(1700000005, 2);
  std::string why;
  EXPECT_FALSE(same_file_identity(path_, rec, &why));
  EXPECT_EQ(why, "mtime 1700000000.000000001 -> 1700000005.000000002");
}

TEST_F(FileIdentityTest, NanosecondsCount) {
  set_mtime(1700000000, 1);
  ocr_file_record rec = capture(path_);
  set_mtime(1700000000, 2);
  std::string why;
  EXPECT_FALSE(same_file_identity(path_, rec, &why));
  EXPECT_NE(why.find("mtime"), std::string::npos);
}

TEST_F(FileIdentityTest, AppendedFileDiffersInSize) {
  ocr_file_record rec = capture(path_);
  write_all("more", O_APPEND);
  std::string why;
  EXPECT_FALSE(same_file_identity(path_, rec, &why));
  EXPECT_EQ(why.rfind("size 16 -> 20", 0), 0u) << why;
}

TEST_F(FileIdentityTest, ReplacedFileReportsInode) {
  set_mtime(1700000000, 0);
  ocr_file_record rec = capture(path_);
  // Same content and times in a new inode: what a copy on another node looks like.
  const std::string other = dir_ + "/copy.bin";
  std::filesystem::copy_file(path_, other);
  timespec ts[2] = {{1700000000, 0}, {1700000000, 0}};
  ASSERT_EQ(utimensat(AT_FDCWD, other.c_str(), ts, 0), 0);
  std::filesystem::rename(other, path_);
  std::string why;
  EXPECT_TRUE(same_file_identity(path_, rec, &why)) << why;
  EXPECT_NE(why.find("different file (dev:ino"), std::string::npos) << why;
  // A changed copy names both the change and the inode.
  write_all("x", O_APPEND);
  EXPECT_FALSE(same_file_identity(path_, rec, &why));
  EXPECT_NE(why.find("size 16 -> 17"), std::string::npos) << why;
  EXPECT_NE(why.find("dev:ino"), std::string::npos) << why;
}

TEST_F(FileIdentityTest, MissingFile) {
  ocr_file_record rec = capture(path_);
  std::string why;
  EXPECT_FALSE(same_file_identity(dir_ + "/gone", rec, &why));
  EXPECT_EQ(why, "No such file or directory");
}

TEST_F(FileIdentityTest, BuildIdOfSelf) {
  ocr_file_record rec = capture("/proc/self/exe");
  ASSERT_NE(rec.flags & OCR_FILE_ELF, 0u) << "test binary built without a build-id?";
  EXPECT_GT(rec.build_id_len, 0u);
  EXPECT_LE(rec.build_id_len, OCR_MAX_BUILD_ID);
  int fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  uint8_t id[OCR_MAX_BUILD_ID];
  int n = read_elf_build_id(fd, id, sizeof id);
  close(fd);
  ASSERT_EQ(n, static_cast<int>(rec.build_id_len));
  EXPECT_EQ(memcmp(id, rec.build_id, n), 0);
  std::string why;
  EXPECT_TRUE(same_file_identity("/proc/self/exe", rec, &why)) << why;
}

TEST_F(FileIdentityTest, DifferentBuildIdDiffers) {
  ocr_file_record rec = capture("/proc/self/exe");
  ASSERT_GT(rec.build_id_len, 0u);
  rec.build_id[0] ^= 0xff;
  std::string why;
  EXPECT_FALSE(same_file_identity("/proc/self/exe", rec, &why));
  EXPECT_EQ(why.rfind("build-id ", 0), 0u) << why;
}

TEST_F(FileIdentityTest, BuildIdLostDiffers) {
  ocr_file_record rec = capture(path_);
  rec.flags |= OCR_FILE_ELF;
  rec.build_id_len = 4;
  std::string why;
  EXPECT_FALSE(same_file_identity(path_, rec, &why));
  EXPECT_EQ(why, "build-id 00000000 -> none");
}

}  // namespace
}  // namespace ocr
