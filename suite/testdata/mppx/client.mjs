// An mppx 0.11.0 WebSocket session client (dialect B) for suite/interop_test.go:
// the `tempo.session.manager(...).ws()` driver pays a session from the fixture
// channel, answering every payment-need-voucher, then settles it with mppx's
// own close handshake.
//
// The channel is pre-opened: the manager's channel store starts with it (the
// state mppx keeps after its own open, with nothing authorized yet), so the
// first credential is a voucher, never an open transaction. The chain client
// refuses every call: paying from a known channel must not need the chain.
//
// Usage: node client.mjs <ws-url> [--no-settle] [--timeout-seconds 60] [--state FILE]
// --no-settle stops after payment-close-ready and disconnects, leaving the
// channel reusable (for servers that cannot settle, like server.mjs).
// --state keeps the channel's cumulative voucher amount in FILE between runs,
// as an application keeps mppx's channel store: read at the start (when the
// file exists), written at the end, also after a failure (the client suite's
// {state}).
// Every frame is traced to stderr. On success one JSON line goes to stdout
// and the exit code is 0; on failure the error goes to stderr, exit code 1.
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { parseArgs } from 'node:util'

import { Credential } from 'mppx'
import { createChannelStore, tempo } from 'mppx/client'
import { createClient, custom, formatUnits } from 'viem'
import { privateKeyToAccount } from 'viem/accounts'
import { tempo as tempoChain } from 'viem/chains'
import WebSocket from 'ws'

import { channel, descriptorOf } from './fixture.mjs'

const decimals = 6 // TIP-20

const { values: flags, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    'no-settle': { type: 'boolean', default: false },
    'timeout-seconds': { type: 'string', default: '60' },
    state: { type: 'string' },
  },
})
if (positionals.length !== 1 || !/^wss?:\/\//.test(positionals[0]) || !/^[1-9]\d*$/.test(flags['timeout-seconds'])) {
  console.error('usage: node client.mjs <ws-url> [--no-settle] [--timeout-seconds N] [--state FILE]')
  process.exit(2)
}
const url = positionals[0]

// What the application and the wire saw, for the summary.
const seen = {
  messages: 0, // application data delivered by the driver
  needVoucher: 0,
  vouchers: 0, // voucher authorizations sent, the opening one included
  channelId: null, // the channel paid from, from the opening credential
  tick: null, // the challenge amount, from the opening credential
  closeReady: null,
  frames: { received: {}, sent: {} },
}

// A payment-error or the deadline ends the run at once: mppx's client does not
// close on a payment-error, and mppx's server may leave the socket open after
// one (ws-dialects.md §6 B1), so waiting would hang.
let fail
const failure = new Promise((_, reject) => {
  fail = reject
})
const signal = AbortSignal.timeout(Number(flags['timeout-seconds']) * 1000)
signal.addEventListener('abort', () => fail(new Error(`timed out after ${flags['timeout-seconds']}s`)))

function trace(direction, text) {
  console.error(`${direction} ${text.length > 200 ? `${text.slice(0, 200)}…` : text}`)
  let frame
  try {
    frame = JSON.parse(text)
  } catch {}
  const kind = typeof frame?.mpp === 'string' ? frame.mpp : 'other'
  const counts = direction === '<' ? seen.frames.received : seen.frames.sent
  counts[kind] = (counts[kind] ?? 0) + 1
  if (direction === '<' && kind === 'payment-need-voucher') seen.needVoucher++
  if (direction === '<' && kind === 'payment-close-ready') seen.closeReady = frame.data
  if (direction === '<' && kind === 'payment-error')
    fail(new Error(`server sent payment-error ${frame.status}: ${frame.message}`))
  if (direction === '>' && kind === 'authorization') {
    const credential = Credential.deserialize(frame.authorization)
    seen.channelId ??= credential.payload.channelId
    seen.tick ??= credential.challenge.request.amount
    if (credential.payload.action === 'voucher') seen.vouchers++
  }
}

// The driver takes a WebSocket constructor; this one shows us every frame.
class TracedWebSocket extends WebSocket {
  constructor(address, protocols) {
    super(address, protocols)
    this.on('message', (data, isBinary) => trace('<', isBinary ? `(binary, ${data.length} bytes)` : data.toString()))
  }
  send(data, ...rest) {
    trace('>', String(data))
    super.send(data, ...rest)
  }
}

// What an earlier run signed on the channel, if --state remembers it.
function savedCumulative() {
  if (!flags.state || !existsSync(flags.state)) return 0n
  const saved = JSON.parse(readFileSync(flags.state, 'utf8'))
  return saved.channelId === channel.channelId ? BigInt(saved.cumulative) : 0n
}

function saveCumulative() {
  if (flags.state)
    writeFileSync(flags.state, JSON.stringify({ channelId: channel.channelId, cumulative: manager.cumulative.toString() }))
}

const account = privateKeyToAccount(channel.signerPrivateKey)
const channelStore = createChannelStore()
channelStore.set({
  channelId: channel.channelId,
  cumulativeAmount: savedCumulative(),
  deposit: BigInt(channel.deposit),
  descriptor: descriptorOf(channel),
  escrow: channel.escrowContract,
  chainId: channel.chainId,
  opened: true,
})
const manager = tempo.session.manager({
  account,
  allowedChainIds: [channel.chainId],
  channelStore,
  client: createClient({
    account,
    chain: tempoChain,
    transport: custom({
      async request({ method }) {
        throw new Error(`client.mjs: unexpected chain call ${method}`)
      },
    }),
  }),
  maxDeposit: formatUnits(BigInt(channel.deposit), decimals),
  webSocket: TracedWebSocket,
})

async function run() {
  const socket = await manager.ws(url, { signal })
  // The driver reports payment-close-ready as a synthetic close 1000 "stream
  // complete" and keeps the raw socket open for the close handshake.
  await new Promise((resolve, reject) => {
    socket.addEventListener('message', () => {
      seen.messages++
    })
    socket.addEventListener('close', (event) => {
      if (seen.closeReady && event.reason === 'stream complete') resolve()
      else reject(new Error(`socket closed before payment-close-ready: ${event.code} ${JSON.stringify(event.reason)}`))
    })
  })
  if (flags['no-settle']) {
    socket.close()
    return null
  }
  return manager.close()
}

try {
  const settlement = await Promise.race([run(), failure])
  saveCumulative()
  console.log(
    JSON.stringify({
      url,
      channelId: seen.channelId,
      tick: seen.tick,
      messages: seen.messages,
      needVoucherRounds: seen.needVoucher,
      vouchersSent: seen.vouchers,
      cumulative: manager.cumulative.toString(),
      closeReady: seen.closeReady,
      settlement,
      frames: seen.frames,
    }),
  )
  process.exit(0)
} catch (error) {
  // fetch and ws hide the reason (refused, reset…) in `cause`.
  const cause = error?.cause ? ` (${error.cause.message ?? error.cause})` : ''
  console.error(`client.mjs: ${url}: ${error?.message ?? error}${cause}`)
  saveCumulative()
  process.exit(1)
}
