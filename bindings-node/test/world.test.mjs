// Tests of the binding's `channel` and `files` modules (core/src/channel.rs, core/src/files).
// They need a network, so they start node processes in the namespace hosts of a sixcast-netlab
// world (`sixcast-netlab run lan:3 -- node --test test/world.test.mjs`; bindings-node/run-tests
// does that) and never touch the host's own interfaces. Without a world they skip, except under
// CI, where that fails.
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { createInterface } from 'node:readline'
import { test } from 'node:test'
import { fileURLToPath } from 'node:url'

import { ChannelKey, SigningKey, Token, dropReasons, groupAddress } from '../index.js'

const world = process.env.SIXCAST_WORLD ? JSON.parse(process.env.SIXCAST_WORLD) : null
const noWorld = 'needs a namespace world: run under `sixcast-netlab run lan:3 --` (bindings-node/run-tests does)'
const peerScript = fileURLToPath(new URL('./world/peer.mjs', import.meta.url))
const agentScript = fileURLToPath(new URL('./agent.mjs', import.meta.url))

function worldTest(name, body) {
  if (world) return test(name, { timeout: 30_000 }, body)
  if (process.env.CI) return test(name, () => assert.fail(noWorld))
  return test(name, { skip: noWorld }, body)
}

const host = (name) => world.hosts.find((candidate) => candidate.name === name)

/** A fresh channel name per test, so that tests never hear each other. */
const freshChannel = (label) => `node-${label}-${randomBytes(4).toString('hex')}`

/**
 * Starts `script ARGS` with node inside host `hostName`. `nextLine()` and `next()` (parsed as
 * JSON) read its output line by line; `exit` resolves with {code, stderr, elapsed} once it has
 * exited.
 */
function startIn(hostName, script, args, env = process.env) {
  const started = Date.now()
  const child = spawn('ip', ['netns', 'exec', host(hostName).netns, process.execPath, script, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env,
  })
  let stderr = ''
  child.stderr.on('data', (chunk) => (stderr += chunk))
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]()
  const exit = new Promise((resolve) =>
    child.on('close', (code) => resolve({ code, stderr, elapsed: Date.now() - started })),
  )
  const nextLine = async () => {
    const { value, done } = await lines.next()
    if (done) {
      const { code, stderr: reason } = await exit
      assert.fail(`${hostName} ${args[0]} ended early (exit ${code}): ${reason}`)
    }
    return value
  }
  return { exit, nextLine, next: async () => JSON.parse(await nextLine()) }
}

const peer = (hostName, ...args) => startIn(hostName, peerScript, args)

/** Runs a peer role to its end and checks that it succeeded within `limitMs`. */
async function succeeds(started, limitMs) {
  const { code, stderr, elapsed } = await started.exit
  assert.equal(code, 0, `exit ${code}: ${stderr}`)
  assert.ok(elapsed < limitMs, `took ${elapsed} ms, more than ${limitMs}`)
}

worldTest('two processes in two hosts exchange messages with their metadata', async () => {
  const channel = freshChannel('exchange')
  const receiver = peer('h2', 'recv', channel, '3', '10000')
  assert.deepEqual(await receiver.next(), { ready: true })
  const sender = peer('h1', 'send', channel, 'text:hello from h1', 'empty', 'mib')
  const { sender: senderId, port, interfaces } = await sender.next()
  await succeeds(sender, 10_000)
  assert.deepEqual(interfaces, [host('h1').ifname])

  const received = [await receiver.next(), await receiver.next(), await receiver.next()]
  const metadata = {
    source: host('h1').addr,
    sourcePort: port,
    group: groupAddress(channel),
    interface: host('h2').ifindex,
    interfaceName: host('h2').ifname,
    sender: senderId,
    relayed: false,
    path: 'native',
  }
  for (const [seq, { size, sha256, text, ...rest }] of received.entries()) {
    assert.deepEqual(rest, { ...metadata, seq })
  }
  assert.equal(received[0].text, 'hello from h1')
  assert.equal(received[1].size, 0)
  assert.equal(received[1].text, '')
  assert.equal(received[2].size, 1 << 20)
  const mib = createHash('sha256').update(Buffer.alloc(1 << 20, 0x5a)).digest('hex')
  assert.equal(received[2].sha256, mib)
  const { stats } = await receiver.next()
  assert.equal(stats.messagesReceived, 3)
  assert.equal(stats.malformed, 0)
  assert.equal(stats.lost, 0)
  await succeeds(receiver, 15_000)
})

