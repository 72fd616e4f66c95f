// ringpipe ring: memory layout and protocol, defined once.
//
// A ring lives at the start of a region (private mmap or POSIX shm). JavaScript drives the
// same protocol over a SharedArrayBuffer with Atomics (src/ring/): it takes the header offsets
// from the addon's `layout` export, and src/native.ts checks at load that the record header and
// alignment it hard-codes on the hot path (16 and 16) are this file's, so this file is the single
// definition of the layout.
//
// Memory orders: every atomic below names its order. Where it is seq_cst, the reason is the
// same each time: a side stores one word and then loads another (a writer publishes, then looks
// at readersWaiting; a parked reader counts itself in readersWaiting, then looks for records);
// only seq_cst on both sides guarantees one of them sees the other, so no wake-up is lost. JS
// Atomics are always seq_cst.
//
// Positions are byte counters modulo 2^32 (uint32). Capacity is a power of two <= 2^30, so
// `pos & (capacity - 1)` is the offset in the data area and `write - read` (mod 2^32) is the
// number of bytes in use. 32-bit counters keep every shared word reachable with Int32Array
// Atomics in JS (BigInt64 Atomics allocate on every load).
//
// Header (offsets in bytes; kLine = 128 because x86's adjacent-line prefetcher pulls cache
// lines in pairs, so 64-byte padding still lets two cores fight over one 128-byte pair):
//
//   line 0  config, written once:  magic, version, capacity, flags, readerSlots, dataOffset
//   line 1  control, rare writes:  state, writersOpen, abortCode, creatorPid
//   line 2  writePos               the writers' only hot word; SP publishes it in batches,
//                                  MP writers claim space with a CAS on it
//   line 3  dataSeq, readersWaiting, dataWant   futex word readers park on, how many do, and
//                                  the write position a parked reader of a single-reader ring waits for
//   line 4  spaceSeq, writersWaiting, spaceWant  futex word writers park on, how many do, and the
//                                  read position a parked single producer waits for
//           A waiter asks for a quarter of the ring: the other side's batched publishes wake it
//           only once past the position it asked for (waking per batch of 64 records costs the
//           busy side more than the records do). A side about to stop (park, close, await) wakes
//           it regardless, and a waiter's first sleep is short (ms), so nothing waits long on it.
//           The C++ ends below ignore the two words and always wake: correct, just less frugal.
//   line 5  writer pids (kMaxWriters u32), for liveness checks across processes
//   line 6+ one line per reader slot: readPos, active, pid, claim (the next record ordinal a group
//           of readers sharing the work takes, kept in the group's first slot: see src/runtime/input.ts),
//           seen (debug poisoning only: the end of the last record this reader let go of, stored
//           before its readPos moves past it, so the last reader of a broadcast record can tell it is)
//   data    at dataOffset (64-byte aligned), `capacity` bytes
//
// Record (16-byte aligned, so a wrap pad is always big enough for a header):
//
//   +0  u32 length     payload bytes
//   +4  u32 typeFlags  low 16 bits: type (0 = PAD, skipped by readers); high 16: flags
//   +8  u32 seq        sequence number, for ordering across replicas
//   +12 u32 stamp      the record's own position, stored last with release semantics:
//                      a reader accepts the record at `pos` only when stamp == pos. SP writers
//                      could do without it; MP writers claim (CAS) before they fill, so readers
//                      need it to tell a committed record from a claimed one or from stale bytes.
//   +16 payload        16-aligned; a claim may ask for 64-byte alignment (tensors), which the
//                      writer gets by putting a PAD record in front. Small records stay 16-aligned
//                      because padding every 64-byte record to 128 bytes halves throughput.
//
// A record larger than capacity/2 - 128 bytes could fail to fit even in an empty ring (it may have
// to wrap from the middle), so claims above that are rejected.
#pragma once

#include <atomic>
#include <cstdint>
#include <cstring>

