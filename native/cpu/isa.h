// Which instruction-set path the CPU kernels use: detected once per process, overridable for tests.
#pragma once
#include <string>
#include <utility>
#include <vector>

namespace labor::cpu {

// Best last, so "a ≥ b" means "a needs at least what b needs".
enum class Isa { kScalar, kAvx2, kAvx512, kAmx };

struct IsaInfo {
  std::vector<Isa> available;                          // best first, always ends with kScalar
  std::vector<std::pair<std::string, bool>> features;  // raw CPUID / OS flags behind `available`
  std::string amx_unavailable_reason;                  // "" when AMX is available
};

// Detection runs once (thread-safe); for AMX it also asks Linux for tile-data permission, process-wide.
const IsaInfo& DetectIsa();
Isa SelectedIsa();
// "" when this CPU runs `isa`, else why not ("ISA amx is not available on this CPU (…)").
std::string UnavailableReason(Isa isa);
// Throws std::invalid_argument (UnavailableReason) when this CPU cannot run `isa`.
void SelectIsa(Isa isa);

const char* IsaName(Isa isa);
// False for an unknown name.
bool ParseIsa(const std::string& name, Isa* isa);

}  // namespace labor::cpu
