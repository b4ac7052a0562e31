// The pre-opened channels of the suite's own fixtures (fixtures/channels.json),
// so the Node side can never drift from the Go side. PUBLIC TEST KEYS.
import { readFileSync } from 'node:fs'

const file = new URL('../../../fixtures/channels.json', import.meta.url)
const all = JSON.parse(readFileSync(file, 'utf8')).channels

// The TIP-1034 (v2) channels: one chain, escrow, payee and token, so a single
// mppx session route accepts all of them.
export const channels = all.filter((c) => c.sessionProtocol === 'v2')

// The channel client.mjs pays from: payer = Anvil account 0, which also signs
// (authorizedSigner is zero).
export const channel = channels.find((c) => c.name === 'v2-payer-signs')
if (!channel) throw new Error(`fixture channel v2-payer-signs not found in ${file.pathname}`)

// The TIP-1034 descriptor: the fields a channel id is derived from, in the
// shape mppx uses for credentials and its stores.
export function descriptorOf(c) {
  return {
    payer: c.payer,
    payee: c.payee,
    operator: c.operator,
    token: c.token,
    salt: c.salt,
    authorizedSigner: c.authorizedSigner,
    expiringNonceHash: c.expiringNonceHash,
  }
}