namespace ringpipe {

constexpr uint32_t kMagic = 0x52504752;  // "RGPR"
constexpr uint32_t kVersion = 1;
constexpr uint32_t kLine = 128;
constexpr uint32_t kMaxWriters = 32;
constexpr uint32_t kMaxReaders = 64;
constexpr uint32_t kRecordHeader = 16;
constexpr uint32_t kRecordAlign = 16;
constexpr uint32_t kTypePad = 0;

// Flags (line 0).
constexpr uint32_t kFlagMultiProducer = 1;
constexpr uint32_t kFlagCrossProcess = 2;  // waits use futexes, not Atomics.wait
// The creating process watches every peer (ringpipe's supervisor): a waiter that finds a peer
// dead leaves the decision to it (fail the run, or drop a dead reader's cursor) while it lives.
constexpr uint32_t kFlagSupervised = 4;

// States (line 1).
constexpr uint32_t kStateOpen = 0;
constexpr uint32_t kStateClosed = 1;   // every writer closed: readers drain, then see the end
constexpr uint32_t kStateAborted = 2;  // a peer failed: everybody stops now

// Header offsets.
constexpr uint32_t kOffMagic = 0;
constexpr uint32_t kOffVersion = 4;
constexpr uint32_t kOffCapacity = 8;
constexpr uint32_t kOffFlags = 12;
constexpr uint32_t kOffReaderSlots = 16;
constexpr uint32_t kOffDataOffset = 20;
constexpr uint32_t kOffState = 1 * kLine;
constexpr uint32_t kOffWritersOpen = 1 * kLine + 4;
constexpr uint32_t kOffAbortCode = 1 * kLine + 8;
constexpr uint32_t kOffCreatorPid = 1 * kLine + 12;
constexpr uint32_t kOffWritePos = 2 * kLine;
constexpr uint32_t kOffDataSeq = 3 * kLine;
constexpr uint32_t kOffReadersWaiting = 3 * kLine + 4;
constexpr uint32_t kOffDataWant = 3 * kLine + 8;
constexpr uint32_t kOffSpaceSeq = 4 * kLine;
constexpr uint32_t kOffWritersWaiting = 4 * kLine + 4;
constexpr uint32_t kOffSpaceWant = 4 * kLine + 8;
constexpr uint32_t kOffWriterPids = 5 * kLine;
constexpr uint32_t kOffReaders = 6 * kLine;
// Within a reader slot.
constexpr uint32_t kReaderReadPos = 0;
constexpr uint32_t kReaderActive = 4;
constexpr uint32_t kReaderPid = 8;
constexpr uint32_t kReaderClaim = 12;
constexpr uint32_t kReaderSeen = 16;

// Within a record header.
constexpr uint32_t kRecLength = 0;
constexpr uint32_t kRecTypeFlags = 4;
constexpr uint32_t kRecSeq = 8;
constexpr uint32_t kRecStamp = 12;

static_assert(kMaxWriters * 4 <= kLine, "writer pid table fits one line");

constexpr uint32_t align_up(uint32_t v, uint32_t a) { return (v + a - 1) & ~(a - 1); }
constexpr uint32_t data_offset(uint32_t reader_slots) { return align_up(kOffReaders + reader_slots * kLine, 64); }
constexpr uint32_t region_size(uint32_t capacity, uint32_t reader_slots) { return data_offset(reader_slots) + capacity; }
constexpr uint32_t max_payload(uint32_t capacity) { return capacity / 2 - 128; }
constexpr uint32_t record_size(uint32_t length) { return align_up(kRecordHeader + length, kRecordAlign); }
constexpr bool is_power_of_two(uint32_t v) { return v && !(v & (v - 1)); }

// Atomic access to a uint32 inside the shared mapping.
inline std::atomic_ref<uint32_t> at(uint8_t* base, uint32_t off) {
  return std::atomic_ref<uint32_t>(*reinterpret_cast<uint32_t*>(base + off));
}

// Writes a fresh header. `base` is 64-byte aligned and region_size() bytes long. Nothing else
// reads the ring before magic is set, so every store but the last is relaxed.
inline void init_ring(uint8_t* base, uint32_t capacity, uint32_t reader_slots, uint32_t flags, uint32_t writers,
                      uint32_t creator_pid) {
  constexpr auto relaxed = std::memory_order_relaxed;
  std::memset(base, 0, data_offset(reader_slots));
  at(base, kOffCapacity).store(capacity, relaxed);
  at(base, kOffFlags).store(flags, relaxed);
  at(base, kOffReaderSlots).store(reader_slots, relaxed);
  at(base, kOffDataOffset).store(data_offset(reader_slots), relaxed);
  at(base, kOffWritersOpen).store(writers, relaxed);
  at(base, kOffCreatorPid).store(creator_pid, relaxed);
  for (uint32_t r = 0; r < reader_slots; ++r) at(base, kOffReaders + r * kLine + kReaderActive).store(1, relaxed);
  at(base, kOffVersion).store(kVersion, relaxed);
  at(base, kOffMagic).store(kMagic, std::memory_order_release);  // last: a mapped ring is valid once magic is set
}

// Config words of a ring whose magic was seen (written once, before magic's release store).
inline uint32_t config(uint8_t* base, uint32_t off) { return at(base, off).load(std::memory_order_relaxed); }

// ---------------------------------------------------------------------------------------------
// Protocol. The C++ side below is the reference the JS side (src/ring/) is tested against; the
// hot path in production is the JS one, since an N-API call costs more than a whole record.
// Waiting is left to the caller (futex.h): try_* calls never block.

// Smallest readPos over active readers; `fallback` when no reader is active (nobody to wait for).
inline uint32_t min_read_pos(uint8_t* base, uint32_t fallback) {
  const uint32_t slots = config(base, kOffReaderSlots);
  bool any = false;
  uint32_t best_used = 0, best = fallback;
  for (uint32_t r = 0; r < slots; ++r) {
    uint32_t slot = kOffReaders + r * kLine;
    // acquire: a reader deactivated (it died, or let go) stops counting once this is seen.
    if (!at(base, slot + kReaderActive).load(std::memory_order_acquire)) continue;
    // acquire: pairs with the reader's publish; its reads of the space are done before we reuse it.
    uint32_t rp = at(base, slot + kReaderReadPos).load(std::memory_order_acquire);
    uint32_t used = fallback - rp;  // mod 2^32: how far this reader trails the writer
    if (!any || used > best_used) { best_used = used; best = rp; any = true; }
  }
  return best;
}

// Bytes a claim of `length` needs at position `pos`: wrap pad + alignment pad + record.
struct Placement {
  uint32_t wrap_pad;   // bytes of PAD to the end of the data area (0 if none)
  uint32_t align_pad;  // bytes of PAD before the header so the payload is 64-aligned
  uint32_t total;      // everything, pads included
};
inline Placement place(uint32_t pos, uint32_t capacity, uint32_t length, uint32_t align) {
  const uint32_t rec = record_size(length);
  uint32_t off = pos & (capacity - 1);
  Placement p{0, 0, 0};
  auto pad_for = [&](uint32_t o) { return align == 64 ? ((64 - ((o + kRecordHeader) & 63)) & 63) : 0u; };
  p.align_pad = pad_for(off);
  if (off + p.align_pad + rec > capacity) {
    p.wrap_pad = capacity - off;
    p.align_pad = pad_for(0);
  }
  p.total = p.wrap_pad + p.align_pad + rec;
  return p;
}

inline void write_header(uint8_t* data, uint32_t mask, uint32_t pos, uint32_t length, uint32_t type_flags,
                         uint32_t seq) {
  uint8_t* h = data + (pos & mask);
  std::memcpy(h + kRecLength, &length, 4);
  std::memcpy(h + kRecTypeFlags, &type_flags, 4);
  std::memcpy(h + kRecSeq, &seq, 4);
}
// release: the header and payload written before it are visible to a reader that acquires it.
inline void stamp(uint8_t* data, uint32_t mask, uint32_t pos) {
  at(data, (pos & mask) + kRecStamp).store(pos, std::memory_order_release);
}

class Writer {
 public:
  explicit Writer(uint8_t* base)
      : base_(base),
        capacity_(config(base, kOffCapacity)),
        mask_(capacity_ - 1),
        data_(base + config(base, kOffDataOffset)),
        mp_(config(base, kOffFlags) & kFlagMultiProducer),
        pos_(at(base, kOffWritePos).load(std::memory_order_acquire)),
        cached_min_(min_read_pos(base, pos_)) {}

