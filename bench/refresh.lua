-- wrk script: each thread has one connection (run wrk with -c equal to
-- -t); it logs in once, then refreshes with the refresh token of each
-- answer, so every request is a rotation of its own family.
local login
local refresh_token

function init(args)
  login = string.format('{"username":"%s","password":"%s"}',
                        os.getenv("LOGIN_USER"), os.getenv("LOGIN_PASSWORD"))
end

function request()
  if refresh_token == nil then
    return wrk.format("POST", "/api/login",
                      {["Content-Type"] = "application/json"}, login)
  end
  return wrk.format("POST", "/api/refresh",
                    {["Content-Type"] = "application/json"},
                    '{"refresh_token":"' .. refresh_token .. '"}')
end

function response(status, headers, body)
  refresh_token = string.match(body, '"refresh_token":"([^"]+)"')
end

function done(summary, latency, requests)
  io.write(string.format("non-2xx: %d\n", summary.errors.status))
end
