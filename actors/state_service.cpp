#include "actors/state_service.hpp"

#include <filesystem>
#include <set>

#include <caf/actor_system.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/send.hpp>
#include <spdlog/spdlog.h>

#include "persistence/data_dir.hpp"
#include "state/placement.hpp"
#include "state/snapshot.hpp"

namespace keymesh {

namespace {

/// Reads the snapshot file into one record list per partition.
std::vector<std::vector<state::keyed_record>>
load_snapshot(const std::string& path, uint32_t partitions, size_t& count) {
  std::vector<std::vector<state::keyed_record>> out(partitions);
  count = 0;
  std::error_code ec;
  if (!std::filesystem::exists(path, ec))
    return out;
  std::string why;
  try {
    auto bytes = persistence::read_small_file(path, size_t{1} << 34);
    std::vector<state::partition_snapshot> parts;
    uint32_t stored_partitions = 0;
    if (state::decode_snapshot_file(bytes, parts, stored_partitions, why)) {
      // Records are placed by key, so a file written with another partition
      // count still loads: each record goes where its key now belongs.
      for (auto& part : parts)
        for (auto& r : part.records) {
          auto p = state::partition_of(state::partition_key(r.key),
                                       partitions);
          out[p].push_back(std::move(r));
          ++count;
        }
      return out;
    }
  } catch (const std::exception& e) {
    why = e.what();
  }
  auto aside = path + ".bad";
  std::filesystem::rename(path, aside, ec);
  spdlog::error("state: cannot read the snapshot {}: {}; moved it to {} and "
                "starting empty",
                path, why, aside);
  out.assign(partitions, {});
  count = 0;
  return out;
}

} // namespace

size_t replication_factor(const config::settings& cfg) {
  if (cfg.state.replication_factor == "all")
    return 0;
  return static_cast<size_t>(std::stoul(cfg.state.replication_factor));
}

write_consistency parse_write_consistency(const std::string& text) {
  if (text == "quorum")
    return write_consistency::quorum;
  if (text == "one")
    return write_consistency::one;
  return write_consistency::all;
}

std::string state_service::snapshot_path(const std::string& data_dir) {
  return (std::filesystem::path{data_dir} / "state.snapshot").string();
}

std::unique_ptr<state_service>
state_service::start(caf::actor_system& sys, const config::settings& cfg,
                     const std::string& instance_id, wall_clock clock,
                     std::shared_ptr<const admission> admitted,
                     std::shared_ptr<const std::atomic<bool>> joined,
                     std::function<void(const std::string&,
                                        const std::string&)>
                       on_session_expired) {
  std::unique_ptr<state_service> self{new state_service};
  self->sys_ = &sys;
  self->partitions_ = cfg.state.partitions;
  self->snapshot_file_ = snapshot_path(cfg.node.data_dir);
  self->clock_ = std::make_shared<state::hlc>(state::node_tag(instance_id),
                                              clock);
  self->metrics_ = std::make_shared<state_metrics>(self->partitions_);
  self->synced_ = std::make_shared<std::atomic<bool>>(false);
  auto initial = load_snapshot(self->snapshot_file_, self->partitions_,
                               self->warm_records_);
  if (self->warm_records_ > 0)
    spdlog::info("state: warm start with {} record(s) from {}",
                 self->warm_records_, self->snapshot_file_);
  self->client_.partitions = self->partitions_;
  for (uint32_t p = 0; p < self->partitions_; ++p) {
    shard_options opts;
    opts.partition = p;
    opts.instance_id = instance_id;
    opts.clock = self->clock_;
    opts.wall = clock;
    opts.consistency = parse_write_consistency(cfg.state.write_consistency);
    opts.peer_timeout = cfg.state.peer_timeout;
    opts.anti_entropy_interval = cfg.state.anti_entropy_interval;
    opts.metrics = self->metrics_;
    opts.admitted = admitted;
    opts.joined = joined;
    opts.initial = std::move(initial[p]);
    opts.on_session_expired = on_session_expired;
    self->client_.shards.push_back(spawn_shard(sys, std::move(opts)));
  }
  router_options ropts;
  ropts.instance_id = instance_id;
  ropts.partitions = self->partitions_;
  ropts.replicas = replication_factor(cfg);
  ropts.shards = self->client_.shards;
  ropts.synced = self->synced_;
  if (cfg.cluster.enabled) {
    // A file that cannot be read counts no one and says so; one that
    // cannot be written is tried again when the next peer joins.
    auto dir = cfg.node.data_dir;
    auto path = persistence::known_members_path(dir);
    try {
      ropts.known = persistence::read_known_members(dir);
    } catch (const std::exception& e) {
      spdlog::error("state: cannot read the known members from {}: {}", path,
                    e.what());
    }
    self->known_at_start_ = ropts.known;
    if (!ropts.known.empty())
      spdlog::info("state: {} peer(s) known from earlier runs ({}): "
                   "decisions need a majority of them and this node",
                   ropts.known.size(), path);
    ropts.on_known = [dir, path](const std::set<std::string>& ids) {
      try {
        persistence::write_known_members(dir, ids);
      } catch (const std::exception& e) {
        spdlog::error("state: cannot record the known members in {}: {}",
                      path, e.what());
      }
    };
  }
  self->router_ = spawn_router(sys, std::move(ropts));
  return self;
}

state_service::~state_service() {
  stop(false);
}

void state_service::stop(bool write_snapshot) {
  if (stopped_)
    return;
  stopped_ = true;
  if (write_snapshot) {
    std::vector<state::partition_snapshot> parts;
    size_t records = 0;
    bool complete = true;
    caf::scoped_actor self{*sys_};
    for (auto& s : client_.shards) {
      self->request(s, std::chrono::seconds{10}, atom::snapshot_v)
        .receive(
          [&](std::string& bytes) {
            state::partition_snapshot part;
            std::string why;
            if (state::decode_snapshot(bytes, part, why)) {
              records += part.records.size();
              parts.push_back(std::move(part));
            } else {
              complete = false;
            }
          },
          [&](caf::error&) { complete = false; });
    }
    if (complete) {
      try {
        persistence::write_file_atomically(
          snapshot_file_, state::encode_snapshot_file(parts, partitions_));
        spdlog::info("state: wrote {} record(s) to {}", records,
                     snapshot_file_);
      } catch (const std::exception& e) {
        spdlog::error("state: cannot write the snapshot {}: {}",
                      snapshot_file_, e.what());
      }
    } else {
      spdlog::error("state: a shard did not answer; the snapshot {} was not "
                    "replaced",
                    snapshot_file_);
    }
  }
  caf::anon_send_exit(router_, caf::exit_reason::user_shutdown);
  for (auto& s : client_.shards)
    caf::anon_send_exit(s, caf::exit_reason::user_shutdown);
}

} // namespace keymesh
