// Tests of the binding's `config` module: Context options as JavaScript callers write them.
// Nothing here opens a context successfully (that would bind a socket on the host).
import assert from 'node:assert/strict'
import { test } from 'node:test'

import * as sixcast from '../index.js'
import { sixcastError } from './support.mjs'

const invalidConfig = sixcastError('InvalidConfig')

const everyOption = {
  profile: 'embedded-rp',
  rp: '2001:db8:5c::5/64',
  scope: 'site',
  port: 7000,
  interfaces: ['eth0'],
  hopLimit: 8,
  loopback: false,
  maxDatagramSize: 1400,
  maxMessageSize: 65536,
  lingerMs: 0.5,
  packing: false,
  queueCapacity: 100,
  queueBytes: 1 << 16,
  recvBuffer: 1 << 20,
  sendRateMessages: 1000,
  sendRateBytes: 1 << 20,
  reliable: true,
  reassemblyTimeoutMs: 2000,
  reassemblyMemory: 1 << 20,
  stratum0: '[2001:db8::1]:6447',
  domain: 'example.org',
  dnsServer: '[2001:db8::53]:5353',
  probeTimeoutMs: 500,
  probeIntervalMs: 10000,
}

test('every option at once, no options, and null are valid', () => {
  sixcast.validateOptions(everyOption)
  sixcast.validateOptions()
  sixcast.validateOptions({})
  sixcast.validateOptions(null)
})

test('an unknown option is an error that lists the known ones', () => {
  assert.throws(() => sixcast.validateOptions({ hoplimit: 1 }), {
    ...invalidConfig,
    message: /unknown option "hoplimit".*hopLimit/,
  })
})

const wholeNumberOptions = {
  port: 65535,
  hopLimit: 255,
  maxDatagramSize: null,
  maxMessageSize: null,
  queueCapacity: null,
  queueBytes: null,
  recvBuffer: null,
  sendRateMessages: null,
  sendRateBytes: null,
  reassemblyMemory: null,
}

for (const [name, max] of Object.entries(wholeNumberOptions)) {
  test(`${name} must be a whole number in range`, () => {
    for (const bad of [1.5, -1, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 53]) {
      assert.throws(() => sixcast.validateOptions({ [name]: bad }), {
        ...invalidConfig,
        message: new RegExp(`^${name} must be a whole number`),
      })
    }
    if (max !== null) {
      assert.throws(() => sixcast.validateOptions({ [name]: max + 1 }), {
        ...invalidConfig,
        message: new RegExp(`from 0 to ${max}, not ${max + 1}`),
      })
    }
  })
}

for (const name of ['lingerMs', 'reassemblyTimeoutMs', 'probeTimeoutMs', 'probeIntervalMs']) {
  test(`${name} must be a finite, non-negative number of milliseconds`, () => {
    for (const bad of [-1, Number.NaN, Number.POSITIVE_INFINITY]) {
      assert.throws(() => sixcast.validateOptions({ [name]: bad }), invalidConfig)
    }
  })
}

test('a value of the wrong type is an InvalidConfig error naming the option', () => {
  assert.throws(() => sixcast.validateOptions({ port: '6446' }), { ...invalidConfig, message: /port/ })
  assert.throws(() => sixcast.validateOptions({ loopback: 1 }), { ...invalidConfig, message: /loopback/ })
  assert.throws(() => sixcast.validateOptions({ packing: 'no' }), { ...invalidConfig, message: /packing/ })
  assert.throws(() => sixcast.validateOptions({ reliable: 1 }), { ...invalidConfig, message: /reliable/ })
  assert.throws(() => sixcast.validateOptions({ interfaces: 'eth0' }), {
    ...invalidConfig,
    message: /interfaces/,
  })
})

test('the core checks what fits the types but not the protocol', () => {
  assert.throws(() => sixcast.validateOptions({ port: 0 }), invalidConfig)
  assert.throws(() => sixcast.validateOptions({ hopLimit: 0 }), invalidConfig)
  assert.throws(() => sixcast.validateOptions({ maxDatagramSize: 100 }), invalidConfig)
  assert.throws(() => sixcast.validateOptions({ reassemblyTimeoutMs: 0 }), invalidConfig)
  assert.throws(() => sixcast.validateOptions({ rp: '2001:db8:5c::5/64' }), invalidConfig)
  assert.throws(() => sixcast.validateOptions({ profile: 'embedded-rp' }), invalidConfig)
  assert.throws(() => sixcast.validateOptions({ scope: 'galaxy' }), invalidConfig)
})

test('new Context checks options the same way before it opens anything', () => {
  assert.throws(() => new sixcast.Context({ hopLimit: 0 }), invalidConfig)
  assert.throws(() => new sixcast.Context({ bogus: true }), invalidConfig)
  assert.throws(() => new sixcast.Context({ interfaces: ['no-such-if0'] }), sixcastError('UnknownInterface'))
})

