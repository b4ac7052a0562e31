// An mppx 0.11.0 WebSocket session server (dialect B) for suite/interop_test.go.
//
// Everything that decides the wire behaviour is mppx's own: the `tempo.session`
// route answers the HTTP 402 probe and verifies every in-band authorization
// frame (Ws.serve replays each one to it as a synthetic POST), and
// `mppx.session.serveWebSocket` (tempo.Ws.serve bound to the route's store and
// settlement policy) meters the stream. The test seams are only the inputs:
//   - the channel store starts with every v2 fixture channel already open
//     (the suite pays from all of them), so no open transaction is needed;
//   - the chain is a stub that answers the chain id and the channel-state read
//     mppx makes before accepting a voucher, and fails loudly on anything else.
//     The server has no account, so it can never settle: a close credential is
//     rejected (mppx wants a payee account to send the close transaction).
//
// Usage: node server.mjs [--port 0] [--tick 1000] [--messages 60]
//                        [--secret KEY] [--challenge-ttl-seconds N]
// --tick is in base units (pathUSD has 6 decimals); --secret defaults to
// MPP_SECRET_KEY, else a random key; without --challenge-ttl-seconds
// challenges live for mppx's default 5 minutes.
// The ws:// URL is printed alone on the first stdout line; logs go to stderr.
import { randomBytes } from 'node:crypto'
import http from 'node:http'
import { parseArgs } from 'node:util'

import { Expires, Mppx, Request as MppxRequest, Store, tempo } from 'mppx/server'
import {
  createClient,
  custom,
  decodeFunctionData,
  encodeFunctionResult,
  formatUnits,
  isAddressEqual,
  numberToHex,
  parseAbi,
  zeroAddress,
} from 'viem'
import { tempo as tempoChain } from 'viem/chains'
import { WebSocketServer } from 'ws'

import { channel, channels, descriptorOf } from './fixture.mjs'

const path = '/session'
const decimals = 6 // TIP-20

const { values: flags } = parseArgs({
  options: {
    port: { type: 'string', default: '0' },
    tick: { type: 'string', default: '1000' },
    messages: { type: 'string', default: '60' },
    secret: { type: 'string', default: process.env.MPP_SECRET_KEY || randomBytes(32).toString('hex') },
    'challenge-ttl-seconds': { type: 'string' },
  },
})
const tick = parseCount('--tick', flags.tick, 1)
const messages = Number(parseCount('--messages', flags.messages, 0))
const ttlSeconds = flags['challenge-ttl-seconds'] === undefined
  ? undefined
  : Number(parseCount('--challenge-ttl-seconds', flags['challenge-ttl-seconds'], 1))

function parseCount(flag, value, min) {
  if (!/^\d+$/.test(value) || BigInt(value) < BigInt(min)) {
    console.error(`server.mjs: ${flag} ${JSON.stringify(value)}: want an integer >= ${min}`)
    process.exit(2)
  }
  return BigInt(value)
}

// One route sells to every seeded channel, so they must share its terms.
const stray = channels.find(
  (c) =>
    c.chainId !== channel.chainId ||
    !isAddressEqual(c.escrowContract, channel.escrowContract) ||
    !isAddressEqual(c.payee, channel.payee) ||
    !isAddressEqual(c.token, channel.token),
)
if (stray) throw new Error(`fixture channel ${stray.name} does not share the chain, escrow, payee and token of ${channel.name}`)

// The chain as mppx sees it: each fixture channel funded with its deposit,
// nothing settled, no close requested.
const escrowAbi = parseAbi([
  'function getChannelState(bytes32 channelId) view returns ((uint96 settled, uint96 deposit, uint32 closeRequestedAt))',
])
const onChain = new Map(
  channels.map((c) => [c.channelId.toLowerCase(), { settled: 0n, deposit: BigInt(c.deposit), closeRequestedAt: 0 }]),
)

