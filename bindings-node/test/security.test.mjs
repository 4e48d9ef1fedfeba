// Tests of the binding's `crypto` module (core/proto/src/crypto): every vector of security.json (key
// files, tokens, sealing, signing, opening), key file round trips and their errors.
import assert from 'node:assert/strict'
import { test } from 'node:test'

import * as sixcast from '../index.js'
import { loadVectors, sixcastError } from './support.mjs'

const vectors = loadVectors('security')
const hex = (bytes) => Buffer.from(bytes).toString('hex')
const readers = {
  channel: (text) => sixcast.ChannelKey.fromFileText(text),
  signing: (text) => sixcast.SigningKey.fromFileText(text),
  public: (text) => sixcast.PublicKey.fromFileText(text),
  token: (text) => sixcast.Token.fromFileText(text),
}
const signingKeys = vectors.keys
  .filter(({ kind }) => kind === 'signing')
  .map(({ file }) => sixcast.SigningKey.fromFileText(file))

test('constants match the vectors', () => {
  const { constants } = vectors
  assert.equal(sixcast.FINGERPRINT_LEN, constants.fingerprint_len)
  assert.equal(sixcast.FLAG_SEALED, constants.flag_sealed)
  assert.equal(sixcast.FLAG_SIGNED, constants.flag_signed)
  assert.equal(sixcast.FLAG_TOKEN, constants.flag_token)
  assert.equal(sixcast.FLAG_COVERED, constants.flag_covered)
  assert.equal(sixcast.KEY_ID_LEN, constants.key_id_len)
  assert.equal(sixcast.SEAL_KEY_CONTEXT, constants.seal_key_context)
  assert.equal(sixcast.SEAL_OVERHEAD, constants.seal_overhead)
  assert.equal(hex(sixcast.signatureDomain()), constants.signature_domain)
  assert.equal(sixcast.SIGNATURE_LEN, constants.signature_len)
  assert.equal(sixcast.SIGNATURE_OVERHEAD, constants.signature_overhead)
  assert.equal(sixcast.TAG_LEN, constants.tag_len)
  assert.equal(hex(sixcast.tokenDomain()), constants.token_domain)
  assert.equal(sixcast.TOKEN_LEN, constants.token_len)
})

for (const entry of vectors.keys) {
  test(`key file ${entry.name}`, () => {
    const key = readers[entry.kind](entry.file)
    assert.equal(key.toFileText(), entry.file)
    if (entry.kind === 'channel') {
      assert.equal(key.id, Number.parseInt(entry.id, 16))
      assert.ok(sixcast.ChannelKey.fromBytes(key.id, Buffer.from(entry.secret, 'hex')).equals(key))
    } else if (entry.kind === 'signing') {
      assert.equal(hex(key.publicKey().toBytes()), entry.public)
      assert.equal(sixcast.SigningKey.fromSeed(Buffer.from(entry.seed, 'hex')).toFileText(), entry.file)
    } else {
      assert.equal(key.fingerprint, entry.fingerprint)
      assert.ok(sixcast.PublicKey.fromBytes(key.toBytes()).equals(key))
    }
  })
}

for (const entry of vectors.tokens) {
  test(`token file until ${entry.not_after}`, () => {
    const token = sixcast.Token.fromFileText(entry.file)
    assert.equal(token.toFileText(), entry.file)
    assert.equal(hex(token.subject.toBytes()), entry.subject)
    assert.equal(token.group, entry.group)
    assert.equal(token.notAfter, entry.not_after)
    assert.equal(token.issuer, entry.issuer)
    assert.ok(sixcast.Token.fromBytes(token.toBytes()).equals(token))
    const [issuer] = signingKeys.filter((key) => key.publicKey().fingerprint === entry.issuer)
    assert.ok(sixcast.Token.issue(issuer, token.subject, entry.group, entry.not_after).equals(token))
  })
}

for (const vector of vectors.invalid_key_files) {
  test(`invalid ${vector.kind} key file: ${vector.name}`, () => {
    assert.throws(() => readers[vector.kind](vector.text), sixcastError(vector.error))
  })
}

const channelKeys = (texts) => texts.map((text) => sixcast.ChannelKey.fromFileText(text))
const publicKeys = (texts) => texts.map((text) => sixcast.PublicKey.fromFileText(text))
const openVector = (vector) =>
  sixcast.openDatagram(
    vector.group,
    Buffer.from(vector.datagram, 'hex'),
    channelKeys(vector.keys),
    publicKeys(vector.trusted),
    publicKeys(vector.issuers),
    vector.now,
  )

for (const vector of vectors.seal) {
  test(`seal ${vector.name}`, () => {
    const channelKey = vector.channel_key && sixcast.ChannelKey.fromFileText(vector.channel_key)
    const signingKey = vector.signing_key && sixcast.SigningKey.fromFileText(vector.signing_key)
    const token = vector.token && sixcast.Token.fromFileText(vector.token)
    const plain = Buffer.from(vector.plain, 'hex')
    const sealed = sixcast.sealDatagram(vector.group, plain, channelKey, signingKey, token)
    assert.equal(hex(sealed), vector.protected)
    const opened = sixcast.openDatagram(
      vector.group,
      sealed,
      channelKey ? [channelKey] : [],
      signingKey ? [signingKey.publicKey()] : [],
      [],
      token ? token.notAfter : undefined,
    )
    assert.deepEqual(opened, { plain })
  })
}

