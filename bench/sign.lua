-- wrk script: POST /api/tokens with the admin key in $ADMIN_KEY.
local body = '{"sub":"bench-user","aud":"bench","ttl":300}'
local headers = {["Content-Type"] = "application/json",
                 ["Authorization"] = "Bearer " .. os.getenv("ADMIN_KEY")}

function request()
  return wrk.format("POST", "/api/tokens", headers, body)
end

function response(status, headers, body)
  if status ~= 201 then
    error("sign failed: " .. status .. " " .. body)
  end
end