worldTest('reachability() reports a Stratum 0 that does not answer', async () => {
  const stratum0 = `[${host('h2').addr}]:6447`
  const probing = peer('h1', 'reachability', stratum0)
  const { initial } = await probing.next()
  assert.ok(initial, 'reachability() is null with a stratum0')
  assert.equal(initial.relay ?? null, null)
  const { settled } = await probing.next()
  assert.ok(settled.probe || settled.lastError, JSON.stringify(settled))
  if (settled.probe) {
    assert.equal(settled.probe.stratum0, stratum0)
    assert.equal(settled.probe.answered, false)
    assert.equal(settled.probe.rttMs ?? null, null)
    assert.equal(settled.probe.nativeUp, false)
  }
  assert.equal(settled.relay ?? null, null)
  assert.equal(settled.gateway ?? null, null)
  assert.deepEqual(settled.serving, [])
  assert.equal(settled.stratum0, stratum0, 'the configured Stratum 0 was tried')
  assert.equal(settled.rejectedRelays, 0, 'no relay answered, so none was refused')
  assert.equal(settled.heldDropped, 0, 'nothing was sent, so no copy was dropped')
  assert.ok(Array.isArray(settled.offers))
  const { event, none, timedOut } = await probing.next()
  assert.equal(event.kind, 'path_changed')
  assert.equal(event.path, 'unreachable')
  assert.equal(event.via ?? null, null)
  assert.equal(none, null)
  assert.equal(timedOut, 'ERR_SIXCAST_TIMEOUT')
  await succeeds(probing, 15_000)
})

worldTest('SIXCAST_LOG puts the library\'s warnings on standard error', async () => {
  const stratum0 = `[${host('h2').addr}]:6447`
  const logging = startIn('h1', peerScript, ['log', stratum0], { ...process.env, SIXCAST_LOG: 'warn' })
  const { lastError } = await logging.next()
  assert.ok(lastError, 'the core was reached without a Stratum 0')
  const { code, stderr } = await logging.exit
  assert.equal(code, 0, stderr)
  assert.match(stderr, /WARN.*reaching the multicast core/)
  // Without the variable the binding prints nothing of its own.
  const { SIXCAST_LOG: _, ...withoutLog } = process.env
  const quiet = startIn('h1', peerScript, ['log', stratum0], withoutLog)
  await quiet.next()
  const { stderr: silence } = await quiet.exit
  assert.doesNotMatch(silence, /reaching the multicast core/)
})

worldTest('a third host receives the same messages (one send, many receivers)', async () => {
  const channel = freshChannel('fanout')
  const receivers = ['h2', 'h3'].map((name) => peer(name, 'recv', channel, '2', '10000'))
  for (const receiver of receivers) assert.deepEqual(await receiver.next(), { ready: true })
  await succeeds(peer('h1', 'send', channel, 'text:one', 'text:two'), 10_000)
  for (const receiver of receivers) {
    assert.deepEqual([(await receiver.next()).text, (await receiver.next()).text], ['one', 'two'])
    await receiver.next()
    await succeeds(receiver, 15_000)
  }
})

worldTest('for await iterates over messages and ends when the context closes', async () => {
  const channel = freshChannel('iterate')
  const receiver = peer('h2', 'iterate', channel, '2')
  assert.deepEqual(await receiver.next(), { ready: true })
  await succeeds(peer('h1', 'send', channel, 'text:first', 'text:second'), 10_000)
  assert.equal((await receiver.next()).text, 'first')
  assert.equal((await receiver.next()).text, 'second')
  assert.deepEqual(await receiver.next(), { ended: true, received: 2 })
  await succeeds(receiver, 15_000)
})

worldTest('a subscription delivers until stop(), and stop() lets the process exit', async () => {
  const channel = freshChannel('subscribe')
  const receiver = peer('h2', 'subscribe', channel, '2')
  assert.deepEqual(await receiver.next(), { ready: true })
  // More messages than the subscriber takes: the rest arrive after stop() and must not reach it.
  await succeeds(peer('h1', 'send', channel, 'text:a', 'text:b', 'text:c', 'text:d'), 10_000)
  assert.equal((await receiver.next()).text, 'a')
  assert.equal((await receiver.next()).text, 'b')
  assert.deepEqual(await receiver.next(), { stopped: true })
  await succeeds(receiver, 15_000)
})

