// A hand-written HttpClient (STYLE.md P9): answers from a table keyed by URL (404 for anything
// else) and records every request. Thread-safe.
#pragma once

#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "runner/core/http_client.h"

namespace tests {

class FakeHttpClient final : public runner::HttpClient {
 public:
  void on(const std::string& url, runner::HttpResponse response) {
    std::lock_guard lk(mu_);
    replies_[url] = std::move(response);
  }
  runner::HttpResponse send(const runner::HttpRequest& request) override {
    std::lock_guard lk(mu_);
    requests_.push_back(request);
    auto it = replies_.find(request.url);
    if (it != replies_.end()) return it->second;
    runner::HttpResponse r;
    r.status = 404;
    r.body = "not found";
    return r;
  }
  std::vector<runner::HttpRequest> requests() {
    std::lock_guard lk(mu_);
    return requests_;
  }

 private:
  std::mutex mu_;
  std::map<std::string, runner::HttpResponse> replies_;
  std::vector<runner::HttpRequest> requests_;
};

}  // namespace tests
