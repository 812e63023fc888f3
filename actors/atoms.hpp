// Every atom keymesh uses, in one place (CAF 0.17 atoms: at most 10 chars).
#pragma once

#include <caf/atom.hpp>

namespace keymesh::atom {

#define KEYMESH_ATOM(name, text)                                               \
  using name = caf::atom_constant<caf::atom(text)>;                            \
  constexpr name name##_v = name{};

KEYMESH_ATOM(sign, "sign")
KEYMESH_ATOM(keys, "keys")
KEYMESH_ATOM(tick, "tick")
KEYMESH_ATOM(announce, "announce")
KEYMESH_ATOM(jwks, "jwks")
KEYMESH_ATOM(run, "run")
KEYMESH_ATOM(hello, "hello")
KEYMESH_ATOM(prove, "prove")
KEYMESH_ATOM(ping, "ping")
KEYMESH_ATOM(gossip, "gossip")
KEYMESH_ATOM(members, "members")
KEYMESH_ATOM(join, "join")
KEYMESH_ATOM(leave, "leave")
KEYMESH_ATOM(dial, "dial")
KEYMESH_ATOM(rotate, "rotate")
KEYMESH_ATOM(seeds, "seeds")
KEYMESH_ATOM(put, "put")
KEYMESH_ATOM(scan, "scan")
KEYMESH_ATOM(replicate, "replicate")
KEYMESH_ATOM(sync, "sync")
KEYMESH_ATOM(owners, "owners")
KEYMESH_ATOM(snapshot, "snapshot")
KEYMESH_ATOM(synced, "synced")
KEYMESH_ATOM(publish, "publish")
KEYMESH_ATOM(deliver, "deliver")
KEYMESH_ATOM(subscribe, "subscribe")
KEYMESH_ATOM(unsubscr, "unsubscr")
KEYMESH_ATOM(replay, "replay")
KEYMESH_ATOM(event, "event")
KEYMESH_ATOM(reserve, "reserve")
KEYMESH_ATOM(fetched, "fetched")
KEYMESH_ATOM(create, "create")
KEYMESH_ATOM(update, "update")
KEYMESH_ATOM(touch, "touch")
KEYMESH_ATOM(list, "list")
KEYMESH_ATOM(revoke, "revoke")
KEYMESH_ATOM(login, "login")
KEYMESH_ATOM(refresh, "refresh")
KEYMESH_ATOM(logout, "logout")
KEYMESH_ATOM(user, "user")
KEYMESH_ATOM(group, "group")
KEYMESH_ATOM(claim, "claim")
KEYMESH_ATOM(member, "member")
KEYMESH_ATOM(grant, "grant")
KEYMESH_ATOM(account, "account")
KEYMESH_ATOM(remove, "remove")
KEYMESH_ATOM(add, "add")
KEYMESH_ATOM(rehash, "rehash")
KEYMESH_ATOM(session, "session")
KEYMESH_ATOM(hash, "hash")
KEYMESH_ATOM(check, "check")
KEYMESH_ATOM(consume, "consume")
KEYMESH_ATOM(decide, "decide")
KEYMESH_ATOM(push, "push")
KEYMESH_ATOM(redeem, "redeem")
KEYMESH_ATOM(ring, "ring")
KEYMESH_ATOM(client, "client")
KEYMESH_ATOM(post, "post")

#undef KEYMESH_ATOM

// CAF's predefined atoms, under the same naming scheme.
using get = caf::get_atom;
constexpr get get_v = get{};
using ok = caf::ok_atom;
constexpr ok ok_v = ok{};

} // namespace keymesh::atom