for (const when of ['in-callback', 'immediate']) {
  worldTest(`stop() (${when}) while messages arrive loses none: recv() gets the rest`, async () => {
    const receiver = peer('h1', 'stop-while-arriving', freshChannel('stop'), '300', when)
    const { viaSubscription, viaRecv } = await receiver.next()
    assert.ok(viaSubscription >= 100 && viaRecv > 0, `${viaSubscription} + ${viaRecv}`)
    await succeeds(receiver, 15_000)
  })
}

worldTest('a process exits by itself once it closed its context', async () => {
  const closing = peer('h1', 'exit-after-close', freshChannel('exit'))
  assert.deepEqual(await closing.next(), { closed: true })
  assert.deepEqual(await closing.next(), { ended: true })
  const closedAt = Date.now()
  await succeeds(closing, 10_000)
  const lingered = Date.now() - closedAt
  assert.ok(lingered < 2000, `the process lived ${lingered} ms after closing its context`)
})

for (const role of ['timeout', 'paced', 'closed', 'too-large', 'thread-pool', 'many-pending', 'local']) {
  worldTest(`in one host: ${role}`, async () => {
    await succeeds(peer('h1', role, freshChannel(role)), 15_000)
  })
}

worldTest('senderLosses() counts the skipped messages of each sender', async () => {
  const probing = peer('h1', 'sender-losses', freshChannel('sender-losses'))
  const { before, received, lost, losses } = await probing.next()
  assert.deepEqual(before, [])
  assert.deepEqual(
    received.map(([sender, seq]) => `${sender}:${seq}`).sort(),
    ['0000000000000007:0', '0000000000000007:1', '0000000000000007:2',
      '0000000000000042:0', '0000000000000042:1', '0000000000000042:4'],
  )
  assert.equal(lost, 2)
  // By node id: the sender without a gap first.
  assert.deepEqual(losses, [
    { sender: '0000000000000007', highestSeq: 2, lost: 0 },
    { sender: '0000000000000042', highestSeq: 4, lost: 2 },
  ])
  await succeeds(probing, 15_000)
})

worldTest('sendFile() and FileReceiver reject bad arguments and silence with their codes', async () => {
  const folder = await mkdtemp(path.join(tmpdir(), 'sixcast-node-files-'))
  try {
    await writeFile(path.join(folder, 'payload'), 'some bytes')
    await succeeds(peer('h1', 'file-errors', freshChannel('file-errors'), folder), 15_000)
  } finally {
    await rm(folder, { recursive: true, force: true })
  }
})

worldTest('a file sent from a reliable context arrives whole in another host', async () => {
  const content = randomBytes(200 * 1024)
  const digest = createHash('sha256').update(content).digest('hex')
  const [source, inbox] = await Promise.all(
    ['source', 'inbox'].map((label) => mkdtemp(path.join(tmpdir(), `sixcast-node-${label}-`))),
  )
  try {
    const file = path.join(source, 'random.bin')
    await writeFile(file, content)
    const channel = freshChannel('file')
    const receiver = peer('h2', 'recv-file', channel, inbox, '20000')
    assert.deepEqual(await receiver.next(), { ready: true })
    const sender = peer('h1', 'send-file', channel, file, 'arrived.bin')
    const { sent, sender: senderId } = await sender.next()
    await succeeds(sender, 15_000)
    assert.deepEqual(sent, { name: 'arrived.bin', size: content.length, sha256: digest, chunk: sent.chunk })
    assert.ok(sent.chunk > 0 && sent.chunk < 65536, `chunk ${sent.chunk}`)

    const { outcome, stats } = await receiver.next()
    await succeeds(receiver, 20_000)
    assert.deepEqual(outcome, {
      complete: true,
      name: 'arrived.bin',
      size: content.length,
      path: path.join(inbox, 'arrived.bin'),
      sha256: digest,
      sender: senderId,
      resumed: 0,
    })
    assert.match(senderId, /^[0-9a-f]{16}$/)
    const received = await readFile(outcome.path)
    assert.ok(received.equals(content), 'the received bytes differ from the sent ones')
    assert.equal(createHash('sha256').update(received).digest('hex'), digest)
    // The partial file was renamed and its state removed.
    assert.deepEqual(await readdir(inbox), ['arrived.bin'])
    const chunks = Math.ceil(content.length / sent.chunk)
    assert.equal(stats.chunks, chunks)
    // The OFFER and every chunk; the transfer ended with its last chunk, before DONE.
    assert.ok(stats.frames >= chunks + 1, JSON.stringify(stats))
    assert.equal(stats.malformed + stats.refused, 0)
  } finally {
    await Promise.all([source, inbox].map((folder) => rm(folder, { recursive: true, force: true })))
  }
})

