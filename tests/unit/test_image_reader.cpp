// Tests of the image reader/validator: a valid synthetic image is accepted, and each
// validation rule refuses an image that breaks exactly that rule, with a message naming it.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <functional>

#include "crs/image_reader.h"
#include "crs/skip_reasons.h"
#include "image_builder.h"

namespace ocr {
namespace {

using test::ImageBuilder;
using test::ImageParts;
using test::RawRecord;

class ImageReaderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/ocr-image-reader-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    path_ = dir_ + "/1.crimg";
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // "" if accepted, else the reader's error.
  std::string check(const std::vector<uint8_t>& bytes, ReadOptions opt = {}) {
    test::write_file(path_, bytes);
    return check_file(opt);
  }
  std::string check_file(ReadOptions opt = {}) {
    Image img;
    std::string err;
    if (read_image(path_, opt, &img, &err)) return "";
    EXPECT_EQ(err.find('\n'), std::string::npos) << err;
    EXPECT_EQ(err.rfind(path_ + ": ", 0), 0u) << err;
    return err;
  }
  void expect_refused(const std::vector<uint8_t>& bytes, const std::string& what) {
    std::string err = check(bytes);
    EXPECT_NE(err, "") << "accepted, expected: " << what;
    EXPECT_NE(err.find(what), std::string::npos) << "got: " << err << "\nexpected: " << what;
  }
  void expect_refused(const ImageBuilder& b, const std::string& what) {
    expect_refused(b.build(), what);
  }
  void expect_refused(const ImageParts& p, const std::string& what) {
    expect_refused(test::assemble(p), what);
  }
  // Changes the header of an assembled image and re-hashes it, so only the change counts.
  static std::vector<uint8_t> patch_header(std::vector<uint8_t> bytes,
                                           const std::function<void(ocr_image_header*)>& f) {
    ocr_image_header h;
    memcpy(&h, bytes.data(), sizeof h);
    f(&h);
    test::set_header_hash(&h);
    memcpy(bytes.data(), &h, sizeof h);
    return bytes;
  }
  // Index of the i-th record of a type in parts.records.
  static size_t find_record(const ImageParts& p, uint32_t type, int nth = 0) {
    for (size_t i = 0; i < p.records.size(); i++)
      if (p.records[i].type == type && nth-- == 0) return i;
    ADD_FAILURE() << "no record of type " << type;
    return 0;
  }

