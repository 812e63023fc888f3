-- wrk script: GET /api/sessions/{sid}, cycling through the sids in $SIDS,
-- with the admin key from $ADMIN. Requests are formatted once in init().
-- wrk counts every non-2xx answer; done() prints the count (bench/sessions
-- fails the run when there is any).
local requests = {}
local counter = 0

function init(args)
  local headers = {["Authorization"] = "Bearer " .. os.getenv("ADMIN")}
  for line in io.lines(os.getenv("SIDS")) do
    requests[#requests + 1] = wrk.format("GET", "/api/sessions/" .. line, headers)
  end
  counter = math.random(#requests)
end

function request()
  counter = counter % #requests + 1
  return requests[counter]
end

function done(summary, latency, requests)
  io.write(string.format("non-2xx: %d\n", summary.errors.status))
end
