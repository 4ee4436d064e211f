-- wrk script: POST /api/v1/internal/captions as fast as the server takes them (one community).
local n = 0
function request()
  n = n + 1
  local body = string.format('{"community_id":%s,"text":"caption number %d from the benchmark","is_final":true}',
    os.getenv("STREAMHUB_BENCH_COMMUNITY"), n)
  return wrk.format("POST", "/api/v1/internal/captions",
    {["X-Service-Key"] = os.getenv("STREAMHUB_BENCH_SERVICE_KEY"), ["Content-Type"] = "application/json"}, body)
end
