#!/usr/bin/env python3
"""Independent verification of a keymesh token with PyJWT: fetches the JWKS
from the node, picks the key by kid, and decodes with strict checks.

usage: pyjwt_verify.py JWKS_URL TOKEN ALGORITHM ISSUER AUDIENCE
Prints the subject and exits 0 when the token verifies; exits 1 otherwise."""
import sys

import jwt

url, token, alg, issuer, audience = sys.argv[1:6]
client = jwt.PyJWKClient(url)
key = client.get_signing_key_from_jwt(token)
claims = jwt.decode(token, key.key, algorithms=[alg], issuer=issuer,
                    audience=audience,
                    options={"require": ["exp", "iat", "iss", "sub", "aud"]})
print(claims["sub"])