  // Claims room for `length` payload bytes; nullptr when the ring is full right now.
  uint8_t* try_claim(uint32_t length, uint32_t type, uint32_t seq, uint32_t align = 16) {
    for (;;) {
      // relaxed: MP claims are settled by the CAS below; an SP writer owns pos_.
      uint32_t pos = mp_ ? at(base_, kOffWritePos).load(std::memory_order_relaxed) : pos_;
      Placement p = place(pos, capacity_, length, align);
      if (pos + p.total - cached_min_ > capacity_) {
        cached_min_ = min_read_pos(base_, pos);
        if (pos + p.total - cached_min_ > capacity_) return nullptr;
      }
      if (mp_) {
        uint32_t expected = pos;
        // relaxed: the CAS only makes [pos, pos + total) this writer's; the stamp publishes the record.
        if (!at(base_, kOffWritePos).compare_exchange_weak(expected, pos + p.total, std::memory_order_relaxed)) continue;
      }
      uint32_t at_pos = pos;
      if (p.wrap_pad) { write_pad(at_pos, p.wrap_pad); at_pos += p.wrap_pad; }
      if (p.align_pad) { write_pad(at_pos, p.align_pad); at_pos += p.align_pad; }
      write_header(data_, mask_, at_pos, length, type, seq);
      claim_pos_ = at_pos;
      next_pos_ = pos + p.total;
      return data_ + (at_pos & mask_) + kRecordHeader;
    }
  }

