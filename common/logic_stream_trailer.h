#pragma once

namespace im::common {

// LogicService.Stream's trailing metadata: the id of the last Ingress logic read before it ended
// a stream it drained (every entry up to it was answered; later ones were never seen, so the
// gateway may send them to another node whatever their type). Written by logic, read by gateways.
inline constexpr char kLastReadIdTrailer[] = "im-last-read-id";

}  // namespace im::common
