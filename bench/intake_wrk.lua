-- wrk script for bench/intake_bench.sh: POSTs one signed post-receive delivery per request to
-- /hooks/git. The signature covers only the body, so every request can reuse the body and its
-- signature while carrying a delivery id of its own (X-Switchyard-Delivery): each request is
-- a new delivery, stored durably before the 202.
--
-- usage: wrk ... -s intake_wrk.lua URL -- BODY SIGNATURE RUN_TAG
local threads = {}
local next_thread = 0

function setup(thread)
  thread:set("tid", next_thread)
  next_thread = next_thread + 1
  table.insert(threads, thread)
end

function init(args)
  body = args[1]
  signature = args[2]
  tag = args[3] or "run"
  -- BODY "@FILE": lines "SIGNATURE BODY", each thread taking every other line (deliveries are
  -- told apart by their body since migration 7, so each request needs a body of its own)
  pairs_ = nil
  if body:sub(1, 1) == "@" then
    pairs_ = {}
    local i = 0
    for line in io.lines(body:sub(2)) do
      if i % 2 == tid then table.insert(pairs_, line) end
      i = i + 1
    end
  end
  n = 0
  accepted = 0
  other = 0
end

function request()
  n = n + 1
  if pairs_ then
    local line = pairs_[(n - 1) % #pairs_ + 1]
    local space = line:find(" ")
    signature = line:sub(1, space - 1)
    body = line:sub(space + 1)
  end
  return wrk.format("POST", "/hooks/git", {
    ["Content-Type"] = "application/json",
    ["X-Switchyard-Delivery"] = tag .. "-" .. tid .. "-" .. n,
    ["X-Switchyard-Signature"] = signature,
  }, body)
end

function response(status, headers, body)
  if status == 202 then accepted = accepted + 1 else other = other + 1 end
end

function done(summary, latency, requests)
  local acc, oth = 0, 0
  for _, t in ipairs(threads) do
    acc = acc + t:get("accepted")
    oth = oth + t:get("other")
  end
  local secs = summary.duration / 1e6
  io.write(string.format("RESULT requests=%d accepted_202=%d other=%d seconds=%.2f rate=%.0f " ..
                         "p50_ms=%.2f p90_ms=%.2f p99_ms=%.2f max_ms=%.2f socket_errors=%d\n",
    summary.requests, acc, oth, secs, summary.requests / secs,
    latency:percentile(50) / 1000, latency:percentile(90) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
