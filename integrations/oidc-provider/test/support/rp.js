// What the relying party does in the tests: authorization requests with
// PKCE (through openid-client), and a code redeemed by hand where a test
// needs the raw answer.
import * as oidc from 'openid-client';

/** An authorization request of RP with a fresh PKCE pair: {url, verifier}. */
export async function pkceRequest(rp, redirectUri, params = {}) {
  const verifier = oidc.randomPKCECodeVerifier();
  const url = oidc.buildAuthorizationUrl(rp, {
    redirect_uri: redirectUri,
    scope: 'openid',
    code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    ...params,
  });
  return { url: url.href, verifier };
}

/** POSTs CODE to TOKEN_URL as client rp1: {status, body}. */
export async function redeemCode(tokenUrl, { code, redirectUri, verifier }) {
  const res = await fetch(tokenUrl, {
    method: 'POST',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      authorization: `Basic ${Buffer.from('rp1:rp1-secret').toString('base64')}`,
    },
    body: new URLSearchParams({
      grant_type: 'authorization_code', code, redirect_uri: redirectUri, code_verifier: verifier,
    }),
  });
  return { status: res.status, body: await res.json() };
}
