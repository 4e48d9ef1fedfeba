// Tests of the binding's `wire` module (core/proto/src/wire): every vector of wire.json.
import assert from 'node:assert/strict'
import { test } from 'node:test'

import * as sixcast from '../index.js'
import { loadVectors, sixcastError } from './support.mjs'

const vectors = loadVectors('wire')
const hex = (bytes) => Buffer.from(bytes).toString('hex')

test('constants match the vectors', () => {
  const { constants } = vectors
  assert.equal(sixcast.DEFAULT_DATAGRAM_SIZE, constants.default_datagram_size)
  assert.equal(sixcast.DEFAULT_MAX_MESSAGE_SIZE, constants.default_max_message_size)
  assert.equal(sixcast.FRAGMENT_HEADER_LEN, constants.fragment_header_len)
  assert.equal(sixcast.HEADER_LEN, constants.header_len)
  assert.equal(sixcast.MAX_DATAGRAM_SIZE, constants.max_datagram_size)
  assert.equal(sixcast.MAX_MESSAGE_SIZE_LIMIT, constants.max_message_size_limit)
  assert.equal(sixcast.MIN_DATAGRAM_SIZE, constants.min_datagram_size)
  assert.equal(sixcast.VERSION, constants.version)
  const [datagram] = sixcast.packMessages('0000000000000001', 0, 1232, ['x'])
  assert.equal(hex(datagram.subarray(0, 2)), constants.magic)
})

/** A decoded datagram with its bytes as hex, the form the vectors use. */
function asVector(decoded) {
  if (decoded.type === 'messages') {
    return {
      type: decoded.type,
      sender: decoded.sender,
      first_seq: decoded.firstSeq,
      messages: decoded.messages.map(({ seq, payload }) => ({ seq, payload: hex(payload) })),
    }
  }
  return {
    type: decoded.type,
    sender: decoded.sender,
    seq: decoded.seq,
    total_len: decoded.totalLen,
    offset: decoded.offset,
    index: decoded.index,
    count: decoded.count,
    chunk: hex(decoded.chunk),
  }
}

for (const vector of vectors.decode) {
  test(`decode ${vector.name}: ${vector.why ?? vector.decoded.type}`, () => {
    const datagram = Buffer.from(vector.datagram, 'hex')
    if (vector.error) {
      assert.throws(() => sixcast.decodeDatagram(datagram), {
        ...sixcastError(vector.error),
        reason: vector.reason,
      })
    } else {
      assert.deepEqual(asVector(sixcast.decodeDatagram(datagram)), vector.decoded)
    }
  })
}

/** The messages a receiver gets back from `datagrams`: batches unpacked, fragments joined. */
function unpack(datagrams) {
  const messages = []
  const partial = new Map()
  for (const datagram of datagrams) {
    const decoded = sixcast.decodeDatagram(datagram)
    if (decoded.type === 'messages') {
      messages.push(...decoded.messages)
      continue
    }
    const whole = partial.get(decoded.seq) ?? { buffer: Buffer.alloc(decoded.totalLen), left: decoded.count }
    decoded.chunk.copy(whole.buffer, decoded.offset)
    whole.left -= 1
    partial.set(decoded.seq, whole)
    if (whole.left === 0) messages.push({ seq: decoded.seq, payload: whole.buffer })
  }
  return messages
}

for (const vector of vectors.encode) {
  test(`encode ${vector.name}`, () => {
    const messages = vector.messages.map((message) => Buffer.from(message, 'hex'))
    const datagrams = sixcast.packMessages(vector.sender, vector.first_seq, vector.max_datagram, messages)
    assert.deepEqual(datagrams.map(hex), vector.datagrams)
    assert.deepEqual(
      unpack(datagrams).map(({ seq, payload }) => ({ seq, payload: hex(payload) })),
      vector.messages.map((payload, index) => ({ seq: vector.first_seq + index, payload })),
    )
  })
}

test('packMessages takes strings as UTF-8 and Uint8Arrays as bytes', () => {
  const fromText = sixcast.packMessages('0000000000000001', 0, 1232, ['grüße'])
  const fromBytes = sixcast.packMessages('0000000000000001', 0, 1232, [new TextEncoder().encode('grüße')])
  assert.deepEqual(fromText, fromBytes)
})

test('packMessages checks its numbers and the sender', () => {
  const invalid = sixcastError('InvalidConfig')
  assert.throws(() => sixcast.packMessages('1', 0, 1232, []), invalid)
  assert.throws(() => sixcast.packMessages('0000000000000001', -1, 1232, []), invalid)
  assert.throws(() => sixcast.packMessages('0000000000000001', 0.5, 1232, []), invalid)
  assert.throws(() => sixcast.packMessages('0000000000000001', 0, 1232.5, []), invalid)
  assert.throws(() => sixcast.packMessages('0000000000000001', 2 ** 53, 1232, []), invalid)
  assert.deepEqual(sixcast.packMessages('0000000000000001', 2 ** 53 - 1, 1232, []), [])
})
