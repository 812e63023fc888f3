// keymesh for node oidc-provider: an adapter that keeps every model in
// keymesh, and the wiring that shares cookie keys, DPoP nonces, replay
// detection and logouts across the OP's replicas.
export { Keymesh, KeymeshError } from './lib/client.js';
export {
  keymeshAdapter, keymeshSid, requestScope, GRANT_MODELS, CONSUMABLE_MODELS,
} from './lib/adapter.js';
export { attachKeymesh, dpopNonceSecret, RingNonces } from './lib/attach.js';
