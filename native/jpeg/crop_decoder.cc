#include "crop_decoder.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <new>

namespace ringpipe::jpeg {

namespace {

// Natural (row-major) position of each zigzag index: coef_bits is kept in zigzag order.
constexpr int kZigzag[64] = {0,  1,  8,  16, 9,  2,  3,  10, 17, 24, 32, 25, 18, 11, 4,  5,  12, 19, 26, 33, 40, 48,
                             41, 34, 27, 20, 13, 6,  7,  14, 21, 28, 35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23,
                             30, 37, 44, 51, 58, 59, 52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63};

// Whether libjpeg's IDCT of `size` x `size` output reads coefficient row (or column) `i`: the
// reduced IDCTs (jidctred.c and their SIMD versions) read rows 0,1,3,5,7 (2x2), 0-3,5-7 (4x4).
bool idct_reads(int size, int i) {
  switch (size) {
    case 1: return i == 0;
    case 2: return i == 0 || (i & 1);
    case 4: return i != 4;
    default: return true;
  }
}

#if JPEG_LIB_VERSION >= 70
int scaled_size(const jpeg_component_info& c, bool vertical) { return vertical ? c.DCT_v_scaled_size : c.DCT_h_scaled_size; }
#else
int scaled_size(const jpeg_component_info& c, bool) { return c.DCT_scaled_size; }
#endif

}  // namespace

void CropDecoder::on_error(j_common_ptr cinfo) {
  auto* e = reinterpret_cast<ErrorManager*>(cinfo->err);
  (*cinfo->err->format_message)(cinfo, e->message);
  std::longjmp(e->jump, 1);
}

// level -1: a warning (corrupt data, premature end); 0 and up: trace messages, ignored.
void CropDecoder::on_message(j_common_ptr cinfo, int level) {
  if (level >= 0) return;
  auto* e = reinterpret_cast<ErrorManager*>(cinfo->err);
  cinfo->err->num_warnings++;
  const bool fail = e->fail_on == FailOn::Warning || (e->fail_on == FailOn::Truncated && cinfo->err->msg_code == JWRN_JPEG_EOF);
  if (!fail) return;
  (*cinfo->err->format_message)(cinfo, e->message);
  std::longjmp(e->jump, 2);
}

CropDecoder::CropDecoder() {
  std::memset(&cinfo_, 0, sizeof cinfo_);
  cinfo_.err = jpeg_std_error(&err_.pub);
  err_.pub.error_exit = on_error;
  err_.pub.emit_message = on_message;
  err_.pub.output_message = no_output;
  err_.fail_on = FailOn::Warning;
  err_.message[0] = '\0';
  if (setjmp(err_.jump)) throw std::bad_alloc();  // the only error jpeg_create_decompress raises
  jpeg_create_decompress(&cinfo_);
}

CropDecoder::~CropDecoder() { jpeg_destroy_decompress(&cinfo_); }

uint32_t CropDecoder::choose_denom(uint32_t bw, uint32_t bh, uint32_t ow, uint32_t oh, bool fast_shrink) {
  const double shrink = std::min(double(bw) / ow, double(bh) / oh);
  const double factor = fast_shrink ? 1.0 : 2.0;
  for (uint32_t d : {8u, 4u, 2u}) {
    if (shrink >= d * factor) return d;
  }
  return 1;
}

CropResult CropDecoder::decode(const CropRequest& req) {
  CropResult res;
  if (!req.out_width || !req.out_height) {
    res.status = Status::BadRequest;
    res.message = "the output size must be at least 1 x 1";
    return res;
  }
  try {
    res.status = run(req, res);
  } catch (...) {
    jpeg_abort_decompress(&cinfo_);  // leave the object ready for the next image
    throw;
  }
  return res;
}

Status CropDecoder::run(const CropRequest& req, CropResult& res) {
  if (setjmp(err_.jump)) {
    jpeg_abort_decompress(&cinfo_);
    res.message = err_.message;
    return Status::Corrupt;
  }
  err_.fail_on = req.fail_on;
  err_.pub.num_warnings = 0;
  jpeg_mem_src(&cinfo_, req.data, static_cast<unsigned long>(req.size));
  if (jpeg_read_header(&cinfo_, TRUE) != JPEG_HEADER_OK) {
    jpeg_abort_decompress(&cinfo_);
    res.message = "no image in the JPEG data";
    return Status::Corrupt;
  }
  res.image_width = cinfo_.image_width;
  res.image_height = cinfo_.image_height;
  auto unsupported = [&](const char* why) {
    jpeg_abort_decompress(&cinfo_);
    res.message = why;
    return Status::Unsupported;
  };
  if (cinfo_.data_precision != 8) return unsupported("not 8-bit");
  if (cinfo_.jpeg_color_space == JCS_YCbCr && cinfo_.num_components == 3) {
    cinfo_.out_color_space = JCS_RGB;
  } else if (cinfo_.jpeg_color_space == JCS_GRAYSCALE && cinfo_.num_components == 1) {
    cinfo_.out_color_space = JCS_GRAYSCALE;
  } else {
    return unsupported("not YCbCr or greyscale");
  }
  if (req.max_pixels && uint64_t(cinfo_.image_width) * cinfo_.image_height > req.max_pixels) return unsupported("image exceeds the pixel limit");
  if (!req.width || !req.height || uint64_t(req.left) + req.width > cinfo_.image_width || uint64_t(req.top) + req.height > cinfo_.image_height) {
    jpeg_abort_decompress(&cinfo_);
    res.message = "the crop box is not inside the " + std::to_string(cinfo_.image_width) + "x" + std::to_string(cinfo_.image_height) + " image";
    return Status::BadRequest;
  }
  const uint32_t denom = choose_denom(req.width, req.height, req.out_width, req.out_height, req.fast_shrink);
  cinfo_.scale_num = 1;
  cinfo_.scale_denom = denom;
  cinfo_.dct_method = JDCT_ISLOW;
  cinfo_.do_fancy_upsampling = TRUE;  // libjpeg's defaults, as libvips decodes
  res.progressive = jpeg_has_multiple_scans(&cinfo_);
  if (res.progressive && !req.all_scans) {
    cinfo_.buffered_image = TRUE;
    cinfo_.do_block_smoothing = FALSE;  // it only guesses coefficients of scans not read yet
  }
  jpeg_start_decompress(&cinfo_);
  if (cinfo_.buffered_image) {
    read_needed_scans();
    jpeg_start_output(&cinfo_, cinfo_.input_scan_number);
  }
  res.scans = cinfo_.input_scan_number;

  // The box in pixels of the scaled image, and the whole pixels it touches.
  const double inv = 1.0 / denom;
  const double bx0 = req.left * inv, bx1 = std::min<double>((double(req.left) + req.width) * inv, cinfo_.output_width);
  const double by0 = req.top * inv, by1 = std::min<double>((double(req.top) + req.height) * inv, cinfo_.output_height);
  const uint32_t px0 = static_cast<uint32_t>(std::floor(bx0));
  const uint32_t px1 = std::min<uint32_t>(cinfo_.output_width, static_cast<uint32_t>(std::ceil(bx1)));
  const uint32_t py0 = static_cast<uint32_t>(std::floor(by0));
  const uint32_t py1 = std::min<uint32_t>(cinfo_.output_height, static_cast<uint32_t>(std::ceil(by1)));

  // Columns: whole iMCU columns around the box (libjpeg aligns xoff down and widens cw).
  JDIMENSION xoff = px0, cw = px1 - px0;
  if (cw < cinfo_.output_width) jpeg_crop_scanline(&cinfo_, &xoff, &cw);
  else xoff = 0, cw = cinfo_.output_width;
  // Rows: the iMCU rows above are entropy-decoded only (skipped), those below never read.
  if (py0 > 0) jpeg_skip_scanlines(&cinfo_, py0);
  const int comps = cinfo_.output_components;
  const size_t stride = size_t(cw) * comps;
  const uint32_t nrows = py1 - py0;
  rows_.resize(stride * nrows);
  row_ptrs_.resize(nrows);
  for (uint32_t r = 0; r < nrows; ++r) row_ptrs_[r] = rows_.data() + r * stride;
  while (cinfo_.output_scanline < py1) {
    const uint32_t at = cinfo_.output_scanline - py0;
    if (jpeg_read_scanlines(&cinfo_, &row_ptrs_[at], nrows - at) == 0) break;  // cannot happen with a memory source
  }
  const uint32_t got = cinfo_.output_scanline - py0;
  jpeg_abort_decompress(&cinfo_);  // the rows below the box are never decoded
  if (got < nrows) {
    res.message = "the decoder stopped early";
    return Status::Corrupt;
  }
  res.scale_denom = denom;
  res.x = xoff;
  res.width = cw;
  res.y = py0;
  res.height = nrows;
  res.components = comps;
  resample(req, res, bx0 - xoff, bx1 - xoff, by0 - py0, by1 - py0);
  return Status::Ok;
}

void CropDecoder::read_needed_scans() {
  for (;;) {
    const int r = jpeg_consume_input(&cinfo_);
    if (r == JPEG_REACHED_EOI || r == JPEG_SUSPENDED) return;  // a memory source never suspends
    if (r == JPEG_SCAN_COMPLETED && needed_coefficients_complete()) return;
  }
}

bool CropDecoder::needed_coefficients_complete() const {
  for (int c = 0; c < cinfo_.num_components; ++c) {
    const jpeg_component_info& comp = cinfo_.comp_info[c];
    const int h = scaled_size(comp, false), v = scaled_size(comp, true);
    for (int k = 0; k < 64; ++k) {
      const int at = kZigzag[k];
      if (idct_reads(v, at / 8) && idct_reads(h, at % 8) && cinfo_.coef_bits[c][k] != 0) return false;
    }
  }
  return true;
}

// bx*/by*: the box relative to the decoded region's first column and row.
void CropDecoder::resample(const CropRequest& req, const CropResult& res, double bx0, double bx1, double by0, double by1) {
  const int ow = int(req.out_width), oh = int(req.out_height), comps = res.components;
  const int lo_x = int(std::floor(bx0)), hi_x = std::min<int>(int(res.width), int(std::ceil(bx1)));
  const int lo_y = int(std::floor(by0)), hi_y = std::min<int>(int(res.height), int(std::ceil(by1)));
  h_.plan(bx0, bx1, lo_x, hi_x, ow, req.kernel);
  v_.plan(by0, by1, lo_y, hi_y, oh, req.kernel);
  // The vertical pass computes only the columns the horizontal taps read.
  const int c0 = h_.first[0], c1 = h_.first[ow - 1] + h_.count[ow - 1];
  const int len = (c1 - c0) * comps;
  const size_t stride = size_t(res.width) * comps;
  vrow_.resize(size_t(len) + 64);  // the horizontal pass reads past the last tap (zero weights)
  image_.resize(size_t(ow) * oh * 3);
  for (int y = 0; y < oh; ++y) {
    vertical_row(rows_.data() + size_t(c0) * comps, stride, v_, y, len, vrow_.data());
    horizontal_row(vrow_.data(), comps, c0, h_, ow, image_.data() + size_t(y) * ow * 3);
  }
}

}  // namespace ringpipe::jpeg