for (const vector of vectors.open) {
  test(`open ${vector.name}: ${vector.why}`, () => {
    if (vector.plain !== undefined) {
      const opened = openVector(vector)
      assert.deepEqual(opened, { plain: Buffer.from(vector.plain, 'hex') })
      sixcast.decodeDatagram(opened.plain)
    } else if (vector.kind === 'malformed') {
      assert.throws(() => openVector(vector), { ...sixcastError('Malformed'), reason: vector.reason })
    } else {
      assert.equal(vector.kind, 'dropped')
      assert.deepEqual(openVector(vector), { dropped: vector.reason })
      assert.ok(sixcast.dropReasons().includes(vector.reason))
    }
  })
}

test('generated keys round trip through their files', () => {
  const channelKey = sixcast.ChannelKey.generate()
  assert.ok(sixcast.ChannelKey.fromFileText(channelKey.toFileText()).equals(channelKey))
  assert.ok(!channelKey.equals(sixcast.ChannelKey.generate()))
  const signingKey = sixcast.SigningKey.generate()
  const again = sixcast.SigningKey.fromFileText(signingKey.toFileText())
  assert.ok(again.publicKey().equals(signingKey.publicKey()))
  const publicKey = signingKey.publicKey()
  assert.ok(sixcast.PublicKey.fromFileText(publicKey.toFileText()).equals(publicKey))
  assert.match(publicKey.fingerprint, /^[0-9a-f]{16}$/)
})

test('key bytes of the wrong length are an invalid config', () => {
  assert.throws(() => sixcast.ChannelKey.fromBytes(1, Buffer.alloc(31)), {
    ...sixcastError('InvalidConfig'),
    message: 'secret must be 32 bytes, not 31',
  })
  assert.throws(() => sixcast.SigningKey.fromSeed(Buffer.alloc(0)), sixcastError('InvalidConfig'))
  assert.throws(() => sixcast.PublicKey.fromBytes(Buffer.alloc(33)), sixcastError('InvalidConfig'))
})

test('sealing a datagram that is not plain is malformed; a bad group an invalid address', () => {
  const key = sixcast.ChannelKey.generate()
  const [plain] = sixcast.packMessages('0123456789abcdef', 0, 1280, ['hello'])
  const sealed = sixcast.sealDatagram('ff1e::1', plain, key)
  assert.throws(() => sixcast.sealDatagram('ff1e::1', sealed, key), sixcastError('Malformed'))
  assert.throws(() => sixcast.sealDatagram('not an address', plain, key), sixcastError('InvalidAddress'))
})

test('stats have every counter, the reliable ones included', () => {
  // Binds a UDP port on this host but sends nothing: no channel is joined or sent to.
  const context = new sixcast.Context({ reliable: true })
  try {
    const counters = [
      'messagesSent',
      'bytesSent',
      'datagramsSent',
      'messagesReceived',
      'bytesReceived',
      'datagramsReceived',
      'duplicates',
      'malformed',
      'ownDropped',
      'queueOverflow',
      'lost',
      'reassemblyDropped',
      'unknownGroup',
      'nacksSent',
      'nacksReceived',
      'repairsSent',
      'repairBytesSent',
      'repairsReceived',
      'packetsRecovered',
      'packetsLost',
    ]
    for (const stats of [context.channel('quiet').stats(), context.stats()]) {
      assert.deepEqual(Object.keys(stats).sort(), [...counters, 'drops'].sort())
      for (const name of counters) {
        assert.equal(stats[name], 0, name)
      }
    }
  } finally {
    context.close()
  }
})

test('channels take keys and count drops by reason', () => {
  // Binds a UDP port on this host but sends nothing: no channel is joined or sent to.
  const context = new sixcast.Context()
  try {
    const channel = context.channel('quiet')
    const { drops } = channel.stats()
    assert.deepEqual(Object.keys(drops).sort(), sixcast.dropReasons().sort())
    assert.ok(Object.values(drops).every((count) => count === 0))
    channel.setKey(sixcast.ChannelKey.generate())
    channel.addKey(sixcast.ChannelKey.fromBytes(7, Buffer.alloc(32)))
    assert.equal(channel.removeKey(7), true)
    assert.equal(channel.removeKey(7), false)
    const signingKey = sixcast.SigningKey.generate()
    const issuer = sixcast.SigningKey.generate()
    const token = sixcast.Token.issue(issuer, signingKey.publicKey(), channel.group, 2 ** 40)
    assert.throws(() => channel.present(token), sixcastError('InvalidConfig'))
    channel.signWith(signingKey)
    channel.trust(signingKey.publicKey())
    channel.present(token)
    channel.trustIssuer(issuer.publicKey())
    const elsewhere = sixcast.Token.issue(issuer, signingKey.publicKey(), 'ff1e::1', 2 ** 40)
    assert.throws(() => channel.present(elsewhere), sixcastError('InvalidConfig'))
    assert.throws(
      () => sixcast.Token.issue(issuer, signingKey.publicKey(), 'ff1e::1', 0.5),
      sixcastError('InvalidConfig'),
    )
  } finally {
    context.close()
  }
})
