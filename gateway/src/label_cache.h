// GetBeneficiaryJourney's cache of référentiel labels (journey.cc), one per Gateway.
//
// - Bloc labels of a version, keyed by version name, only once the version is out of DRAFT:
//   a PUBLISHED (or RETIRED) version's tree never changes (referential-svc refuses to edit a
//   version that is not a DRAFT), so those entries never expire. Only what the journey shows is
//   kept (bloc code, title, short label), not the whole tree.
// - Certification titles, keyed by certification name. A certification's title can be edited
//   (UpdateCertification), so an entry is used for `title_ttl` only.
// Bounded: at most `max_entries` of each; when full, an arbitrary entry is dropped. A hit means
// the journey does not call referential-svc for that part at all.
#pragma once

#include <cstddef>
#include <memory>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "parcours/referential/v1/referential.pb.h"

namespace parcours::gateway {

class LabelCache {
 public:
  explicit LabelCache(size_t max_entries = 512, absl::Duration title_ttl = absl::Minutes(1))
      : max_entries_(max_entries), title_ttl_(title_ttl) {}

  // The labels of a non-DRAFT version (only name, state and the blocs' code/title/short label
  // are set), or null.
  std::shared_ptr<const referential::v1::Version> FindVersion(const std::string& name) const {
    absl::ReaderMutexLock lock(&mu_);
    auto it = versions_.find(name);
    return it == versions_.end() ? nullptr : it->second;
  }

  // Keeps the labels of `version` when it is no longer a DRAFT; returns what the journey needs
  // (the stripped labels) either way.
  std::shared_ptr<const referential::v1::Version> StoreVersion(const referential::v1::Version& version) {
    auto labels = std::make_shared<referential::v1::Version>();
    labels->set_name(version.name());
    labels->set_state(version.state());
    for (const referential::v1::Bloc& bloc : version.blocs()) {
      referential::v1::Bloc* b = labels->add_blocs();
      b->set_code(bloc.code());
      b->set_title(bloc.title());
      b->set_short_label(bloc.short_label());
    }
    std::shared_ptr<const referential::v1::Version> stored = std::move(labels);
    if (version.state() == referential::v1::VERSION_STATE_PUBLISHED ||
        version.state() == referential::v1::VERSION_STATE_RETIRED) {
      absl::MutexLock lock(&mu_);
      if (versions_.size() >= max_entries_ && !versions_.contains(version.name())) versions_.erase(versions_.begin());
      versions_[version.name()] = stored;
    }
    return stored;
  }

  // A certification title read less than title_ttl ago, or false.
  bool FindTitle(const std::string& certification, std::string* title) const {
    const absl::Time now = absl::Now();
    absl::ReaderMutexLock lock(&mu_);
    auto it = titles_.find(certification);
    if (it == titles_.end() || now - it->second.read >= title_ttl_) return false;
    *title = it->second.title;
    return true;
  }

  void StoreTitle(const std::string& certification, const std::string& title) {
    const absl::Time now = absl::Now();
    absl::MutexLock lock(&mu_);
    if (titles_.size() >= max_entries_ && !titles_.contains(certification)) titles_.erase(titles_.begin());
    titles_[certification] = Title{title, now};
  }

 private:
  struct Title {
    std::string title;
    absl::Time read;
  };

  const size_t max_entries_;
  const absl::Duration title_ttl_;
  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, std::shared_ptr<const referential::v1::Version>> versions_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, Title> titles_ ABSL_GUARDED_BY(mu_);
};

}  // namespace parcours::gateway