  std::string dir_, path_;
};

TEST_F(ImageReaderTest, ValidImageAccepted) {
  ImageBuilder b;
  test::write_file(path_, b.build());
  Image img;
  std::string err;
  ASSERT_TRUE(read_image(path_, {}, &img, &err)) << err;
  EXPECT_EQ(img.path, path_);
  EXPECT_EQ(img.header.pid, 4242);
  EXPECT_EQ(img.cwd, "/home/user/work");
  EXPECT_EQ(img.exe, "/usr/bin/app");
  EXPECT_TRUE(img.have_sigactions);
  EXPECT_EQ(img.sigactions.act[SIGINT - 1].handler, 0x400123u);
  ASSERT_EQ(img.threads.size(), 1u);
  ASSERT_NE(img.main_thread(), nullptr);
  EXPECT_EQ(img.main_thread()->tid, 4242);
  ASSERT_EQ(img.files.size(), 2u);
  ASSERT_NE(img.find_file(1), nullptr);
  EXPECT_EQ(img.find_file(1)->path, "/usr/bin/app");
  EXPECT_EQ(img.find_file(1)->rec.build_id_len, 20u);
  EXPECT_EQ(img.find_file(99), nullptr);
  ASSERT_EQ(img.regions.size(), b.regions.size());
  for (size_t i = 1; i < img.regions.size(); i++)
    EXPECT_LE(img.regions[i - 1].rec.end, img.regions[i].rec.start);
  ASSERT_EQ(img.regions[2].runs.size(), 2u);
  EXPECT_EQ(img.regions[2].runs[1].addr, 0x1008000u);
  EXPECT_EQ(img.regions[2].runs[1].npages, 3u);
  ASSERT_EQ(img.fds.size(), 1u);
  EXPECT_EQ(img.fds[0].rec.fd, 3);
  EXPECT_EQ(img.fds[0].path, "/tmp/app-output.txt");
  EXPECT_EQ(img.header.data_size, 20u * 4096);
  EXPECT_GE(std::filesystem::file_size(path_), 64u * 1024);  // the flip test needs 64 KiB
}

TEST_F(ImageReaderTest, AcceptsZeroGapBeforeData) {
  ImageBuilder b;
  b.extra_data_gap = 2 * OCR_PAGE_SIZE;
  EXPECT_EQ(check(b.build()), "");
}

TEST_F(ImageReaderTest, AcceptsImageWithoutPageData) {
  ImageBuilder b;
  for (auto& r : b.regions) r.runs.clear();
  b.with_sigactions = false;
  b.fds.clear();
  EXPECT_EQ(check(b.build()), "");
}

// --- header ---

TEST_F(ImageReaderTest, BadMagic) {
  ImageBuilder b;
  b.header.magic[0] = 'X';
  expect_refused(b, "not an ompi-cr image (bad magic)");
}

TEST_F(ImageReaderTest, BadVersion) {
  ImageBuilder b;
  b.header.version = 2;
  expect_refused(b, "unsupported image format version 2");
}

TEST_F(ImageReaderTest, BadHeaderSize) {
  ImageBuilder b;
  b.header.header_size = 100;
  expect_refused(b, "bad header size 100");
}

TEST_F(ImageReaderTest, BadPageSize) {
  ImageBuilder b;
  b.header.page_size = 65536;
  expect_refused(b, "unsupported page size 65536");
}

TEST_F(ImageReaderTest, HeaderHashMismatch) {
  auto bytes = ImageBuilder().build();
  bytes[offsetof(ocr_image_header, seq)] ^= 1;
  expect_refused(bytes, "header checksum mismatch");
}

TEST_F(ImageReaderTest, HeaderPaddingMustBeZero) {
  auto bytes = ImageBuilder().build();
  bytes[OCR_HEADER_AREA - 1] = 1;
  expect_refused(bytes, "header padding is not zero at offset 4095");
}

TEST_F(ImageReaderTest, UnknownHeaderFlags) {
  ImageBuilder b;
  b.header.flags = 1ull << 40;
  expect_refused(b, "unknown header flags");
}

TEST_F(ImageReaderTest, BadThreadCount) {
  ImageBuilder b;
  b.auto_nthreads = false;
  b.header.nthreads = 0;
  expect_refused(b, "bad thread count 0");
  b.header.nthreads = OCR_MAX_THREADS + 1;
  expect_refused(b, "bad thread count 4097");
}

TEST_F(ImageReaderTest, ThreadCountMustMatchRecords) {
  ImageBuilder b;
  b.auto_nthreads = false;
  b.header.nthreads = 2;
  expect_refused(b, "header says 2 threads but the image has 1 thread records");
}

TEST_F(ImageReaderTest, IncrementalNeedsParent) {
  ImageBuilder b;
  b.header.flags = OCR_HDR_INCREMENTAL;
  expect_refused(b, "incremental image names no parent");
  strcpy(b.header.parent, "0.crimg");
  b.header.parent_hash = 42;
  b.header.chain_length = 2;
  EXPECT_EQ(check(b.build()), "");
  b.header.flags = 0;
  expect_refused(b, "full image names a parent");
}

TEST_F(ImageReaderTest, ParentNameMustBeTerminated) {
  ImageBuilder b;
  b.header.flags = OCR_HDR_INCREMENTAL;
  memset(b.header.parent, 'a', sizeof b.header.parent);
  expect_refused(b, "parent image name is not terminated");
}

TEST_F(ImageReaderTest, SavedBytesMustMatchData) {
  auto bytes = patch_header(ImageBuilder().build(), [](ocr_image_header* h) { h->saved_bytes++; });
  expect_refused(bytes, "saved_bytes");
}

TEST_F(ImageReaderTest, BadPid) {
  ImageBuilder b;
  b.header.pid = 0;
  expect_refused(b, "bad pid 0");
}

// --- section bounds ---

TEST_F(ImageReaderTest, RecordsInsideHeaderArea) {
  auto bytes =
      patch_header(ImageBuilder().build(), [](ocr_image_header* h) { h->records_offset = 2048; });
  expect_refused(bytes, "records section at offset 2048 overlaps the header area");
}

TEST_F(ImageReaderTest, RecordsBeyondFile) {
  auto bytes = ImageBuilder().build();
  const uint64_t size = bytes.size();
  bytes = patch_header(bytes, [&](ocr_image_header* h) { h->records_size = size; });
  expect_refused(bytes, "truncated: records end at " + std::to_string(4096 + size) +
                            " but file has " + std::to_string(size) + " bytes");
}

TEST_F(ImageReaderTest, RecordsSizeOverflow) {
  auto bytes = patch_header(ImageBuilder().build(),
                            [](ocr_image_header* h) { h->records_offset = UINT64_MAX - 10; });
  expect_refused(bytes, "records section");
}

TEST_F(ImageReaderTest, RecordsTooSmallOrTooLarge) {
  auto bytes = ImageBuilder().build();
  expect_refused(patch_header(bytes, [](ocr_image_header* h) { h->records_size = 10; }),
                 "records section too small");
  expect_refused(patch_header(bytes, [](ocr_image_header* h) { h->records_size = 1ull << 40; }),
                 "records section too large");
}

TEST_F(ImageReaderTest, DataOffsetNotAligned) {
  ImageParts p = ImageBuilder().parts();
  auto bytes = patch_header(test::assemble(p), [](ocr_image_header* h) { h->data_offset += 8; });
  expect_refused(bytes,
                 "page data offset " + std::to_string(p.data_offset + 8) + " is not page aligned");
}

TEST_F(ImageReaderTest, DataSizeNotPageMultiple) {
  auto bytes = patch_header(ImageBuilder().build(), [](ocr_image_header* h) {
    h->data_size -= 8;
    h->saved_bytes -= 8;
  });
  expect_refused(bytes, "is not a multiple of the page size");
}

TEST_F(ImageReaderTest, DataBeyondFile) {
  auto bytes = patch_header(ImageBuilder().build(), [](ocr_image_header* h) {
    h->data_size += 4096;
    h->saved_bytes += 4096;
  });
  expect_refused(bytes, "truncated: page data ends at");
}

TEST_F(ImageReaderTest, DataOverflow) {
  auto bytes = patch_header(ImageBuilder().build(),
                            [](ocr_image_header* h) { h->data_offset = UINT64_MAX & ~4095ull; });
  expect_refused(bytes, "page data section out of range");
}

TEST_F(ImageReaderTest, DataOverlapsRecords) {
  auto bytes =
      patch_header(ImageBuilder().build(), [](ocr_image_header* h) { h->data_offset = 4096; });
  expect_refused(bytes, "overlap");
}

TEST_F(ImageReaderTest, DataInHeaderArea) {
  auto bytes =
      patch_header(ImageBuilder().build(), [](ocr_image_header* h) { h->data_offset = 0; });
  expect_refused(bytes, "page data at offset 0 overlaps the header area");
}

TEST_F(ImageReaderTest, TrailingBytesRefused) {
  auto bytes = ImageBuilder().build();
  bytes.push_back(0);
  expect_refused(bytes, "1 unexpected bytes after the end of the image");
}

TEST_F(ImageReaderTest, NonZeroGapRefused) {
  ImageBuilder b;
  b.extra_data_gap = OCR_PAGE_SIZE;
  ImageParts p = b.parts();
  auto bytes = test::assemble(p);
  bytes[p.data_offset - 100] = 7;
  expect_refused(bytes, "non-zero byte at offset " + std::to_string(p.data_offset - 100));
}

TEST_F(ImageReaderTest, TruncatedAtSeveralLengths) {
  ImageParts p = ImageBuilder().parts();
  const auto full = test::assemble(p);
  const size_t records_end = OCR_HEADER_AREA + test::records_size_of(p.records);
  for (size_t len : {size_t{0}, size_t{1}, size_t{100}, size_t{4095}, size_t{4096}, size_t{4097},
                     records_end - 1, records_end, size_t(p.data_offset),
                     size_t(p.data_offset + 4096), full.size() - 4096, full.size() - 1}) {
    SCOPED_TRACE(len);
    std::vector<uint8_t> cut(full.begin(), full.begin() + len);
    std::string err = check(cut);
    EXPECT_NE(err.find("truncated: "), std::string::npos) << err;
  }
  EXPECT_NE(check({}).find("truncated: file has 0 bytes"), std::string::npos);
}

// --- records ---

TEST_F(ImageReaderTest, RecordsHashMismatch) {
  auto bytes = ImageBuilder().build();
  bytes[OCR_HEADER_AREA + 30] ^= 0x40;
  expect_refused(bytes, "records checksum mismatch");
}

TEST_F(ImageReaderTest, RecordPayloadHashMismatch) {
  ImageParts p = ImageBuilder().parts();
  RawRecord& r = p.records[find_record(p, OCR_REC_FD)];
  r.fix_hash = false;
  r.hash = 12345;
  expect_refused(p, "(FD): checksum mismatch");
}

TEST_F(ImageReaderTest, UnknownRecordType) {
  ImageParts p = ImageBuilder().parts();
  p.records.insert(p.records.begin() + 1, RawRecord{99, 1, {1, 2, 3}});
  expect_refused(p, "unknown record type 99");
}

TEST_F(ImageReaderTest, UnsupportedRecordVersion) {
  ImageParts p = ImageBuilder().parts();
  p.records[find_record(p, OCR_REC_THREAD)].version = 2;
  expect_refused(p, "(THREAD): unsupported record version 2");
}

TEST_F(ImageReaderTest, RecordOverrunsSection) {
  auto bytes = ImageBuilder().build();
  // First record's size field, made larger than the section; re-hash so only this counts.
  uint64_t huge = 1 << 20;
  memcpy(&bytes[OCR_HEADER_AREA + offsetof(ocr_record_header, size)], &huge, sizeof huge);
  ocr_image_header h;
  memcpy(&h, bytes.data(), sizeof h);
  bytes = patch_header(bytes, [&](ocr_image_header* hh) {
    hh->records_hash = XXH3_64bits(&bytes[OCR_HEADER_AREA], h.records_size);
  });
  expect_refused(bytes, "overruns the records section");
}

TEST_F(ImageReaderTest, MissingEnd) {
  ImageParts p = ImageBuilder().parts();
  p.records.pop_back();
  expect_refused(p, "no END record");
}

TEST_F(ImageReaderTest, RecordAfterEnd) {
  ImageParts p = ImageBuilder().parts();
  p.records.push_back(p.records[find_record(p, OCR_REC_FD)]);
  expect_refused(p, "follows the END record");
}

TEST_F(ImageReaderTest, EndWithPayload) {
  ImageParts p = ImageBuilder().parts();
  p.records.back().payload = {0};
  expect_refused(p, "END record at offset");
}

TEST_F(ImageReaderTest, MissingProcessRecord) {
  ImageParts p = ImageBuilder().parts();
  p.records.erase(p.records.begin() + find_record(p, OCR_REC_PROCESS));
  expect_refused(p, "no PROCESS record");
}

TEST_F(ImageReaderTest, TwoProcessRecords) {
  ImageParts p = ImageBuilder().parts();
  p.records.insert(p.records.begin(), p.records[find_record(p, OCR_REC_PROCESS)]);
  expect_refused(p, "more than one PROCESS record");
}

TEST_F(ImageReaderTest, TwoSigactionRecords) {
  ImageParts p = ImageBuilder().parts();
  p.records.insert(p.records.begin(), p.records[find_record(p, OCR_REC_SIGACTIONS)]);
  expect_refused(p, "more than one SIGACTIONS record");
}

TEST_F(ImageReaderTest, FixedSizeRecordsMustHaveTheirSize) {
  for (uint32_t type : {OCR_REC_SIGACTIONS, OCR_REC_THREAD, OCR_REC_REGION}) {
    SCOPED_TRACE(type);
    ImageParts p = ImageBuilder().parts();
    p.records[find_record(p, type)].payload.push_back(0);
    expect_refused(p, "expected");
  }
}

TEST_F(ImageReaderTest, ProcessStringLengths) {
  ImageParts p = ImageBuilder().parts();
  RawRecord& r = p.records[find_record(p, OCR_REC_PROCESS)];
  auto pr = test::record_as<ocr_process_record>(r);
  pr.cwd_len += 1;  // claims one byte more than the payload has
  test::record_set(&r, pr);
  expect_refused(p, "(struct + cwd + exe)");
  pr.cwd_len = OCR_MAX_PATH + 1;
  test::record_set(&r, pr);
  expect_refused(p, "bad path lengths");
}

TEST_F(ImageReaderTest, ProcessCwdWithNul) {
  ImageBuilder b;
  b.cwd = std::string("/home\0x", 7);
  expect_refused(b, "process cwd contains a NUL byte");
}

TEST_F(ImageReaderTest, ProcessRecordTooShort) {
  ImageParts p = ImageBuilder().parts();
  p.records[find_record(p, OCR_REC_PROCESS)].payload.resize(16);
  expect_refused(p, "(PROCESS): size 16, expected at least");
}

TEST_F(ImageReaderTest, BadTidOffset) {
  ImageBuilder b;
  b.process.tid_offset = 4096;
  expect_refused(b, "bad tid offset 4096");
}

TEST_F(ImageReaderTest, BadRseq) {
  ImageBuilder b;
  b.process.rseq_offset = 1 << 20;
  expect_refused(b, "bad rseq registration");
}

TEST_F(ImageReaderTest, BadAuxvSize) {
  ImageBuilder b;
  b.process.mm.auxv_size = sizeof b.process.mm.auxv + 8;
  expect_refused(b, "bad mm map auxv size");
}

TEST_F(ImageReaderTest, BadVdsoLocation) {
  ImageBuilder b;
  b.process.vdso_start = b.process.vdso_group_end;
  expect_refused(b, "bad vdso location");
}

TEST_F(ImageReaderTest, FileStringLengths) {
  ImageBuilder b;
  b.files[0].path = "";
  expect_refused(b, "file record 1: bad path length 0");
  b.files[0].path = std::string(OCR_MAX_PATH + 1, 'a');
  expect_refused(b, "bad path length 4097");
  b.files[0].path = std::string("/usr\0bin", 8);
  expect_refused(b, "path contains a NUL byte");
}

TEST_F(ImageReaderTest, FilePathLengthDisagreesWithRecord) {
  ImageParts p = ImageBuilder().parts();
  RawRecord& r = p.records[find_record(p, OCR_REC_FILE)];
  auto fr = test::record_as<ocr_file_record>(r);
  fr.path_len -= 1;
  test::record_set(&r, fr);
  expect_refused(p, "(struct + path)");
}

TEST_F(ImageReaderTest, FileBuildIdTooLong) {
  ImageBuilder b;
  b.files[0].rec.build_id_len = OCR_MAX_BUILD_ID + 1;
  expect_refused(b, "build-id length 65 exceeds 64");
}

TEST_F(ImageReaderTest, DuplicateFileId) {
  ImageBuilder b;
  b.files[1].rec.id = 1;
  expect_refused(b, "duplicate file record id 1");
}

TEST_F(ImageReaderTest, MissingMainThread) {
  ImageBuilder b;
  b.threads[0].flags = 0;
  expect_refused(b, "no main thread record");
}

TEST_F(ImageReaderTest, TwoMainThreads) {
  ImageBuilder b;
  b.threads.push_back(b.threads[0]);
  b.threads[1].tid = 4243;
  expect_refused(b, "2 thread records claim to be the main thread");
}

TEST_F(ImageReaderTest, SecondaryThreadAccepted) {
  ImageBuilder b;
  b.threads.push_back(b.threads[0]);
  b.threads[1].tid = 4243;
  b.threads[1].flags = OCR_THREAD_RUNTIME;
  EXPECT_EQ(check(b.build()), "");
}

TEST_F(ImageReaderTest, BadThreadFields) {
  ImageBuilder b;
  b.threads[0].tid = -1;
  expect_refused(b, "bad tid -1");
  b.threads[0].tid = 1;
  b.threads[0].flags |= 0x100;
  expect_refused(b, "unknown flags 0x101");
  b.threads[0].flags = OCR_THREAD_MAIN;
  b.threads[0].fs_base = 0x800000000000ull;
  expect_refused(b, "outside user space");
}

TEST_F(ImageReaderTest, FdRules) {
  ImageBuilder b;
  b.fds[0].rec.fd = -1;
  expect_refused(b, "negative fd -1");
  b.fds[0].rec.fd = 3;
  b.fds[0].rec.kind = 9;
  expect_refused(b, "fd 3: unknown kind 9");
  b.fds[0].rec.kind = OCR_FD_REGULAR;
  b.fds.push_back(b.fds[0]);
  expect_refused(b, "duplicate fd 3");
  b.fds.pop_back();
  b.fds[0].path = std::string(OCR_MAX_PATH + 1, 'x');
  expect_refused(b, "fd 3: bad path length");
}

TEST_F(ImageReaderTest, FdOffsetMinusOneMeansNone) {
  ImageBuilder b;
  b.fds[0].rec.kind = OCR_FD_CHARDEV;
  b.fds[0].rec.offset = -1;  // not seekable
  EXPECT_EQ(check(b.build()), "");
  b.fds[0].rec.offset = -2;
  expect_refused(b, "fd 3: negative offset -2");
}

// --- regions and runs ---

TEST_F(ImageReaderTest, OverlappingRegions) {
  ImageBuilder b;
  b.regions[1].rec.start = 0x400000;
  expect_refused(b, "region 0x400000-0x403000 overlaps or precedes the previous region");
}

TEST_F(ImageReaderTest, UnsortedRegions) {
  ImageBuilder b;
  std::swap(b.regions[2], b.regions[3]);
  expect_refused(b, "overlaps or precedes the previous region");
}

TEST_F(ImageReaderTest, RegionShape) {
  ImageBuilder b;
  b.regions[0].rec.end = 0x400800;
  expect_refused(b, "region 0x400000-0x400800 is not page aligned");
  b.regions[0].rec.end = 0x400000;
  expect_refused(b, "is empty or inverted");
}

TEST_F(ImageReaderTest, RegionAboveUserSpace) {
  ImageBuilder b;
  b.add_region(0x800000000000ull, 0x800000001000ull, PROT_READ, OCR_REGION_ANON_PRIVATE, 0, 0, 0);
  std::swap(b.regions[b.regions.size() - 1], b.regions[b.regions.size() - 2]);  // stay sorted
  expect_refused(b, "region 0x800000000000-0x800000001000 lies outside user space");
}

TEST_F(ImageReaderTest, SkippedNonKernelRegionAboveUserSpace) {
  ImageBuilder b;
  b.regions.back().rec.skip_reason = OCR_SKIP_DEVICE;  // [vsyscall] is only OK as kernel
  expect_refused(b, "lies outside user space");
}

TEST_F(ImageReaderTest, RegionFields) {
  ImageBuilder b;
  b.regions[2].rec.prot = 0x10;
  expect_refused(b, "bad protection 0x10");
  b.regions[2].rec.prot = PROT_READ;
  b.regions[2].rec.kind = 0;
  expect_refused(b, "unknown kind 0");
  b.regions[2].rec.kind = 6;
  expect_refused(b, "unknown kind 6");
  b.regions[2].rec.kind = OCR_REGION_ANON_PRIVATE;
  b.regions[2].rec.flags = 0x80;
  expect_refused(b, "unknown flags 0x80");
}

TEST_F(ImageReaderTest, RegionFileIdMustExist) {
  ImageBuilder b;
  b.regions[1].rec.file_id = 77;
  expect_refused(b, "region 0x401000-0x403000 refers to file id 77");
  ImageBuilder c;
  c.regions[4].rec.file_id = 0;  // shared file mapping
  expect_refused(c, "refers to file id 0");
}

TEST_F(ImageReaderTest, RegionFileOffsetAligned) {
  ImageBuilder b;
  b.regions[1].rec.file_offset = 12;
  expect_refused(b, "file offset 12 is not page aligned");
}

TEST_F(ImageReaderTest, SkippedAndSharedRegionsHaveNoRuns) {
  ImageBuilder b;
  b.regions[4].runs = {{0x7ff000100000, 1, 9}};
  expect_refused(b, "a file-shared region cannot have saved pages");
  ImageBuilder c;
  c.regions[5].runs = {{0x7ff100000000, 1, 9}};
  expect_refused(c, "a skipped region cannot have saved pages");
}

TEST_F(ImageReaderTest, BadSkipReason) {
  ImageBuilder b;
  b.regions[5].rec.skip_reason = OCR_SKIP_REASONS;
  expect_refused(b, "unknown skip reason 11");
}

TEST_F(ImageReaderTest, RegionWithoutRunsRecord) {
  ImageParts p = ImageBuilder().parts();
  p.records.erase(p.records.begin() + find_record(p, OCR_REC_RUNS, 0));
  expect_refused(p, "region 0x400000-0x401000 is not followed by its RUNS record");
}

TEST_F(ImageReaderTest, LastRegionWithoutRunsRecord) {
  ImageParts p = ImageBuilder().parts();
  const size_t last_runs = find_record(p, OCR_REC_RUNS, 6);
  p.records.erase(p.records.begin() + last_runs, p.records.end());
  expect_refused(p, "is not followed by its RUNS record");
}

TEST_F(ImageReaderTest, RunsWithoutRegion) {
  ImageParts p = ImageBuilder().parts();
  p.records.insert(p.records.begin(), RawRecord{OCR_REC_RUNS, 1, {}});
  expect_refused(p, "does not follow a REGION record");
}

TEST_F(ImageReaderTest, RunsRecordSizeMustMatchNruns) {
  ImageBuilder b;
  b.regions[2].keep_nruns = true;
  b.regions[2].rec.nruns = 3;
  expect_refused(b, "region 0x1000000-0x1010000: RUNS record of 64 bytes, expected 3 runs");
}

TEST_F(ImageReaderTest, MoreRunsThanPages) {
  ImageBuilder b;
  b.regions[0].keep_nruns = true;
  b.regions[0].rec.nruns = 2;
  expect_refused(b, "2 runs for 1 pages");
}

TEST_F(ImageReaderTest, RunOutsideRegion) {
  ImageBuilder b;
  b.regions[2].runs[1] = {0x100e000, 3, 3};  // last page would be 0x1010000
  expect_refused(b, "run at 0x100e000 (3 pages) lies outside its region");
  b.regions[2].runs[1] = {0x1010000, 1, 3};
  expect_refused(b, "run at 0x1010000 (1 pages) lies outside its region");
}

TEST_F(ImageReaderTest, RunBeforeRegion) {
  ImageBuilder b;
  b.regions[3].runs[0] = {0x7ff000000000 - 0x1000, 2, 4};
  expect_refused(b, "lies outside its region");
}

TEST_F(ImageReaderTest, RunShape) {
  ImageBuilder b;
  b.regions[2].runs[0] = {0x1000800, 1, 2};
  expect_refused(b, "run at 0x1000800 is not page aligned");
  b.regions[2].runs[0] = {0x1000000, 0, 2};
  expect_refused(b, "run at 0x1000000 has no pages");
}

TEST_F(ImageReaderTest, OverlappingRuns) {
  ImageBuilder b;
  b.regions[2].runs[1] = {0x1003000, 3, 3};
  expect_refused(b, "run at 0x1003000 overlaps or precedes the previous run");
  std::swap(b.regions[2].runs[0], b.regions[2].runs[1]);
  b.regions[2].runs[0] = {0x1008000, 1, 3};
  expect_refused(b, "overlaps or precedes the previous run");
}

// Rewrites run `i` of the RUNS record `nth` in raw parts.
static void patch_run(ImageParts* p, int nth, size_t i,
                      const std::function<void(ocr_run_record*)>& f) {
  size_t idx = 0;
  for (size_t k = 0; k < p->records.size(); k++)
    if (p->records[k].type == OCR_REC_RUNS && nth-- == 0) idx = k;
  ocr_run_record run;
  memcpy(&run, p->records[idx].payload.data() + i * sizeof run, sizeof run);
  f(&run);
  memcpy(p->records[idx].payload.data() + i * sizeof run, &run, sizeof run);
}

TEST_F(ImageReaderTest, RunDataOutsideSection) {
  ImageParts p = ImageBuilder().parts();
  const uint64_t end = p.data_offset + p.data.size();
  patch_run(&p, 2, 0, [&](ocr_run_record* r) { r->data_offset = end; });
  expect_refused(p, "region 0x1000000-0x1010000: run at 0x1000000: data [");
  expect_refused(p, "outside the page data section");
  ImageParts q = ImageBuilder().parts();
  patch_run(&q, 2, 1, [&](ocr_run_record* r) { r->data_offset = end - 2 * 4096; });  // 3 pages
  expect_refused(q, "run at 0x1008000: data [");
  ImageParts s = ImageBuilder().parts();
  patch_run(&s, 2, 1, [&](ocr_run_record* r) { r->data_offset = 4096; });  // before the data
  expect_refused(s, "outside the page data section");
}

TEST_F(ImageReaderTest, RunDataNotAligned) {
  ImageParts p = ImageBuilder().parts();
  patch_run(&p, 1, 0, [&](ocr_run_record* r) { r->data_offset += 16; });
  expect_refused(p, "is not page aligned");
}

TEST_F(ImageReaderTest, RunDataOverlap) {
  ImageParts p = ImageBuilder().parts();
  uint64_t first = 0;
  patch_run(&p, 2, 0, [&](ocr_run_record* r) { first = r->data_offset; });
  // Same pages for both heap runs: the sum still matches only if another run's data is
  // left uncovered, which the overlap rule catches.
  patch_run(&p, 2, 1, [&](ocr_run_record* r) { r->data_offset = first; });
  expect_refused(p, "page data of runs at");
}

TEST_F(ImageReaderTest, RunBytesMustEqualDataSize) {
  ImageParts p = ImageBuilder().parts();
  p.data.resize(p.data.size() + OCR_PAGE_SIZE, 0);
  p.header.saved_bytes = p.data.size();
  expect_refused(p, "page runs hold 81920 bytes but the page data section has 86016");
}

// --- page data ---

TEST_F(ImageReaderTest, FlippedPageDataByteNamesTheRun) {
  ImageParts p = ImageBuilder().parts();
  auto bytes = test::assemble(p);
  // Heap run 2 (0x1008000) starts after the 1-page and 4-page runs.
  bytes[p.data_offset + 5 * OCR_PAGE_SIZE + 1234] ^= 0x01;
  expect_refused(bytes, "page data of run at 0x1008000 corrupted (checksum mismatch)");
  ReadOptions no_verify;
  no_verify.verify_data = false;
  EXPECT_EQ(check(bytes, no_verify), "");
}

TEST_F(ImageReaderTest, LargeRunSpanningReadBuffers) {
  ImageBuilder b;
  // 3 MiB + 1 page: crosses the reader's 1 MiB buffers at unaligned run boundaries.
  b.add_region(0x7fe000000000, 0x7fe000400000, PROT_READ | PROT_WRITE, OCR_REGION_ANON_SHARED, 0, 0,
               0)
      .runs = {{0x7fe000000000, 769, 5}, {0x7fe000302000, 2, 6}};
  std::sort(b.regions.begin(), b.regions.end(),
            [](const auto& x, const auto& y) { return x.rec.start < y.rec.start; });
  ImageParts p = b.parts();
  auto bytes = test::assemble(p);
  EXPECT_EQ(check(bytes), "");
  // A byte in the middle and the very last byte of the big run.
  uint64_t big = 0;
  patch_run(&p, 3, 0, [&](ocr_run_record* r) { big = r->data_offset; });
  for (uint64_t at : {big + (1u << 20) + 5, big + uint64_t{769} * OCR_PAGE_SIZE - 1}) {
    auto broken = bytes;
    broken[at] ^= 0x80;
    expect_refused(broken, "page data of run at 0x7fe000000000 corrupted");
  }
}

TEST_F(ImageReaderTest, AnyFlippedByteInFirst64KiBRefused) {
  const auto bytes = ImageBuilder().build();
  ASSERT_GE(bytes.size(), 64u * 1024);
  test::write_file(path_, bytes);
  int fd = open(path_.c_str(), O_RDWR | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  size_t accepted = 0;
  for (size_t pos = 0; pos < 64 * 1024; pos++) {
    uint8_t b = bytes[pos] ^ 0x20;
    ASSERT_EQ(pwrite(fd, &b, 1, static_cast<off_t>(pos)), 1);
    Image img;
    std::string err;
    if (read_image(path_, {}, &img, &err)) {
      if (++accepted < 10) ADD_FAILURE() << "flipped byte at offset " << pos << " accepted";
    }
    ASSERT_EQ(pwrite(fd, &bytes[pos], 1, static_cast<off_t>(pos)), 1);
  }
  close(fd);
  EXPECT_EQ(accepted, 0u);
  EXPECT_EQ(check_file(), "");
}

// --- incremental images and chains ---

// An incremental image of the default model: the heap is tracked, its first run changed
// (saved here), its second run unchanged (inherited from the parent).
static ImageBuilder incremental_of(const std::vector<uint8_t>& parent, const std::string& name) {
  ImageBuilder b;
  b.make_incremental_of(parent, name);
  b.regions[2].rec.flags |= OCR_REGION_TRACKED;
  b.regions[2].runs[1].inherited = true;
  return b;
}

TEST_F(ImageReaderTest, IncrementalWithInheritedRunsAccepted) {
  ImageBuilder b = incremental_of(ImageBuilder().build(), "0.crimg");
  test::write_file(path_, b.build());
  Image img;
  std::string err;
  ASSERT_TRUE(read_image(path_, {}, &img, &err)) << err;
  ASSERT_EQ(img.regions[2].runs.size(), 2u);
  EXPECT_FALSE(run_inherited(img.regions[2].runs[0]));
  EXPECT_TRUE(run_inherited(img.regions[2].runs[1]));
  EXPECT_EQ(img.header.data_size, 17u * 4096);  // 20 pages minus the 3 inherited
  EXPECT_EQ(parent_image_path(img), dir_ + "/0.crimg");
}

TEST_F(ImageReaderTest, InheritedRunRules) {
  const auto parent = ImageBuilder().build();
  ImageBuilder full;
  full.regions[2].rec.flags |= OCR_REGION_TRACKED;
  full.regions[2].runs[1].inherited = true;
  expect_refused(full, "run at 0x1008000 is inherited from a parent, but this is a full image");
  ImageBuilder untracked = incremental_of(parent, "0.crimg");
  untracked.regions[2].rec.flags &= ~OCR_REGION_TRACKED;
  expect_refused(untracked,
                 "run at 0x1008000 is inherited from a parent, but its region is "
                 "not tracked");
  ImageParts p = incremental_of(parent, "0.crimg").parts();
  patch_run(&p, 2, 1, [](ocr_run_record* r) { r->hash = 1; });
  expect_refused(p, "is inherited from a parent but has a checksum");
}

TEST_F(ImageReaderTest, ChainLengthAndBackend) {
  const auto parent = ImageBuilder().build();
  ImageBuilder inc = incremental_of(parent, "0.crimg");
  inc.header.chain_length = 1;
  expect_refused(inc, "incremental image with chain length 1");
  ImageBuilder full;
  full.header.chain_length = 2;
  expect_refused(full, "full image with chain length 2");
  full.header.chain_length = 0;  // images written before the field existed
  EXPECT_EQ(check(full.build()), "");
  full.header.dirty_backend = 9;
  expect_refused(full, "unknown dirty tracking backend 9");
}

class ImageChainTest : public ImageReaderTest {
 protected:
  // Writes a full image 0.crimg, an incremental 1.crimg on it and 2.crimg on 1.
  void write_chain() {
    const auto b0 = ImageBuilder().build();
    test::write_file(dir_ + "/0.crimg", b0);
    const auto b1 = incremental_of(b0, "0.crimg").build();
    test::write_file(dir_ + "/1.crimg", b1);
    b2_ = incremental_of(b1, "1.crimg");
    test::write_file(dir_ + "/2.crimg", b2_.build());
  }
  std::string chain_error(const std::string& path) {
    std::vector<Image> chain;
    std::string err;
    EXPECT_FALSE(read_image_chain(path, {}, &chain, &err));
    EXPECT_EQ(err.find('\n'), std::string::npos);
    return err;
  }
  ImageBuilder b2_;
};

TEST_F(ImageChainTest, ReadsNewestFirst) {
  write_chain();
  std::vector<Image> chain;
  std::string err;
  ASSERT_TRUE(read_image_chain(dir_ + "/2.crimg", {}, &chain, &err)) << err;
  ASSERT_EQ(chain.size(), 3u);
  EXPECT_EQ(chain[0].path, dir_ + "/2.crimg");
  EXPECT_EQ(chain[1].path, dir_ + "/1.crimg");
  EXPECT_EQ(chain[2].path, dir_ + "/0.crimg");
  EXPECT_EQ(chain[0].header.chain_length, 3u);
  EXPECT_FALSE(chain[2].header.flags & OCR_HDR_INCREMENTAL);
  // A full image is a chain of one.
  ASSERT_TRUE(read_image_chain(dir_ + "/0.crimg", {}, &chain, &err)) << err;
  EXPECT_EQ(chain.size(), 1u);
}

TEST_F(ImageChainTest, AbsoluteParentPath) {
  const auto b0 = ImageBuilder().build();
  test::write_file(dir_ + "/base.crimg", b0);
  test::write_file(path_, incremental_of(b0, dir_ + "/base.crimg").build());
  std::vector<Image> chain;
  std::string err;
  ASSERT_TRUE(read_image_chain(path_, {}, &chain, &err)) << err;
  EXPECT_EQ(chain.size(), 2u);
}

TEST_F(ImageChainTest, MissingParent) {
  write_chain();
  std::filesystem::remove(dir_ + "/0.crimg");
  EXPECT_EQ(chain_error(dir_ + "/2.crimg"),
            dir_ + "/1.crimg: parent image " + dir_ + "/0.crimg: No such file or directory");
}

TEST_F(ImageChainTest, DamagedParent) {
  write_chain();
  auto bytes = ImageBuilder().build();
  bytes[bytes.size() - 1] ^= 1;
  test::write_file(dir_ + "/0.crimg", bytes);
  EXPECT_NE(chain_error(dir_ + "/2.crimg").find("0.crimg: page data of run at"), std::string::npos);
}

TEST_F(ImageChainTest, ReplacedParentRefused) {
  write_chain();
  ImageBuilder other;
  other.header.seq = 7;  // a different, valid full image under the parent's name
  test::write_file(dir_ + "/0.crimg", other.build());
  EXPECT_NE(chain_error(dir_ + "/2.crimg")
                .find("1.crimg: parent image " + dir_ +
                      "/0.crimg is not the image this one was taken on top of"),
            std::string::npos);
}

TEST_F(ImageChainTest, ChainLengthMustDropByOne) {
  write_chain();
  b2_.header.chain_length = 4;
  test::write_file(dir_ + "/2.crimg", b2_.build());
  EXPECT_NE(chain_error(dir_ + "/2.crimg").find("has chain length 2, expected 3"),
            std::string::npos);
}

TEST_F(ImageChainTest, UidMustMatch) {
  const auto b0 = ImageBuilder().build();
  test::write_file(dir_ + "/0.crimg", b0);
  ImageBuilder b1 = incremental_of(b0, "0.crimg");
  b1.header.uid += 1;
  test::write_file(path_, b1.build());
  EXPECT_NE(chain_error(path_).find("belongs to uid"), std::string::npos);
}

// --- the file itself ---

TEST_F(ImageReaderTest, MissingFile) {
  Image img;
  std::string err;
  EXPECT_FALSE(read_image(dir_ + "/nope.crimg", {}, &img, &err));
  EXPECT_EQ(err, dir_ + "/nope.crimg: No such file or directory");
}

TEST_F(ImageReaderTest, DirectoryRefused) {
  Image img;
  std::string err;
  EXPECT_FALSE(read_image(dir_, {}, &img, &err));
  EXPECT_EQ(err, dir_ + ": is a directory, not an image file");
}

TEST_F(ImageReaderTest, FifoRefusedWithoutBlocking) {
  ASSERT_EQ(mkfifo(path_.c_str(), 0600), 0);
  EXPECT_EQ(check_file(), path_ + ": not a regular file");
}

TEST_F(ImageReaderTest, OwnerCheck) {
  test::write_file(path_, ImageBuilder().build());
  if (geteuid() != 0) GTEST_SKIP() << "needs root to chown";
  ASSERT_EQ(chown(path_.c_str(), 65534, 65534), 0);
  ReadOptions opt;
  opt.invoker_uid = 1000;
  EXPECT_EQ(check_file(opt), path_ + ": owned by uid 65534, not by you (uid 1000)");
  opt.invoker_uid = 65534;
  EXPECT_EQ(check_file(opt), "");
  opt.invoker_uid = 0;  // root may restore anybody's image
  EXPECT_EQ(check_file(opt), "");
  opt.invoker_uid = 1000;
  opt.check_owner = false;
  EXPECT_EQ(check_file(opt), "");
  EXPECT_EQ(check_file({}), "");  // we are root
}

TEST(ImageOwner, Rule) {
  std::string why;
  EXPECT_TRUE(image_owner_allowed(1000, 1000, &why));
  EXPECT_TRUE(image_owner_allowed(1000, 0, &why));
  EXPECT_FALSE(image_owner_allowed(0, 1000, &why));
  EXPECT_EQ(why, "owned by uid 0, not by you (uid 1000)");
}

TEST(SkipReasons, Names) {
  EXPECT_EQ(describe_skip_reason(OCR_SKIP_UNTOUCHED), "untouched");
  EXPECT_EQ(describe_skip_reason(OCR_SKIP_CLEAN_FILE), "clean-file");
  EXPECT_EQ(describe_skip_reason(OCR_SKIP_SHARED_FILE), "shared-file");
  EXPECT_EQ(describe_skip_reason(OCR_SKIP_KERNEL), "kernel");
  EXPECT_EQ(describe_skip_reason(OCR_SKIP_RUNTIME), "runtime");
  EXPECT_EQ(describe_skip_reason(OCR_SKIP_ZERO), "zero");
  EXPECT_EQ(describe_skip_reason(OCR_SKIP_DEVICE), "device");
  EXPECT_EQ(describe_skip_reason(OCR_SKIP_MPI_RUNTIME), "mpi-runtime");
  EXPECT_EQ(describe_skip_reason(OCR_SKIP_HINTED), "hinted");
  EXPECT_EQ(describe_skip_reason(OCR_SKIP_RECV_BUFFER), "receive-buffer");
  EXPECT_EQ(describe_skip_reason(OCR_SKIP_UNCHANGED), "unchanged");
  EXPECT_STREQ(skip_reason_name(OCR_SKIP_REASONS), "unknown");
  static_assert(skip_reason_name(OCR_SKIP_ZERO)[0] == 'z');  // usable at compile time
}

TEST(RegionNames, Kinds) {
  EXPECT_STREQ(region_kind_name(OCR_REGION_FILE_PRIVATE), "file-private");
  EXPECT_STREQ(fd_kind_name(OCR_FD_DIRECTORY), "directory");
  EXPECT_EQ(prot_string(PROT_READ | PROT_EXEC), "r-x");
  EXPECT_EQ(prot_string(0), "---");
}

}  // namespace
}  // namespace ocr
