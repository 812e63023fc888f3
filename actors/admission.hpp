// Which remote nodes are admitted cluster members: written by the
// membership actor the moment a peer's handshake proof verifies (and
// cleared when it goes down), read by every actor that peers may reach
// (federation, shards, bus, membership itself) to refuse messages from
// nodes that never proved who they are. Shared by reference, lock-guarded:
// the check must not wait for a message, or a peer's first message could
// overtake the news of its admission.
#pragma once

#include <map>
#include <mutex>
#include <optional>
#include <string>

#include <caf/actor_addr.hpp>
#include <caf/local_actor.hpp>
#include <caf/node_id.hpp>

namespace keymesh {

class admission {
public:
  /// NODE proved to be member ID.
  void admit(const caf::node_id& node, const std::string& id) {
    std::lock_guard<std::mutex> guard{mutex_};
    members_[node] = id;
  }

  /// NODE is no longer a member (down, replaced).
  void revoke(const caf::node_id& node) {
    std::lock_guard<std::mutex> guard{mutex_};
    members_.erase(node);
  }

  /// The member id NODE was admitted as, if any.
  std::optional<std::string> member(const caf::node_id& node) const {
    std::lock_guard<std::mutex> guard{mutex_};
    auto i = members_.find(node);
    if (i == members_.end())
      return std::nullopt;
    return i->second;
  }

private:
  mutable std::mutex mutex_;
  std::map<caf::node_id, std::string> members_;
};

/// Where the message SELF is handling comes from.
enum class sender_kind {
  /// An actor of this node, or no sender (anonymous messages from other
  /// nodes are dropped by the cluster transport).
  local,
  /// An admitted cluster member.
  member,
  /// Any other node.
  stranger,
};

inline sender_kind classify_sender(caf::local_actor* self,
                                   const admission* admitted) {
  auto& sender = self->current_sender();
  if (!sender || sender->node() == self->node())
    return sender_kind::local;
  if (admitted != nullptr && admitted->member(sender->node()))
    return sender_kind::member;
  return sender_kind::stranger;
}

} // namespace keymesh
