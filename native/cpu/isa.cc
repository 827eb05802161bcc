#include "cpu/isa.h"

#include <cpuid.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <stdexcept>

namespace labor::cpu {
namespace {

// Linux arch_prctl request for AMX tile data (Documentation/arch/x86/xstate.rst).
constexpr int kArchReqXcompPerm = 0x1023;
constexpr int kXfeatureXtiledata = 18;

struct CpuidRegisters {
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
};

CpuidRegisters Cpuid(unsigned leaf, unsigned subleaf) {
  CpuidRegisters r;
  if (!__get_cpuid_count(leaf, subleaf, &r.eax, &r.ebx, &r.ecx, &r.edx)) return CpuidRegisters{};
  return r;
}

bool Bit(unsigned value, int bit) { return ((value >> bit) & 1u) != 0; }

// XCR0: which register states the OS saves on context switch (only readable when OSXSAVE is set).
uint64_t ReadXcr0() {
  unsigned eax, edx;
  __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
  return (static_cast<uint64_t>(edx) << 32) | eax;
}

IsaInfo Detect() {
  IsaInfo info;
  const unsigned max_leaf = __get_cpuid_max(0, nullptr);
  const CpuidRegisters leaf1 = Cpuid(1, 0);
  const CpuidRegisters leaf7 = max_leaf >= 7 ? Cpuid(7, 0) : CpuidRegisters{};
  const CpuidRegisters leaf7_1 = max_leaf >= 7 ? Cpuid(7, 1) : CpuidRegisters{};
  const bool osxsave = Bit(leaf1.ecx, 27);
  const uint64_t xcr0 = osxsave ? ReadXcr0() : 0;

  const bool os_avx = (xcr0 & 0x6) == 0x6;           // XMM and YMM state
  const bool os_avx512 = os_avx && (xcr0 & 0xe0) == 0xe0;  // opmask, ZMM_Hi256, Hi16_ZMM
  const bool os_amx = (xcr0 & 0x60000) == 0x60000;   // XTILECFG and XTILEDATA
  const bool fma = Bit(leaf1.ecx, 12), f16c = Bit(leaf1.ecx, 29), avx = Bit(leaf1.ecx, 28);
  const bool avx2 = Bit(leaf7.ebx, 5);
  const bool avx512f = Bit(leaf7.ebx, 16), avx512dq = Bit(leaf7.ebx, 17);
  const bool avx512bw = Bit(leaf7.ebx, 30), avx512vl = Bit(leaf7.ebx, 31);
  const bool avx512_bf16 = Bit(leaf7_1.eax, 5);
  const bool amx_bf16 = Bit(leaf7.edx, 22), amx_tile = Bit(leaf7.edx, 24);

  info.features = {{"avx", avx},           {"fma", fma},           {"f16c", f16c},
                   {"avx2", avx2},         {"avx512f", avx512f},   {"avx512dq", avx512dq},
                   {"avx512bw", avx512bw}, {"avx512vl", avx512vl}, {"avx512_bf16", avx512_bf16},
                   {"amx_tile", amx_tile}, {"amx_bf16", amx_bf16}, {"os_avx", os_avx},
                   {"os_avx512", os_avx512}, {"os_amx", os_amx}};

  // Each path needs exactly what its translation unit was compiled for (see CMakeLists.txt).
  const bool can_avx2 = os_avx && avx && avx2 && fma && f16c;
  const bool can_avx512 = can_avx2 && os_avx512 && avx512f && avx512dq && avx512bw && avx512vl;
  bool can_amx = false;
  if (!amx_tile || !amx_bf16) {
    info.amx_unavailable_reason = "CPU lacks AMX-TILE/AMX-BF16";
  } else if (!os_amx) {
    info.amx_unavailable_reason = "OS has not enabled AMX tile state (XCR0 bits 17, 18)";
  } else if (!can_avx512) {
    info.amx_unavailable_reason = "AMX kernels also need AVX-512F/BW/VL/DQ";
  } else if (syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtiledata) != 0) {
    info.amx_unavailable_reason =
        std::string("arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) failed: ") + std::strerror(errno);
  } else {
    can_amx = true;
  }
  if (can_amx) info.available.push_back(Isa::kAmx);
  if (can_avx512) info.available.push_back(Isa::kAvx512);
  if (can_avx2) info.available.push_back(Isa::kAvx2);
  info.available.push_back(Isa::kScalar);
  return info;
}

std::atomic<int> selected{-1};  // -1: not chosen yet → best available

}  // namespace

const IsaInfo& DetectIsa() {
  static const IsaInfo info = Detect();
  return info;
}

Isa SelectedIsa() {
  const int value = selected.load(std::memory_order_relaxed);
  return value < 0 ? DetectIsa().available.front() : static_cast<Isa>(value);
}

std::string UnavailableReason(Isa isa) {
  for (Isa available : DetectIsa().available) {
    if (available == isa) return "";
  }
  std::string message = std::string("ISA ") + IsaName(isa) + " is not available on this CPU";
  if (isa == Isa::kAmx) message += " (" + DetectIsa().amx_unavailable_reason + ")";
  return message;
}

void SelectIsa(Isa isa) {
  const std::string reason = UnavailableReason(isa);
  if (!reason.empty()) throw std::invalid_argument(reason);
  selected.store(static_cast<int>(isa), std::memory_order_relaxed);
}

const char* IsaName(Isa isa) {
  switch (isa) {
    case Isa::kAmx: return "amx";
    case Isa::kAvx512: return "avx512";
    case Isa::kAvx2: return "avx2";
    case Isa::kScalar: return "scalar";
  }
  return "scalar";
}

bool ParseIsa(const std::string& name, Isa* isa) {
  for (Isa candidate : {Isa::kAmx, Isa::kAvx512, Isa::kAvx2, Isa::kScalar}) {
    if (name == IsaName(candidate)) {
      *isa = candidate;
      return true;
    }
  }
  return false;
}

}  // namespace labor::cpu