worldTest('the conformance agent sends to agents in two other hosts', async () => {
  const channel = freshChannel('agent')
  const receivers = ['h2', 'h3'].map((name) => startIn(name, agentScript, ['recv', channel, '3', '10']))
  for (const receiver of receivers) assert.equal(await receiver.nextLine(), 'READY')
  await succeeds(startIn('h1', agentScript, ['send', channel, 'h1']), 10_000)
  for (const receiver of receivers) {
    const lines = [await receiver.next(), await receiver.next(), await receiver.next()]
    const sender = lines[0].sender
    assert.match(sender, /^[0-9a-f]{16}$/)
    assert.deepEqual(lines, [
      { size: 13, text: 'hello from h1', pattern_ok: false, seq: 0, sender },
      { size: 0, text: '', pattern_ok: false, seq: 1, sender },
      { size: 1 << 20, text: null, pattern_ok: true, seq: 2, sender },
    ])
    await succeeds(receiver, 15_000)
  }
})

/**
 * Sends `secret` from h1 with the keys of `specs.sender` to a receiver in h2 with
 * `specs.holder`, which must get it, and one in h3 with `specs.outsider`, which must get nothing
 * and count a drop for `dropReason`.
 */
async function protectedExchange(channel, specs, dropReason) {
  const folder = await mkdtemp(path.join(tmpdir(), 'sixcast-node-keys-'))
  try {
    const file = (role) => path.join(folder, `${role}.json`)
    for (const [role, spec] of Object.entries(specs)) {
      await writeFile(file(role), JSON.stringify(spec), { mode: 0o600 })
    }
    const holder = peer('h2', 'protected-recv', channel, file('holder'), '1', '0', '20000')
    const outsider = peer('h3', 'protected-recv', channel, file('outsider'), '0', '1', '20000')
    assert.deepEqual(await holder.next(), { ready: true })
    assert.deepEqual(await outsider.next(), { ready: true })
    const sender = peer('h1', 'protected-send', channel, file('sender'), 'secret')
    assert.equal((await sender.next()).stats.messagesSent, 1)
    await succeeds(sender, 10_000)

    assert.equal((await holder.next()).text, 'secret')
    const { stats: holderStats } = await holder.next()
    assert.equal(holderStats.messagesReceived, 1)
    assert.deepEqual(Object.values(holderStats.drops), dropReasons().map(() => 0))
    await succeeds(holder, 20_000)

    const { stats: outsiderStats } = await outsider.next()
    assert.equal(outsiderStats.messagesReceived, 0)
    assert.ok(outsiderStats.drops[dropReason] >= 1, JSON.stringify(outsiderStats.drops))
    assert.deepEqual(Object.keys(outsiderStats.drops).sort(), dropReasons().sort())
    await succeeds(outsider, 20_000)
  } finally {
    await rm(folder, { recursive: true, force: true })
  }
}

worldTest('a sealed channel reaches only the receiver that holds its key', async () => {
  const key = ChannelKey.generate().toFileText()
  await protectedExchange(freshChannel('sealed'), { holder: { key }, outsider: {}, sender: { key } }, 'no_key')
})

worldTest('a token of a trusted issuer admits its signer', async () => {
  const channel = freshChannel('vouched')
  const [issuer, signer] = [SigningKey.generate(), SigningKey.generate()]
  const expiry = Math.floor(Date.now() / 1000) + 3600
  const token = Token.issue(issuer, signer.publicKey(), groupAddress(channel), expiry)
  const specs = {
    holder: { issuers: [issuer.publicKey().toFileText()] },
    outsider: { trust: [SigningKey.generate().publicKey().toFileText()] },
    sender: { sign: signer.toFileText(), token: token.toFileText() },
  }
  await protectedExchange(channel, specs, 'untrusted_signer')
})
