// The peer of bench/oidc: an oidc-provider adapter on Redis in the shape of
// oidc-provider's documented example (example/adapters/redis.js: ioredis,
// one key per object, consumable models as hashes with a `consumed` field,
// a list of keys per grant, uid and user code lookup keys, TTL on every
// key). Written for the benchmark: what replicas on Redis would run.
import Redis from 'ioredis';

const CONSUMABLE = new Set([
  'AuthorizationCode', 'RefreshToken', 'DeviceCode', 'BackchannelAuthenticationRequest',
]);
const grantKeyFor = (id) => `grant:${id}`;
const userCodeKeyFor = (userCode) => `userCode:${userCode}`;
const uidKeyFor = (uid) => `uid:${uid}`;

export default function redisAdapter(url) {
  const client = new Redis(url, { keyPrefix: 'oidc:', enableAutoPipelining: true });

  return class RedisAdapter {
    constructor(name) {
      this.name = name;
    }

    key(id) {
      return `${this.name}:${id}`;
    }

    async upsert(id, payload, expiresIn) {
      const key = this.key(id);
      const multi = client.multi();
      if (CONSUMABLE.has(this.name)) {
        multi.hset(key, { payload: JSON.stringify(payload) });
      } else {
        multi.set(key, JSON.stringify(payload));
      }
      if (expiresIn) multi.expire(key, expiresIn);
      if (payload.grantId) {
        const grantKey = grantKeyFor(payload.grantId);
        multi.rpush(grantKey, key);
        // the grant's list lives as long as its longest member
        const ttl = await client.ttl(grantKey);
        if (expiresIn > ttl) multi.expire(grantKey, expiresIn);
      }
      if (payload.userCode) {
        const userCodeKey = userCodeKeyFor(payload.userCode);
        multi.set(userCodeKey, id);
        multi.expire(userCodeKey, expiresIn);
      }
      if (payload.uid) {
        const uidKey = uidKeyFor(payload.uid);
        multi.set(uidKey, id);
        multi.expire(uidKey, expiresIn);
      }
      await multi.exec();
    }

    async find(id) {
      const data = CONSUMABLE.has(this.name)
        ? await client.hgetall(this.key(id))
        : await client.get(this.key(id));
      if (!data || (typeof data === 'object' && !Object.keys(data).length)) return undefined;
      if (typeof data === 'string') return JSON.parse(data);
      const { payload, ...rest } = data;
      return { ...rest, ...JSON.parse(payload) };
    }

    async findByUid(uid) {
      const id = await client.get(uidKeyFor(uid));
      return id ? this.find(id) : undefined;
    }

    async findByUserCode(userCode) {
      const id = await client.get(userCodeKeyFor(userCode));
      return id ? this.find(id) : undefined;
    }

    async destroy(id) {
      await client.del(this.key(id));
    }

    async revokeByGrantId(grantId) {
      const multi = client.multi();
      const tokens = await client.lrange(grantKeyFor(grantId), 0, -1);
      // keys in the list carry the prefix already
      tokens.forEach((token) => multi.del(token.replace(/^oidc:/, '')));
      multi.del(grantKeyFor(grantId));
      await multi.exec();
    }

    async consume(id) {
      await client.hset(this.key(id), 'consumed', Math.floor(Date.now() / 1000));
    }
  };
}
