// One sixcast node for the world tests, run inside a namespace host by test/world.test.mjs:
//   peer.mjs ROLE CHANNEL [ARGS..]
// It prints one JSON object per line (flushed at once: stdout is a pipe) and exits 0 when its
// role succeeded; it reports failures on stderr and exits 1.
import assert from 'node:assert/strict'
import { createHash, pbkdf2 } from 'node:crypto'
import { createSocket } from 'node:dgram'
import { readdirSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import path from 'node:path'
import { promisify } from 'node:util'

import {
  ChannelKey,
  Context,
  FileReceiver,
  MAX_MESSAGE_SIZE_LIMIT,
  PublicKey,
  SigningKey,
  Token,
  packMessages,
} from '../../index.js'

const [role, channelName, ...args] = process.argv.slice(2)
const print = (object) => process.stdout.write(`${JSON.stringify(object)}\n`)
const milliseconds = (since) => Number(process.hrtime.bigint() - since) / 1e6

/** What the world test compares: the payload in short or as size and digest, and metadata. */
function describe(message) {
  const { payload, ...metadata } = message
  return {
    ...metadata,
    size: payload.length,
    sha256: createHash('sha256').update(payload).digest('hex'),
    text: payload.length <= 64 ? payload.toString('utf8') : null,
  }
}

/**
 * Gives `channel` the keys of the JSON file `specFile`: key file texts under `key` (setKey),
 * `sign` (signWith), `token` (present), `trust` and `issuers` (lists).
 */
async function protect(channel, specFile) {
  const spec = JSON.parse(await readFile(specFile, 'utf8'))
  if (spec.key) channel.setKey(ChannelKey.fromFileText(spec.key))
  if (spec.sign) channel.signWith(SigningKey.fromFileText(spec.sign))
  if (spec.token) channel.present(Token.fromFileText(spec.token))
  for (const text of spec.trust ?? []) channel.trust(PublicKey.fromFileText(text))
  for (const text of spec.issuers ?? []) channel.trustIssuer(PublicKey.fromFileText(text))
}

const roles = {
  /**
   * `reachability STRATUM0`: opens a context whose Stratum 0 (the CHANNEL argument) does not
   * answer, and reports `reachability()` at once and once a probe completed or failed (10 s).
   */
  async reachability() {
    const context = new Context({ stratum0: channelName, probeTimeoutMs: 300 })
    print({ initial: context.reachability() })
    const deadline = Date.now() + 10_000
    let reachability = context.reachability()
    while (Date.now() < deadline && !reachability?.probe && !reachability?.lastError) {
      await new Promise((resolve) => setTimeout(resolve, 50))
      reachability = context.reachability()
    }
    print({ settled: reachability })
    // The failed attempt arrives as an event: the core is unreachable.
    let event = await context.nextEvent(10_000)
    while (event.kind !== 'path_changed') event = await context.nextEvent(10_000)
    const quiet = new Context()
    const none = quiet.tryEvent()
    const timedOut = await quiet.nextEvent(50).then(
      () => null,
      (err) => err.code,
    )
    quiet.close()
    print({ event, none, timedOut })
    context.close()
  },
  /**
   * `log STRATUM0`: opens a context whose Stratum 0 does not answer and waits (10 s at most)
   * until it records that it cannot reach the core; the library's log goes to standard error
   * when SIXCAST_LOG is set.
   */
  async log() {
    const context = new Context({ stratum0: channelName, probeTimeoutMs: 300 })
    const deadline = Date.now() + 10_000
    while (Date.now() < deadline && !context.reachability()?.lastError) {
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
    print({ lastError: context.reachability()?.lastError ?? null })
    context.close()
  },
  /** Sends each argument (`text:...`, `empty` or `mib`) and reports who sent them. */
  async send(...payloads) {
    const context = new Context()
    const channel = context.channel(channelName)
    for (const payload of payloads) {
      if (payload === 'empty') channel.send(Buffer.alloc(0))
      else if (payload === 'mib') channel.send(Buffer.alloc(1 << 20, 0x5a))
      else channel.send(payload.replace(/^text:/, ''))
    }
    channel.flush()
    print({ sender: context.nodeId, port: context.port, interfaces: context.interfaces })
    context.close()
  },

  /** `protected-send SPEC TEXT`: sends TEXT with the keys of the JSON file SPEC (see `protect`). */
  async 'protected-send'(specFile, text) {
    const context = new Context()
    const channel = context.channel(channelName)
    await protect(channel, specFile)
    channel.send(text)
    channel.flush()
    print({ stats: channel.stats() })
    context.close()
  },

  /**
   * `protected-recv SPEC COUNT DROPS TIMEOUT_MS`: receives with the keys of SPEC until COUNT
   * messages arrived and at least DROPS drops were counted, or TIMEOUT_MS passed; prints each
   * message and then the channel's stats.
   */
  async 'protected-recv'(specFile, count, drops, timeoutMs) {
    const context = new Context()
    const channel = context.channel(channelName)
    await protect(channel, specFile)
    channel.join()
    print({ ready: true })
    const deadline = Date.now() + Number(timeoutMs)
    const dropped = () => Object.values(channel.stats().drops).reduce((sum, n) => sum + n, 0)
    let received = 0
    while (Date.now() < deadline && (received < Number(count) || dropped() < Number(drops))) {
      try {
        print(describe(await channel.recv(100)))
        received += 1
      } catch (err) {
        if (err.kind !== 'Timeout') throw err
      }
    }
    print({ stats: channel.stats() })
    context.close()
  },

  /** Receives COUNT messages with recv(TIMEOUT_MS) and prints each. */
  async recv(count, timeoutMs) {
    const context = new Context()
    const channel = context.channel(channelName)
    channel.join()
    print({ ready: true })
    for (let i = 0; i < Number(count); i += 1) print(describe(await channel.recv(Number(timeoutMs))))
    print({ stats: channel.stats() })
    context.close()
  },

  /** Iterates with for await; closes the context after COUNT messages and expects the loop to end. */
  async iterate(count) {
    const context = new Context()
    const channel = context.channel(channelName)
    channel.join()
    print({ ready: true })
    let received = 0
    for await (const message of channel) {
      print(describe(message))
      received += 1
      if (received === Number(count)) setTimeout(() => context.close(), 50)
    }
    print({ ended: true, received })
  },

  /** Subscribes; after COUNT messages stops and checks that no callback follows. Does not close
   * the context: stopping alone must let the process exit. */
  async subscribe(count) {
    const context = new Context()
    const channel = context.channel(channelName)
    channel.join()
    let received = 0
    let stopped = false
    const subscription = channel.subscribe((message) => {
      assert.equal(stopped, false, 'a callback after stop()')
      received += 1
      print(describe(message))
      if (received === Number(count)) {
        subscription.stop()
        stopped = true
        assert.equal(subscription.active, false)
        print({ stopped: true })
      }
    })
    assert.equal(subscription.active, true)
    print({ ready: true })
  },

  /** Subscribes while another context sends COUNT messages, five to a datagram, 1 ms apart;
   * stops after a third of them, WHEN `in-callback` or on the next turn of the event loop
   * (`immediate`), and receives the rest with recv(). Every message must arrive exactly once. */
  async 'stop-while-arriving'(count, when) {
    const total = Number(count)
    const sender = new Context()
    const receiver = new Context()
    const outbox = sender.channel(channelName)
    const inbox = receiver.channel(channelName)
    inbox.join()
    const received = []
    let stopped = false
    const sending = (async () => {
      for (let i = 0; i < total; i += 1) {
        outbox.send(String(i))
        if (i % 5 === 4) {
          outbox.flush()
          await new Promise((resolve) => setTimeout(resolve, 1))
        }
      }
      outbox.flush()
    })()
    await new Promise((resolve) => {
      const stop = () => {
        subscription.stop()
        stopped = true
        resolve()
      }
      const subscription = inbox.subscribe((message) => {
        assert.equal(stopped, false, 'a callback after stop()')
        received.push(Number(message.payload))
        if (received.length !== Math.floor(total / 3)) return
        if (when === 'in-callback') stop()
        else setImmediate(stop)
      })
    })
    const viaSubscription = received.length
    await sending
    for (;;) {
      try {
        received.push(Number((await inbox.recv(1000)).payload))
      } catch (err) {
        if (err.code !== 'ERR_SIXCAST_TIMEOUT') throw err
        break
      }
    }
    received.sort((a, b) => a - b)
    assert.deepEqual(received, Array.from({ length: total }, (_, i) => i))
    assert.equal(inbox.stats().messagesReceived, total)
    sender.close()
    receiver.close()
    print({ viaSubscription, viaRecv: total - viaSubscription })
  },

  /** Leaves a recv, an iteration and a subscription pending, then closes the context: each must
   * end, and the process must exit by itself. */
  async 'exit-after-close'() {
    const context = new Context()
    const channel = context.channel(channelName)
    channel.join()
    const pending = channel.recv()
    const iteration = (async () => {
      for await (const message of channel) throw new Error(`unexpected ${message.payload}`)
    })()
    const subscription = channel.subscribe(() => assert.fail('unexpected message'))
    setTimeout(() => {
      context.close()
      print({ closed: true })
    }, 200)
    await assert.rejects(pending, { code: 'ERR_SIXCAST_CLOSED', kind: 'Closed' })
    await iteration
    assert.equal(subscription.active, false, 'the subscription ended with the context')
    print({ ended: true })
  },

  /** recv with a timeout rejects with TIMEOUT, and the event loop runs meanwhile. */
  async timeout() {
    const context = new Context()
    const channel = context.channel(channelName)
    channel.join()
    let ticks = 0
    const ticker = setInterval(() => (ticks += 1), 10)
    const started = process.hrtime.bigint()
    await assert.rejects(channel.recv(300), { code: 'ERR_SIXCAST_TIMEOUT', kind: 'Timeout' })
    const waited = milliseconds(started)
    clearInterval(ticker)
    assert.ok(waited >= 290, `rejected after ${waited} ms`)
    assert.ok(ticks >= 5, `only ${ticks} timer ticks while receiving: the event loop was blocked`)
    assert.equal(channel.tryRecv(), null)
    await assert.rejects(channel.recv(-1), { code: 'ERR_SIXCAST_INVALID_CONFIG' })
    context.close()
    print({ waited, ticks })
  },

  /**
   * A context that sends 10 messages a second: `trySend` sends the first at once and refuses
   * the second, `send(data, 50)` refuses too, and `send(data, 500)` waits for the turn. A
   * second context receives only what was sent.
   */
  async paced() {
    const receiver = new Context()
    const inbox = receiver.channel(channelName)
    inbox.join()
    const paced = new Context({ sendRateMessages: 10 })
    const outbox = paced.channel(channelName)
    const timeout = { code: 'ERR_SIXCAST_TIMEOUT', kind: 'Timeout' }
    outbox.trySend('first')
    assert.throws(() => outbox.trySend('refused'), timeout)
    assert.throws(() => outbox.send('also refused', 50), timeout)
    assert.throws(() => outbox.send('bad timeout', -1), { code: 'ERR_SIXCAST_INVALID_CONFIG' })
    const started = process.hrtime.bigint()
    outbox.send(Buffer.from('second'), 500)
    const waited = milliseconds(started)
    // The turn comes 100 ms after the first message, less the pacer's 10 ms burst.
    assert.ok(waited >= 80 && waited < 400, `send(data, 500) returned after ${waited} ms`)
    outbox.flush()
    assert.equal(outbox.stats().messagesSent, 2)
    const received = [(await inbox.recv(2000)).payload.toString(), (await inbox.recv(2000)).payload.toString()]
    assert.deepEqual(received, ['first', 'second'])
    // The refused messages were never queued, so they never left.
    await assert.rejects(inbox.recv(300), timeout)
    paced.close()
    receiver.close()
    print({ waited, received })
  },

  /** Every call after close fails with CLOSED. */
  async closed() {
    const context = new Context()
    const channel = context.channel(channelName)
    channel.join()
    context.close()
    context.close()
    assert.equal(context.closed, true)
    const closed = { code: 'ERR_SIXCAST_CLOSED', kind: 'Closed' }
    assert.throws(() => context.channel('another'), closed)
    assert.throws(() => channel.join(), closed)
    assert.throws(() => channel.leave(), closed)
    assert.throws(() => channel.send('late'), closed)
    assert.throws(() => channel.send('late', 100), closed)
    assert.throws(() => channel.trySend('late'), closed)
    assert.throws(() => channel.flush(), closed)
    assert.throws(() => channel.tryRecv(), closed)
    await assert.rejects(channel.recv(), closed)
    await assert.rejects(channel.recv(1000), closed)
    print({ closed: true })
  },

  /** Messages above maxMessageSize, and configurations above the protocol limit, are refused. */
  async 'too-large'() {
    const context = new Context({ maxMessageSize: 1000 })
    const channel = context.channel(channelName)
    const tooLarge = { code: 'ERR_SIXCAST_MESSAGE_TOO_LARGE', kind: 'MessageTooLarge' }
    channel.send(Buffer.alloc(1000))
    assert.throws(() => channel.send(Buffer.alloc(1001)), tooLarge)
    assert.throws(() => new Context({ maxMessageSize: MAX_MESSAGE_SIZE_LIMIT + 1 }), {
      code: 'ERR_SIXCAST_INVALID_CONFIG',
    })
    context.close()
    const defaults = new Context()
    assert.throws(() => defaults.channel(channelName).send(Buffer.alloc((1 << 20) + 1)), tooLarge)
    defaults.close()
    print({ refused: true })
  },

  /** Many pending receives must leave libuv's thread pool (fs, crypto, dns) free. */
  async 'thread-pool'() {
    const context = new Context()
    const channels = Array.from({ length: 16 }, (_, i) => context.channel(`${channelName}-${i}`))
    const pending = channels.map((channel) => channel.recv(3000))
    const started = process.hrtime.bigint()
    await Promise.all([
      ...Array.from({ length: 8 }, () => promisify(pbkdf2)('secret', 'salt', 1000, 32, 'sha256')),
      readFile(new URL(import.meta.url)),
    ])
    const poolWork = milliseconds(started)
    assert.ok(poolWork < 1500, `thread-pool work took ${poolWork} ms behind 16 pending receives`)
    context.close()
    const results = await Promise.allSettled(pending)
    assert.ok(results.every((result) => result.reason?.code === 'ERR_SIXCAST_CLOSED'))
    print({ poolWork })
  },

  /**
   * 1,000 pending receives on 1,000 channels start no thread (counted in /proc), and a message
   * sent to one of them resolves its promise within milliseconds.
   */
  async 'many-pending'() {
    const threads = () => readdirSync('/proc/self/task').length
    const receiver = new Context()
    const sender = new Context()
    // A first receive starts napi-rs's runtime, whose threads are not per receive.
    await receiver.channel(`${channelName}-warm`).recv(1).catch(() => {})
    const before = threads()
    const channels = Array.from({ length: 1000 }, (_, i) => receiver.channel(`${channelName}-${i}`))
    const targets = [0, 333, 500, 999, 7]
    for (const index of targets) channels[index].join()
    const pending = channels.map((channel) => channel.recv(30_000))
    await new Promise((resolve) => setTimeout(resolve, 200))
    const waiting = threads()
    const latencies = []
    for (const index of targets) {
      const outbox = sender.channel(`${channelName}-${index}`)
      const sent = process.hrtime.bigint()
      outbox.send(`to ${index}`)
      outbox.flush()
      const message = await pending[index]
      latencies.push(milliseconds(sent))
      assert.equal(message.payload.toString(), `to ${index}`)
    }
    assert.equal(waiting, before, `1000 pending receives: ${waiting - before} more threads`)
    assert.ok(Math.max(...latencies) < 500, `latencies ${latencies}`)
    receiver.close()
    sender.close()
    await Promise.allSettled(pending)
    print({ before, waiting, latencies })
  },

  /**
   * `send-file PATH NAME`: sends the file at PATH as NAME from a reliable context, whose close
   * waits for the receivers' last repairs; prints what was sent and by whom.
   */
  async 'send-file'(file, name) {
    const context = new Context({ reliable: true })
    const sent = await context.channel(channelName).sendFile(file, { name })
    const sender = context.nodeId
    context.close()
    print({ sent, sender })
  },

  /** `recv-file DIR TIMEOUT_MS`: receives one file into DIR; prints how it ended and the stats. */
  async 'recv-file'(folder, timeoutMs) {
    const receiver = new FileReceiver(folder)
    const context = new Context()
    const channel = context.channel(channelName)
    channel.join()
    print({ ready: true })
    const outcome = await receiver.recv(channel, Number(timeoutMs))
    print({ outcome, stats: receiver.stats() })
    context.close()
  },

  /**
   * `file-errors DIR` (DIR holds a file `payload`): what sendFile() and FileReceiver.recv()
   * reject with for bad arguments and for silence; none of it sends anything, and a pending
   * receive blocks neither the event loop nor stats().
   */
  async 'file-errors'(folder) {
    const context = new Context({ reliable: true })
    const channel = context.channel(channelName)
    channel.join()
    const payload = path.join(folder, 'payload')
    const invalidConfig = { code: 'ERR_SIXCAST_INVALID_CONFIG', kind: 'InvalidConfig' }
    await assert.rejects(channel.sendFile(payload, { name: '../x' }), (err) => {
      assert.equal(err.code, invalidConfig.code)
      assert.match(err.message, /"\.\.\/x"/)
      return true
    })
    await assert.rejects(channel.sendFile(payload, { name: '.x' }), invalidConfig)
    await assert.rejects(channel.sendFile(payload, { passes: 0 }), invalidConfig)
    await assert.rejects(channel.sendFile(payload, { passes: 1.5 }), invalidConfig)
    await assert.rejects(channel.sendFile(payload, { pases: 2 }), invalidConfig)
    const io = { code: 'ERR_SIXCAST_IO', kind: 'Io' }
    await assert.rejects(channel.sendFile(path.join(folder, 'missing')), io)
    await assert.rejects(channel.sendFile(folder), io)

    const receiver = new FileReceiver(folder)
    await assert.rejects(receiver.recv(channel, -1), invalidConfig)
    let ticks = 0
    const ticker = setInterval(() => (ticks += 1), 10)
    const started = process.hrtime.bigint()
    const pending = receiver.recv(channel, 300)
    assert.equal(receiver.stats().frames, 0, 'stats() while a receive is pending')
    await assert.rejects(pending, { code: 'ERR_SIXCAST_TIMEOUT', kind: 'Timeout' })
    const waited = milliseconds(started)
    clearInterval(ticker)
    assert.ok(waited >= 290 && waited < 2000, `rejected after ${waited} ms`)
    assert.ok(ticks >= 5, `only ${ticks} timer ticks while receiving: the event loop was blocked`)
    assert.equal(receiver.stats().frames, 0)
    assert.equal(channel.stats().messagesSent, 0, 'a failed sendFile() sent something')
    context.close()
    await assert.rejects(receiver.recv(channel, 1000), { code: 'ERR_SIXCAST_CLOSED', kind: 'Closed' })
    await assert.rejects(channel.sendFile(payload), { code: 'ERR_SIXCAST_CLOSED', kind: 'Closed' })
    print({ waited, ticks })
  },

  /**
   * `sender-losses`: sends messages 0, 1 and 4 of one made-up sender and 0, 1 and 2 of
   * another from a plain UDP socket to a channel of this host (through multicast loopback),
   * and reports the channel's losses per sender before and after.
   */
  async 'sender-losses'() {
    const context = new Context()
    const channel = context.channel(channelName)
    channel.join()
    const before = channel.senderLosses()
    const socket = createSocket({ type: 'udp6' })
    await new Promise((resolve) => socket.bind(0, '::', resolve))
    socket.setMulticastInterface(`::%${context.interfaces[0]}`)
    socket.setMulticastLoopback(true)
    const sent = [
      ['0000000000000042', 0],
      ['0000000000000042', 1],
      ['0000000000000042', 4],
      ['0000000000000007', 0],
      ['0000000000000007', 1],
      ['0000000000000007', 2],
    ]
    for (const [sender, seq] of sent) {
      for (const datagram of packMessages(sender, seq, 1232, ['numbered'])) {
        await new Promise((resolve, reject) =>
          socket.send(datagram, context.port, channel.group, (err) => (err ? reject(err) : resolve())),
        )
      }
    }
    socket.close()
    const received = []
    for (let i = 0; i < sent.length; i += 1) {
      const { sender, seq } = await channel.recv(5000)
      received.push([sender, seq])
    }
    print({ before, received, lost: channel.stats().lost, losses: channel.senderLosses() })
    context.close()
  },

  /** Two contexts on one host: the channel API and the counters, through multicast loopback. */
  async local() {
    const sender = new Context({ lingerMs: 0 })
    const receiver = new Context()
    const outgoing = sender.channel(channelName)
    const incoming = receiver.channel(Buffer.from(channelName))
    assert.equal(incoming.name.toString(), channelName)
    assert.equal(incoming.group, outgoing.group)
    assert.match(incoming.relayedGroup, /^ff1e:1/)
    assert.match(sender.nodeId, /^[0-9a-f]{16}$/)
    assert.notEqual(sender.nodeId, receiver.nodeId)
    assert.equal(receiver.channel(channelName).group, incoming.group, 'same name, same channel')
    incoming.join()
    incoming.join()
    outgoing.send('one')
    outgoing.send(new Uint8Array([0x74, 0x77, 0x6f]))
    const first = await incoming.recv(2000)
    const second = await incoming.recv(2000)
    assert.deepEqual([first.payload.toString(), second.payload.toString()], ['one', 'two'])
    assert.deepEqual([first.seq, second.seq], [0, 1])
    assert.equal(first.sender, sender.nodeId)
    const stats = incoming.stats()
    assert.equal(stats.messagesReceived, 2)
    assert.equal(stats.bytesReceived, 6)
    assert.equal(outgoing.stats().messagesSent, 2)
    assert.ok(receiver.stats().datagramsReceived >= 2)
    incoming.leave()
    assert.throws(() => incoming.joinSource('not-an-address'), { code: 'ERR_SIXCAST_INVALID_ADDRESS' })
    sender.close()
    receiver.close()
    print({ local: true })
  },
}

const run = roles[role]
if (!run || !channelName) {
  process.stderr.write(`usage: peer.mjs <${Object.keys(roles).join('|')}> CHANNEL [ARGS..]\n`)
  process.exit(64)
}
try {
  await run(...args)
} catch (err) {
  process.stderr.write(`peer ${role}: ${err.stack ?? err}\n`)
  process.exitCode = 1
}
