#include "runner/http/curl_client.h"

#include <algorithm>
#include <mutex>

#include <curl/curl.h>

#include "runner/core/c_handle.h"
#include "runner/core/error.h"
#include "runner/core/text.h"

namespace runner::http {

namespace {

using CurlPtr = CHandle<CURL, curl_easy_cleanup>;
using SlistPtr = CHandle<curl_slist, curl_slist_free_all>;

// The one check for libcurl setup calls (STYLE.md P6). Transfer results are values, not
// exceptions: see transferError().
void checkCurl(CURLcode rc, std::string_view doing) {
  if (rc == CURLE_OK) return;
  throw HttpError(std::string(doing) + ": " + curl_easy_strerror(rc));
}

struct Transfer {
  HttpResponse response;
  size_t maxBytes = 0;
  bool tooLarge = false;
};

size_t onBody(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  size_t len = size * n;
  if (t->response.body.size() + len > t->maxBytes) {
    t->tooLarge = true;
    return 0;  // makes curl abort with CURLE_WRITE_ERROR
  }
  t->response.body.append(data, len);
  return len;
}

size_t onHeader(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  size_t len = size * n;
  std::string_view line(data, len);
  if (startsWith(line, "HTTP/")) {
    t->response.headers.clear();  // a new response (after 100 Continue): keep only the last
    return len;
  }
  size_t colon = line.find(':');
  if (colon == std::string_view::npos) return len;  // the blank line, or garbage
  std::string name = toLower(trim(line.substr(0, colon)));
  std::string value(trim(line.substr(colon + 1)));
  if (name.empty()) return len;
  auto [it, inserted] = t->response.headers.emplace(name, value);
  if (!inserted) it->second += ", " + value;
  return len;
}

std::string transferError(CURLcode rc, const char* errbuf, const Transfer& t,
                          const HttpRequest& req) {
  if (t.tooLarge) return "response too large (over " + std::to_string(t.maxBytes) + " bytes)";
  if (rc == CURLE_OPERATION_TIMEDOUT)
    return "timed out after " + std::to_string(req.timeout.count()) + " ms";
  if (errbuf[0]) return std::string(trim(errbuf));
  return curl_easy_strerror(rc);
}

bool hasHeader(const HttpRequest& req, std::string_view name) {
  return std::any_of(req.headers.begin(), req.headers.end(),
                     [&](const auto& h) { return toLower(h.first) == toLower(name); });
}

}  // namespace

CurlHttpClient::CurlHttpClient(CurlOptions options) : options_(std::move(options)) {
  static std::once_flag once;
  static CURLcode initResult = CURLE_OK;
  std::call_once(once, [] { initResult = curl_global_init(CURL_GLOBAL_DEFAULT); });
  checkCurl(initResult, "initialising libcurl");
}

HttpResponse CurlHttpClient::send(const HttpRequest& req) {
  CurlPtr curl(curl_easy_init());
  if (!curl) throw HttpError("curl_easy_init failed");
  CURL* h = curl.get();
  Transfer t;
  t.maxBytes = options_.maxResponseBytes;
  char errbuf[CURL_ERROR_SIZE] = {0};

  checkCurl(curl_easy_setopt(h, CURLOPT_URL, req.url.c_str()), "setting the URL");
  checkCurl(curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https"), "restricting protocols");
  checkCurl(curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L), "disabling signals");
  checkCurl(curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L), "disabling redirects");
  checkCurl(curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf), "setting the error buffer");
  checkCurl(curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, static_cast<long>(req.timeout.count())),
            "setting the timeout");
  auto connect = std::min(req.timeout, options_.connectTimeout);
  checkCurl(curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(connect.count())),
            "setting the connect timeout");
  if (!options_.caFile.empty())
    checkCurl(curl_easy_setopt(h, CURLOPT_CAINFO, options_.caFile.c_str()), "setting the CA file");

  // Method and body. POSTFIELDS points into `req`, which outlives the transfer.
  const bool sendsBody =
      req.method != "GET" && req.method != "HEAD" && (req.method == "POST" || !req.body.empty());
  if (req.method == "GET") {
    checkCurl(curl_easy_setopt(h, CURLOPT_HTTPGET, 1L), "setting GET");
  } else if (req.method == "HEAD") {
    checkCurl(curl_easy_setopt(h, CURLOPT_NOBODY, 1L), "setting HEAD");
  } else {
    if (req.method != "POST")
      checkCurl(curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, req.method.c_str()),
                "setting the method");
    if (sendsBody) {
      checkCurl(curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE,
                                 static_cast<curl_off_t>(req.body.size())),
                "setting the body size");
      checkCurl(curl_easy_setopt(h, CURLOPT_POSTFIELDS, req.body.data()), "setting the body");
    }
  }

  SlistPtr headers;
  auto addHeader = [&](const std::string& line) {
    curl_slist* next = curl_slist_append(headers.get(), line.c_str());
    if (!next) throw HttpError("curl_slist_append failed");
    (void)headers.release();
    headers.reset(next);
  };
  for (const auto& [name, value] : req.headers) addHeader(name + ": " + value);
  if (!hasHeader(req, "User-Agent")) addHeader("User-Agent: " + options_.userAgent);
  if (!hasHeader(req, "Expect")) addHeader("Expect:");  // no 100-continue round trip
  if (!hasHeader(req, "Content-Type")) {
    if (!req.body.empty())
      addHeader("Content-Type: application/octet-stream");  // not curl's form default
    else if (sendsBody)
      // An empty POST/PATCH gets curl's "application/x-www-form-urlencoded" unless told
      // otherwise: no content, so no content type (RFC 9110 §8.3), as a bare `curl -X POST`
      // without -d would send it. "application/json" would declare an empty, invalid document.
      addHeader("Content-Type:");
  }
  checkCurl(curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers.get()), "setting headers");

  checkCurl(curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, onBody), "setting the body callback");
  checkCurl(curl_easy_setopt(h, CURLOPT_WRITEDATA, &t), "setting the body callback data");
  checkCurl(curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, onHeader), "setting the header callback");
  checkCurl(curl_easy_setopt(h, CURLOPT_HEADERDATA, &t), "setting the header callback data");

  CURLcode rc = curl_easy_perform(h);
  if (rc != CURLE_OK) {
    HttpResponse failed;
    failed.error = transferError(rc, errbuf, t, req);
    return failed;
  }
  long status = 0;
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
  t.response.status = static_cast<int>(status);
  return std::move(t.response);
}

}  // namespace runner::http
