-- wrk script: POST /api/v1/streams with a new link every request.
local counter = 0
function setup(thread)
  counter = counter + 1
  thread:set("id", counter)
end

local n = 0
function request()
  n = n + 1
  local body = string.format('{"link":"https://twitch.tv/bench_%d_%d_%d","source":"bench","city":"Portland","state":"OR","status":"live"}',
    id, n, math.random(1, 1000000000))
  return wrk.format("POST", "/api/v1/streams", {["Authorization"] = "Bearer " .. os.getenv("STREAMHUB_BENCH_KEY"),
    ["Content-Type"] = "application/json"}, body)
end