  void commit() {
    stamp(data_, mask_, claim_pos_);
    if (!mp_) pos_ = next_pos_;
  }

  // SP: make committed records visible. MP: stamps already did. Then wake parked readers.
  void publish() {
    // seq_cst (see the top): this store, then the load of readersWaiting, against a parked
    // reader's increment of readersWaiting, then its look at writePos. Also a release: records
    // below pos_ are complete for a reader that sees it.
    if (!mp_) at(base_, kOffWritePos).store(pos_, std::memory_order_seq_cst);
    if (at(base_, kOffReadersWaiting).load(std::memory_order_seq_cst)) {
      // seq_cst: the futex word moves before the wake a parked reader compares it against.
      at(base_, kOffDataSeq).fetch_add(1, std::memory_order_seq_cst);
      wake_ = true;
    }
  }
  bool take_wake() { bool w = wake_; wake_ = false; return w; }

  uint32_t capacity() const { return capacity_; }

 private:
  void write_pad(uint32_t pos, uint32_t bytes) {
    write_header(data_, mask_, pos, bytes - kRecordHeader, kTypePad, 0);
    stamp(data_, mask_, pos);
  }
  uint8_t* base_;
  uint32_t capacity_, mask_;
  uint8_t* data_;
  bool mp_;
  uint32_t pos_, cached_min_;
  uint32_t claim_pos_ = 0, next_pos_ = 0;
  bool wake_ = false;
};

struct RecordView {
  const uint8_t* payload;
  uint32_t length, type_flags, seq;
};

// What Reader::try_next found.
enum class Next { kRecord, kEmpty, kClosed, kAborted };

class Reader {
 public:
  Reader(uint8_t* base, uint32_t slot)
      : base_(base),
        slot_(kOffReaders + slot * kLine),
        mask_(config(base, kOffCapacity) - 1),
        data_(base + config(base, kOffDataOffset)),
        pos_(at(base, slot_ + kReaderReadPos).load(std::memory_order_relaxed)),  // this reader's own word
        cached_write_(pos_) {}