function answerChain(method, params) {
  if (method === 'eth_chainId') return numberToHex(channel.chainId)
  if (method === 'eth_call' && isAddressEqual(params[0].to, channel.escrowContract)) {
    const call = decodeFunctionData({ abi: escrowAbi, data: params[0].data })
    const state = onChain.get(call.args[0].toLowerCase())
    if (state) return encodeFunctionResult({ abi: escrowAbi, functionName: call.functionName, result: state })
  }
  return undefined
}

const chainClient = createClient({
  chain: tempoChain,
  transport: custom(
    {
      async request({ method, params }) {
        let answer
        try {
          answer = answerChain(method, params)
        } catch {} // an undecodable call is just another unexpected request
        if (answer !== undefined) return answer
        const message = `chain stub: unexpected ${method} ${JSON.stringify(params)}`
        console.error(`server.mjs: ${message}`)
        throw new Error(message)
      },
    },
    { retryCount: 0 }, // a refused call is final; retries would only repeat the noise
  ),
})
if (chainClient.chain.id !== channel.chainId)
  throw new Error(`fixture chain ${channel.chainId} is not viem's tempo chain ${chainClient.chain.id}`)

// Each channel as mppx's open handler would have stored it (precompile
// backend, signer resolved from the descriptor), before any voucher.
const store = Store.memory()
for (const c of channels) {
  await store.put(c.channelId.toLowerCase(), {
    backend: 'precompile',
    channelId: c.channelId.toLowerCase(),
    chainId: c.chainId,
    escrowContract: c.escrowContract,
    descriptor: descriptorOf(c),
    payer: c.payer,
    payee: c.payee,
    operator: c.operator,
    token: c.token,
    salt: c.salt,
    expiringNonceHash: c.expiringNonceHash,
    authorizedSigner: isAddressEqual(c.authorizedSigner, zeroAddress) ? c.payer : c.authorizedSigner,
    deposit: BigInt(c.deposit),
    settledOnChain: 0n,
    highestVoucherAmount: 0n,
    highestVoucher: null,
    spent: 0n,
    units: 0,
    closeRequestedAt: 0n,
    finalized: false,
    createdAt: new Date().toISOString(),
  })
}

const mppx = Mppx.create({
  methods: [
    tempo.session({
      chainId: channel.chainId,
      currency: channel.token,
      decimals,
      escrowContract: channel.escrowContract,
      getClient: () => chainClient,
      recipient: channel.payee,
      store,
    }),
  ],
  realm: 'mppx-interop',
  secretKey: flags.secret,
})

// mppx takes human amounts; the challenge carries them in base units again.
const routeOptions = { amount: formatUnits(tick, decimals), unitType: 'message' }
// A route's `expires` is fixed when the route is built, so a custom lifetime
// needs a route per request; the default is computed per request by mppx.
const route = ttlSeconds === undefined
  ? mppx.session(routeOptions)
  : (request) => mppx.session({ ...routeOptions, expires: Expires.seconds(ttlSeconds) })(request)

// HTTP on the socket's own URL: the GET probe gets the 402 challenge; a paid
// request (the mppx client's HTTP top-up or close fallback) goes through the
// same route.
const server = http.createServer(
  MppxRequest.toNodeListener(async (request) => {
    if (new URL(request.url).pathname !== path) return new Response('not found\n', { status: 404 })
    const result = await route(request)
    if (result.status === 402) return result.challenge
    return result.withReceipt(new Response('this session streams over WebSocket only\n'))
  }),
)

async function* stream() {
  for (let i = 1; i <= messages; i++) yield `message ${i} of ${messages}`
}

// `ws` only upgrades; mppx takes the socket from there. Each yielded message
// costs one tick (the challenge amount).
new WebSocketServer({ server, path }).on('connection', (socket, req) => {
  void mppx.session.serveWebSocket({
    socket,
    url: `ws://${req.headers.host}${req.url}`,
    route,
    generate: stream(),
  })
})

server.listen(Number(flags.port), '127.0.0.1', () => {
  console.log(`ws://127.0.0.1:${server.address().port}${path}`)
})
