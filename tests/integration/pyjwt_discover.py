#!/usr/bin/env python3
"""A relying party that knows only keymesh's address, with PyJWT: reads the
discovery metadata, fetches the keys from its jwks_uri (PyJWKClient) and
decodes the token requiring the metadata's issuer.

usage: pyjwt_discover.py BASE_URL TOKEN AUDIENCE [EXPECTED_ISSUER]
Prints the issuer and the subject and exits 0 when the token verifies (and
the metadata's issuer is EXPECTED_ISSUER, when given); exits 1 otherwise."""
import json
import sys
import urllib.request

import jwt

base, token, audience = sys.argv[1:4]
with urllib.request.urlopen(base + "/.well-known/openid-configuration", timeout=10) as res:
    meta = json.load(res)
if len(sys.argv) > 4 and meta["issuer"] != sys.argv[4]:
    sys.exit(f"issuer {meta['issuer']!r}, expected {sys.argv[4]!r}")
client = jwt.PyJWKClient(meta["jwks_uri"])
key = client.get_signing_key_from_jwt(token)
claims = jwt.decode(token, key.key, algorithms=meta["id_token_signing_alg_values_supported"],
                    issuer=meta["issuer"], audience=audience,
                    options={"require": ["exp", "iat", "iss", "sub", "aud"]})
print(meta["issuer"], claims["sub"])
