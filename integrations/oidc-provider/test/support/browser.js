// A user agent for the tests: a cookie jar, redirects followed by hand, the
// replica (X-Replica) of every answer recorded, and the OP's development
// login and consent forms filled in.

export class Browser {
  constructor(origin) {
    this.origin = origin;
    this.jar = new Map();
    this.replicas = [];
  }

  async go(url, { method = 'GET', form } = {}) {
    const target = new URL(url, this.origin);
    const cookie = [...this.jar].map(([k, v]) => `${k}=${v}`).join('; ');
    const res = await fetch(target, {
      method,
      redirect: 'manual',
      headers: {
        accept: 'text/html',
        ...(cookie ? { cookie } : {}),
        ...(form ? { 'content-type': 'application/x-www-form-urlencoded' } : {}),
      },
      body: form ? new URLSearchParams(form).toString() : undefined,
      signal: AbortSignal.timeout(15000),
    });
    for (const line of res.headers.getSetCookie()) {
      const [pair] = line.split(';');
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq).trim();
      if (/expires=Thu, 01 Jan 1970/i.test(line)) this.jar.delete(name);
      else this.jar.set(name, pair.slice(eq + 1));
    }
    this.replicas.push(res.headers.get('x-replica'));
    return res;
  }

  /**
   * Follows an authorization request through login and consent until the
   * OP redirects to REDIRECT_URI; resolves that URL. BEFORE(step) runs
   * before each request (a fault injected mid-interaction).
   */
  async authorize(url, redirectUri, { login = 'alice', before = async () => {} } = {}) {
    let next = { url };
    for (let step = 0; step < 20; step += 1) {
      // eslint-disable-next-line no-await-in-loop
      await before(step);
      // eslint-disable-next-line no-await-in-loop
      const res = await this.go(next.url, next);
      const location = res.headers.get('location');
      if (res.status === 302 || res.status === 303) {
        const to = new URL(location, this.origin).href;
        if (to.startsWith(redirectUri)) return to;
        next = { url: to };
        continue; // eslint-disable-line no-continue
      }
      // eslint-disable-next-line no-await-in-loop
      const html = await res.text();
      if (res.status !== 200) {
        // The OP's error page: its error and description, in <pre> blocks.
        const said = [...html.matchAll(/<pre>([\s\S]*?)<\/pre>/g)].map((m) => m[1].trim()).join(' ');
        throw new Error(`${next.url}: ${res.status} ${said || html.slice(0, 300)}`);
      }
      const action = html.match(/<form[^>]*action="([^"]+)"/)?.[1];
      const prompt = html.match(/name="prompt" value="([^"]+)"/)?.[1];
      if (!action || !prompt) throw new Error(`${next.url}: no interaction form in ${html.slice(0, 300)}`);
      const form = prompt === 'login' ? { prompt, login, password: 'any' } : { prompt };
      next = { url: new URL(action, this.origin).href, method: 'POST', form };
    }
    throw new Error('the authorization did not end in 20 steps');
  }

  /** RP-initiated logout: the end_session page, then "Yes, sign me out". */
  async logout(endSessionUrl, { everywhere = true } = {}) {
    const page = await this.go(endSessionUrl);
    const html = await page.text();
    if (page.status !== 200) throw new Error(`end_session: ${page.status} ${html.slice(0, 300)}`);
    const action = html.match(/<form[^>]*action="([^"]+)"/)?.[1];
    const xsrf = html.match(/name="xsrf" value="([^"]+)"/)?.[1];
    if (!action || !xsrf) throw new Error(`end_session: no logout form in ${html.slice(0, 300)}`);
    const form = everywhere ? { xsrf, logout: 'yes' } : { xsrf };
    return this.go(new URL(action, this.origin).href, { method: 'POST', form });
  }
}
