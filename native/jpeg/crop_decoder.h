// The fused JPEG path: read the header, decode only the iMCU rows and columns that cover a crop
// box, at the largest DCT downscale (1/2, 1/4, 1/8) that keeps at least the output size, and
// resample the decoded pixels to the output size with an antialiasing filter (resample.h).
//
// A progressive JPEG is decoded in libjpeg's buffered-image mode, and only up to the scan after
// which every coefficient the scaled IDCTs read is complete: at 1/8 that is the DC scans (of luma,
// in 4:2:0), often a small part of the file. The pixels are those of a full read.
//
// One decoder per thread at a time (see DecoderPool in binding.cc); its libjpeg object and its
// buffers live as long as it does, so a stream of images allocates nothing of ours once the
// buffers have grown to the largest crop (libjpeg's own per-image working memory aside).
//
// Errors never leave the process: libjpeg's error exit (which calls exit() by default) longjmps
// back here, and a warning (corrupt data, premature end of file) does too when the caller asks
// warnings to fail, as sharp's default failOn 'warning' does.
#pragma once

#include <csetjmp>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include <jpeglib.h>
#include <jerror.h>

#include "resample.h"

#if !defined(LIBJPEG_TURBO_VERSION_NUMBER) || LIBJPEG_TURBO_VERSION_NUMBER < 2000000
#error "ringpipe's fused JPEG path needs libjpeg-turbo 2.0 or newer (jpeg_crop_scanline, jpeg_skip_scanlines); Debian: apt-get install libjpeg62-turbo-dev"
#endif

namespace ringpipe::jpeg {

// Which libjpeg warnings fail the decode (sharp's failOn levels).
enum class FailOn : int { Never = 0, Truncated = 1, Warning = 2 };

struct CropRequest {
  const uint8_t* data = nullptr;
  size_t size = 0;
  // The crop box, in pixels of the stored image.
  uint32_t left = 0, top = 0, width = 0, height = 0;
  uint32_t out_width = 0, out_height = 0;
  Kernel kernel = Kernel::Linear;
  // false: keep a factor of 2 for the resampler (sharp's fastShrinkOnLoad: false).
  bool fast_shrink = true;
  FailOn fail_on = FailOn::Warning;
  uint64_t max_pixels = 0;  // 0: no limit
  // Read every scan of a progressive JPEG, as a plain decode does (tests compare the two).
  bool all_scans = false;
};

enum class Status : int {
  Ok = 0,
  Unsupported = 1,  // not a JPEG this path handles (colour space, precision, size): use sharp
  Corrupt = 2,      // libjpeg failed (or warned, under FailOn): `message` says why
  BadRequest = 3,   // the crop box or size does not fit the image
};

struct CropResult {
  Status status = Status::Ok;
  std::string message;
  // What was decoded: the DCT scale (1/denom) and the region of the scaled image.
  uint32_t scale_denom = 1;
  uint32_t x = 0, y = 0, width = 0, height = 0;
  uint32_t image_width = 0, image_height = 0;
  int components = 0;
  // Scans read, and whether the JPEG is progressive (several scans).
  int scans = 0;
  bool progressive = false;
};

class CropDecoder {
 public:
  CropDecoder();
  ~CropDecoder();
  CropDecoder(const CropDecoder&) = delete;
  CropDecoder& operator=(const CropDecoder&) = delete;

  // Decodes the request's crop into out_width x out_height interleaved RGB, returned by rgb()
  // (valid until the next call).
  CropResult decode(const CropRequest& req);
  const uint8_t* rgb() const { return image_.data(); }

  // The DCT scale denominator the decoder uses for a box of bw x bh to an output of ow x oh.
  static uint32_t choose_denom(uint32_t bw, uint32_t bh, uint32_t ow, uint32_t oh, bool fast_shrink);

 private:
  struct ErrorManager {
    jpeg_error_mgr pub;
    jmp_buf jump;
    FailOn fail_on;
    char message[JMSG_LENGTH_MAX];
  };
  static void on_error(j_common_ptr cinfo);
  static void on_message(j_common_ptr cinfo, int level);
  static void no_output(j_common_ptr) {}

  // The part that may longjmp: only trivially destructible locals.
  Status run(const CropRequest& req, CropResult& res);
  // Buffered-image mode: reads scans until the coefficients the IDCTs use are complete.
  void read_needed_scans();
  bool needed_coefficients_complete() const;
  void resample(const CropRequest& req, const CropResult& res, double bx0, double bx1, double by0, double by1);

  jpeg_decompress_struct cinfo_;
  ErrorManager err_;
  std::vector<uint8_t> rows_;      // the decoded region, row after row
  std::vector<JSAMPROW> row_ptrs_;
  std::vector<uint8_t> vrow_;      // one row after the vertical pass
  std::vector<uint8_t> image_;     // the output, RGB
  Axis h_, v_;
};

}  // namespace ringpipe::jpeg
