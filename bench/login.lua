-- wrk script: POST /api/login as $USER / $PASSWORD, over and over. wrk
-- counts every non-2xx answer; done() prints the count (bench/login fails
-- the run when there is any).
local body

function init(args)
  body = string.format('{"username":"%s","password":"%s"}',
                       os.getenv("LOGIN_USER"), os.getenv("LOGIN_PASSWORD"))
end

function request()
  return wrk.format("POST", "/api/login",
                    {["Content-Type"] = "application/json"}, body)
end

function done(summary, latency, requests)
  io.write(string.format("non-2xx: %d\n", summary.errors.status))
end
