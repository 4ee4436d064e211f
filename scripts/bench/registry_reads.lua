-- wrk script: GET /api/v1/streams with a rotating mix of filters, sorts and pages (the list a wall or a
-- monitoring page polls). Each thread walks the mix from a different start.
local queries = {}
local statuses = {"live", "offline", "unknown"}
local platforms = {"twitch", "youtube", "kick", "tiktok", "other"}
local cities = {"Portland", "Chicago", "Denver", "Austin", "Atlanta"}
for page = 1, 8 do
  for _, s in ipairs(statuses) do
    table.insert(queries, "/api/v1/streams?status=" .. s .. "&per_page=25&page=" .. page)
  end
  for _, p in ipairs(platforms) do
    table.insert(queries, "/api/v1/streams?platform=" .. p .. "&sort=-updated_at&per_page=50&page=" .. page)
  end
  for _, c in ipairs(cities) do
    table.insert(queries, "/api/v1/streams?city=" .. c .. "&is_pinned=false&per_page=25&page=" .. page)
  end
  table.insert(queries, "/api/v1/streams?q=streamer" .. page .. "&per_page=25")
end

local counter = 0
function setup(thread)
  counter = counter + 1
  thread:set("offset", counter * 7)
end

-- STREAMHUB_BENCH_RATE (requests/s over all connections) paces each connection: after every answer it
-- waits so that the connections together offer about that rate, and the latency wrk reports is the
-- latency at that load (not at saturation). STREAMHUB_BENCH_CONNECTIONS must be wrk's -c.
local rate = tonumber(os.getenv("STREAMHUB_BENCH_RATE") or "")
local connections = tonumber(os.getenv("STREAMHUB_BENCH_CONNECTIONS") or "32")
if rate then
  function delay()
    return math.max(0, connections * 1000 / rate - 1)
  end
end

local i = 0
function request()
  i = i + 1
  local path = queries[((i + offset) % #queries) + 1]
  return wrk.format("GET", path, {["Authorization"] = "Bearer " .. os.getenv("STREAMHUB_BENCH_KEY")})
end