  // kRecord (in *out), kEmpty (nothing yet), kClosed (closed and drained) or kAborted.
  Next try_next(RecordView* out) {
    for (;;) {
      if (pos_ == cached_write_) {
        // State before writePos, both acquire: a reader that sees the ring closed then sees the
        // write position of every record published before the close.
        uint32_t state = at(base_, kOffState).load(std::memory_order_acquire);
        // seq_cst (see the top): the look for records after a parked reader counted itself waiting.
        cached_write_ = at(base_, kOffWritePos).load(std::memory_order_seq_cst);
        if (state == kStateAborted) return Next::kAborted;
        if (pos_ == cached_write_) return state == kStateClosed ? Next::kClosed : Next::kEmpty;
      }
      const uint8_t* h = data_ + (pos_ & mask_);
      // acquire: pairs with the writer's stamp; the header and payload are complete once it matches.
      if (at(const_cast<uint8_t*>(h), kRecStamp).load(std::memory_order_acquire) != pos_) return Next::kEmpty;  // claimed, not committed
      std::memcpy(&out->length, h + kRecLength, 4);
      std::memcpy(&out->type_flags, h + kRecTypeFlags, 4);
      std::memcpy(&out->seq, h + kRecSeq, 4);
      if ((out->type_flags & 0xffff) == kTypePad) { pos_ += record_size(out->length); continue; }
      out->payload = h + kRecordHeader;
      current_size_ = record_size(out->length);
      return Next::kRecord;
    }
  }

  void release() { pos_ += current_size_; current_size_ = 0; }

  // Makes released space available to writers; true when a parked writer should be woken.
  bool publish() {
    // seq_cst (see the top), against a parked writer's increment of writersWaiting; also a
    // release: this reader's reads of the space are done before a writer reuses it.
    at(base_, slot_ + kReaderReadPos).store(pos_, std::memory_order_seq_cst);
    if (at(base_, kOffWritersWaiting).load(std::memory_order_seq_cst)) {
      at(base_, kOffSpaceSeq).fetch_add(1, std::memory_order_seq_cst);  // the futex word, before the wake
      return true;
    }
    return false;
  }

 private:
  uint8_t* base_;
  uint32_t slot_, mask_;
  uint8_t* data_;
  uint32_t pos_, cached_write_, current_size_ = 0;
};

// Ends the stream for one writer; the last one to close moves the ring to kStateClosed.
// Returns true when readers must be woken.
inline bool close_writer(uint8_t* base) {
  // acq_rel: the last writer to close sees every other writer's records before it closes.
  if (at(base, kOffWritersOpen).fetch_sub(1, std::memory_order_acq_rel) == 1) {
    uint32_t open = kStateOpen;
    // release: a reader that acquires kStateClosed sees every record published before (try_next).
    at(base, kOffState).compare_exchange_strong(open, kStateClosed, std::memory_order_release, std::memory_order_relaxed);
  }
  at(base, kOffDataSeq).fetch_add(1, std::memory_order_seq_cst);  // the futex word, before the wake
  return true;
}

// Records a writer's pid in the first free slot of line 5, so readers in other processes can tell
// a dead writer from a slow one. Returns the slot, or -1 when the table is full.
inline int register_writer_pid(uint8_t* base, uint32_t pid) {
  for (uint32_t i = 0; i < kMaxWriters; ++i) {
    uint32_t zero = 0;
    // relaxed: pids are for liveness checks only; nothing is published through them.
    if (at(base, kOffWriterPids + 4 * i).compare_exchange_strong(zero, pid, std::memory_order_relaxed)) return static_cast<int>(i);
  }
  return -1;
}

inline void abort_ring(uint8_t* base, uint32_t code) {
  at(base, kOffAbortCode).store(code, std::memory_order_relaxed);
  // release: whoever sees kStateAborted sees the abort code with it.
  at(base, kOffState).store(kStateAborted, std::memory_order_release);
  // seq_cst: the futex words move before the wakes parked sides compare them against.
  at(base, kOffDataSeq).fetch_add(1, std::memory_order_seq_cst);
  at(base, kOffSpaceSeq).fetch_add(1, std::memory_order_seq_cst);
}

}  // namespace ringpipe