test('stratum0 must be "[address]:port" text naming a unicast address', () => {
  for (const bad of [
    '2001:db8::1',
    '2001:db8::1:6447',
    '[2001:db8::1]',
    '[2001:db8::1]:65536',
    '192.0.2.1:6447',
    'stratum0.example:6447',
    '',
    '[ff1e::1]:6447',
    '[::]:6447',
    '[2001:db8::1]:0',
  ]) {
    assert.throws(() => sixcast.validateOptions({ stratum0: bad }), { ...invalidConfig, message: /stratum0/ }, bad)
  }
  assert.throws(() => sixcast.validateOptions({ stratum0: 6447 }), { ...invalidConfig, message: /stratum0/ })
  assert.throws(() => sixcast.validateOptions({ probeTimeoutMs: 0 }), { ...invalidConfig, message: /probe_timeout/ })
  assert.throws(() => new sixcast.Context({ stratum0: 'nowhere' }), { ...invalidConfig, message: /stratum0/ })
})

test('probeIntervalMs reaches the core, which wants it at least probeTimeoutMs', () => {
  // The core compares the two exactly, so a value that arrived altered would show here.
  sixcast.validateOptions({ probeTimeoutMs: 1500, probeIntervalMs: 1500 })
  sixcast.validateOptions({ probeTimeoutMs: 1500.5, probeIntervalMs: 1500.5 })
  sixcast.validateOptions({ probeIntervalMs: 2000 })
  assert.throws(() => sixcast.validateOptions({ probeIntervalMs: 1999 }), {
    ...invalidConfig,
    message: /probe_interval/,
  })
  assert.throws(() => sixcast.validateOptions({ probeTimeoutMs: 5000, probeIntervalMs: 1000 }), {
    ...invalidConfig,
    message: /probe_interval/,
  })
  assert.throws(() => new sixcast.Context({ probeTimeoutMs: 5000, probeIntervalMs: 1000 }), invalidConfig)
})

test('reliable reaches the core, which wants the sixcast header for it', () => {
  sixcast.validateOptions({ reliable: true })
  sixcast.validateOptions({ reliable: false, profile: 'librecast' })
  sixcast.validateOptions({ reliable: true, profile: 'ssm' })
  // Only the core knows that librecast datagrams carry no header: a dropped option would pass.
  assert.throws(() => sixcast.validateOptions({ reliable: true, profile: 'librecast' }), {
    ...invalidConfig,
    message: /reliable/,
  })
  assert.throws(() => new sixcast.Context({ reliable: true, profile: 'librecast' }), {
    ...invalidConfig,
    message: /reliable/,
  })
})

test('reachability() is null without a stratum0', () => {
  // Binds a UDP port on this host but sends nothing: no channel is joined or sent to.
  const context = new sixcast.Context()
  try {
    assert.equal(context.reachability(), null)
  } finally {
    context.close()
  }
})

test('domain and dnsServer reach the core, which checks them', () => {
  sixcast.validateOptions({ domain: 'example.org' })
  sixcast.validateOptions({ domain: 'example.org.', dnsServer: '2001:db8::53' })
  sixcast.validateOptions({ domain: 'example.org', dnsServer: '127.0.0.53:53' })
  for (const bad of ['', 'a..b', 'x'.repeat(64)]) {
    assert.throws(() => sixcast.validateOptions({ domain: bad }), { ...invalidConfig, message: /domain/ }, bad)
  }
  for (const bad of ['resolver.example', '[2001:db8::53]:99999', '[::]:53']) {
    assert.throws(
      () => sixcast.validateOptions({ domain: 'example.org', dnsServer: bad }),
      { ...invalidConfig, message: /dns_server/ },
      bad,
    )
  }
  assert.throws(() => sixcast.validateOptions({ dnsServer: '2001:db8::53' }), {
    ...invalidConfig,
    message: /dns_server.*set domain/,
  })
  assert.throws(() => sixcast.validateOptions({ domain: 53 }), { ...invalidConfig, message: /domain/ })
})

test('relayKeys are checked by the core', () => {
  const key = sixcast.SigningKey.fromSeed(new Uint8Array(32).fill(7)).publicKey()
  sixcast.validateOptions({ relayKeys: [key.toBytes()] })
  sixcast.validateOptions({ relayKeys: [] })
  // The all-zero encoding is a weak key; 31 bytes is no key at all.
  const weak = new Uint8Array(32)
  weak[0] = 1
  assert.throws(() => sixcast.validateOptions({ relayKeys: [key.toBytes(), weak] }), {
    ...invalidConfig,
    message: /relayKeys\[1\].*not a valid Ed25519 key/,
  })
  assert.throws(() => sixcast.validateOptions({ relayKeys: [new Uint8Array(31)] }), {
    ...invalidConfig,
    message: /relayKeys\[0\] is 31 bytes/,
  })
  assert.throws(() => sixcast.validateOptions({ relayKeys: 'key' }), invalidConfig)
})

test('relayIssuers are checked by the core', () => {
  const issuer = sixcast.SigningKey.fromSeed(new Uint8Array(32).fill(9)).publicKey()
  sixcast.validateOptions({ relayIssuers: [issuer.toBytes()] })
  const weak = new Uint8Array(32)
  weak[0] = 1
  assert.throws(() => sixcast.validateOptions({ relayIssuers: [weak] }), {
    ...invalidConfig,
    message: /relayIssuers\[0\].*not a valid Ed25519 key/,
  })
})
