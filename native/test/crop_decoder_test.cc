// C++ tests of the fused JPEG path's decoder (native/jpeg/crop_decoder.h) on JPEGs encoded here:
// a progressive JPEG read only up to the scans its scaled IDCTs need gives the same pixels as one
// read whole, and broken data (truncated, garbage, a cut scan) is a status with libjpeg's message,
// after which the decoder decodes the next image as usual.
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include <jpeglib.h>

#include "../jpeg/crop_decoder.h"
#include "check.h"

using namespace ringpipe;
using namespace ringpipe::jpeg;
using check::run;

namespace {

// A smooth image with texture, encoded by libjpeg: progressive (its standard scan script) or not.
std::vector<uint8_t> encode(int w, int h, bool progressive, bool subsample) {
  std::vector<uint8_t> px(size_t(w) * h * 3);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x)
      for (int c = 0; c < 3; ++c) px[(size_t(y) * w + x) * 3 + c] = uint8_t((x * (c + 1) / 5 + y * (3 - c) / 7 + ((x * 7 + y * 13) % 23)) & 255);
  jpeg_compress_struct cinfo;
  jpeg_error_mgr err;
  cinfo.err = jpeg_std_error(&err);
  jpeg_create_compress(&cinfo);
  unsigned char* out = nullptr;
  unsigned long size = 0;
  jpeg_mem_dest(&cinfo, &out, &size);
  cinfo.image_width = w;
  cinfo.image_height = h;
  cinfo.input_components = 3;
  cinfo.in_color_space = JCS_RGB;
  jpeg_set_defaults(&cinfo);
  jpeg_set_quality(&cinfo, 90, TRUE);
  const int hs = subsample ? 2 : 1;
  cinfo.comp_info[0].h_samp_factor = cinfo.comp_info[0].v_samp_factor = hs;
  if (progressive) jpeg_simple_progression(&cinfo);
  jpeg_start_compress(&cinfo, TRUE);
  while (cinfo.next_scanline < cinfo.image_height) {
    JSAMPROW row = px.data() + size_t(cinfo.next_scanline) * w * 3;
    jpeg_write_scanlines(&cinfo, &row, 1);
  }
  jpeg_finish_compress(&cinfo);
  std::vector<uint8_t> bytes(out, out + size);
  free(out);
  jpeg_destroy_compress(&cinfo);
  return bytes;
}

CropRequest request(const std::vector<uint8_t>& b, uint32_t l, uint32_t t, uint32_t w, uint32_t h, uint32_t ow, uint32_t oh) {
  CropRequest r;
  r.data = b.data();
  r.size = b.size();
  r.left = l, r.top = t, r.width = w, r.height = h, r.out_width = ow, r.out_height = oh;
  return r;
}

void test_progressive_partial_read() {
  CropDecoder d;
  for (bool subsample : {false, true}) {
    const auto jpg = encode(1600, 1200, true, subsample);
    struct Box { uint32_t l, t, w, h, ow, oh, denom; };
    const Box boxes[] = {{0, 0, 1600, 1200, 180, 140, 8}, {300, 200, 1200, 900, 120, 100, 8}, {101, 77, 900, 800, 200, 180, 4}, {5, 9, 640, 480, 300, 220, 2}, {333, 111, 500, 400, 400, 300, 1}};
    for (const Box& b : boxes) {
      CropRequest q = request(jpg, b.l, b.t, b.w, b.h, b.ow, b.oh);
      const CropResult part = d.decode(q);
      CHECK(part.status == Status::Ok, "%s", part.message.c_str());
      const std::vector<uint8_t> a(d.rgb(), d.rgb() + size_t(b.ow) * b.oh * 3);
      q.all_scans = true;
      const CropResult whole = d.decode(q);
      CHECK(whole.status == Status::Ok, "%s", whole.message.c_str());
      CHECK(part.progressive && part.scale_denom == b.denom, "denom %u, expected %u", part.scale_denom, b.denom);
      CHECK(std::memcmp(a.data(), d.rgb(), a.size()) == 0, "%s, box %ux%u at 1/%u: the partial read's pixels differ", subsample ? "4:2:0" : "4:4:4", b.w, b.h, b.denom);
      // At 1/8 the luma IDCT reads the DC only: the luma AC refinement scans are never read.
      if (b.denom == 8) CHECK(part.scans < whole.scans, "read %d of %d scans", part.scans, whole.scans);
      else CHECK(part.scans == whole.scans || subsample, "read %d of %d scans", part.scans, whole.scans);
    }
  }
}

void test_broken_data() {
  CropDecoder d;
  const auto good = encode(320, 240, false, true);
  const auto prog = encode(320, 240, true, true);
  const CropRequest ok = request(good, 0, 0, 320, 240, 64, 48);
  std::vector<uint8_t> truncated(good.begin(), good.begin() + good.size() / 2);
  std::vector<uint8_t> cut(good.begin(), good.begin() + good.size() * 3 / 5);
  cut.push_back(0xff), cut.push_back(0xd9);
  std::vector<uint8_t> garbage(3000);
  for (size_t i = 0; i < garbage.size(); ++i) garbage[i] = uint8_t(i * 7919 + 13);
  garbage[0] = 0xff, garbage[1] = 0xd8;
  std::vector<uint8_t> prog_truncated(prog.begin(), prog.begin() + prog.size() / 3);
  for (const auto* b : {&truncated, &cut, &garbage, &prog_truncated}) {
    const CropResult r = d.decode(request(*b, 0, 0, 320, 240, 64, 48));
    CHECK(r.status == Status::Corrupt && !r.message.empty(), "status %d", int(r.status));
    const CropResult again = d.decode(ok);
    CHECK(again.status == Status::Ok, "after an error: %s", again.message.c_str());
  }
  // sharp's failOn levels: 'none'/'error' ignore warnings (libjpeg fills in), 'truncated' fails
  // on a premature end of the data only, not on other corrupt data.
  for (const auto* b : {&cut, &truncated}) {
    CropRequest lenient = request(*b, 0, 0, 320, 240, 64, 48);
    lenient.fail_on = FailOn::Never;
    CHECK(d.decode(lenient).status == Status::Ok, "warnings ignored");
    lenient.fail_on = FailOn::Truncated;
    CHECK(d.decode(lenient).status == (b == &truncated ? Status::Corrupt : Status::Ok), "FailOn::Truncated, %s", b == &truncated ? "truncated" : "cut");
  }
  CHECK(d.decode(request(good, 300, 0, 64, 64, 8, 8)).status == Status::BadRequest, "a box outside the image");
}

}  // namespace

int main() {
  std::setvbuf(stdout, nullptr, _IONBF, 0);
  run("progressive: the scans the scaled IDCTs need give the pixels of a whole read", test_progressive_partial_read);
  run("broken data: a status and a message, and the decoder goes on", test_broken_data);
  return check::summary("crop decoder");
}
