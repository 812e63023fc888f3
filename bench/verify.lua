-- wrk script: POST /api/verify, cycling through the tokens in $TOKENS.
local tokens = {}
local counter = 0

function init(args)
  for line in io.lines(os.getenv("TOKENS")) do
    tokens[#tokens + 1] = '{"token":"' .. line .. '"}'
  end
  counter = math.random(#tokens)
end

function request()
  counter = counter % #tokens + 1
  return wrk.format("POST", "/api/verify",
                    {["Content-Type"] = "application/json"}, tokens[counter])
end

function response(status, headers, body)
  if status ~= 200 or not body:find('"active":true', 1, true) then
    error("verify failed: " .. status .. " " .. body)
  end
end
