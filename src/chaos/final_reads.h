// After the faults heal, every key is read once more; these reads decide whether an acknowledged
// write was lost, stated plainly beside the checker's verdict (which covers the same ground, but
// says "not linearizable" where an operator wants "this acknowledged write is gone").
//
// For each key, with the final value being what the last successful final read returned:
//  - a value must be one that some put or cas that may have taken effect wrote (acknowledged or
//    unknown); a missing key needs a del that may have taken effect, or no write acknowledged;
//  - if one acknowledged write (put, cas that matched, del) came after every other write that may
//    have taken effect, with no overlap, the final value must be its effect.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "lincheck/history.h"

namespace synod::chaos {

struct FinalReadReport {
  std::vector<std::string> lost;    // one line per key whose final value betrays a lost write
  std::vector<std::string> unread;  // keys whose final read never succeeded
  size_t keys_checked = 0;
};

// `final_client`: the client id of the final reads in `history`; `keys`: every key the run used.
FinalReadReport check_final_reads(const lincheck::History& history, int64_t final_client,
                                  const std::vector<std::string>& keys);

}  // namespace synod::chaos
