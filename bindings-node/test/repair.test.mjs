// Tests of the codec of reliable channels' datagrams (core/proto/src/wire/repair.rs): every vector of
// repair.json.
import assert from 'node:assert/strict'
import { test } from 'node:test'

import * as sixcast from '../index.js'
import { loadVectors, sixcastError } from './support.mjs'

const vectors = loadVectors('repair')
const hex = (bytes) => Buffer.from(bytes).toString('hex')

/** A decoded datagram in the form of the vectors' `decoded` objects: snake_case, bytes as hex. */
function asVector(decoded) {
  switch (decoded.type) {
    case 'sequenced':
      return { type: decoded.type, sender: decoded.sender, packet: decoded.packet, inner: hex(decoded.inner) }
    case 'parity':
      return {
        type: decoded.type,
        sender: decoded.sender,
        block_start: decoded.blockStart,
        block_len: decoded.blockLen,
        index: decoded.index,
        symbol: hex(decoded.symbol),
      }
    case 'nack':
      return {
        type: decoded.type,
        from: decoded.from,
        target: decoded.target,
        heard: decoded.heard,
        ranges: decoded.ranges,
      }
    default:
      return {
        type: decoded.type,
        from: decoded.from,
        target: decoded.target,
        group: decoded.group,
        position: decoded.position,
      }
  }
}

test('the vectors have every type and some invalid cases', () => {
  const types = new Set(vectors.decode.filter((vector) => vector.decoded).map((vector) => vector.decoded.type))
  assert.deepEqual([...types].sort(), ['nack', 'parity', 'sequenced', 'status'])
  assert.ok(vectors.decode.some((vector) => vector.error))
})

for (const vector of vectors.decode) {
  test(`decode ${vector.name}: ${vector.why}`, () => {
    const datagram = Buffer.from(vector.datagram, 'hex')
    if (vector.error) {
      assert.throws(() => sixcast.decodeRepair(datagram), {
        ...sixcastError(vector.error),
        reason: vector.reason,
      })
    } else {
      assert.deepEqual(asVector(sixcast.decodeRepair(datagram)), vector.decoded)
    }
  })
}

for (const vector of vectors.parity) {
  test(`parity ${vector.name}: a sender's parity decodes as its block`, () => {
    // A symbol is as long as the longest packet plus its 2-byte length, rounded up to even.
    const longest = Math.max(...vector.packets.map((packet) => packet.length / 2))
    const symbolLen = Math.ceil((longest + 2) / 2) * 2
    assert.ok(vector.parity.length > 0)
    vector.parity.forEach((datagram, index) => {
      const parity = sixcast.decodeRepair(Buffer.from(datagram, 'hex'))
      assert.equal(parity.type, 'parity')
      assert.equal(parity.sender, vector.sender)
      assert.equal(parity.blockStart, 0)
      assert.equal(parity.blockLen, vector.block_len)
      assert.equal(parity.index, index)
      assert.equal(parity.symbol.length, symbolLen)
    })
  })
}

test('decodeRepair takes any Uint8Array', () => {
  const vector = vectors.decode.find((candidate) => candidate.decoded)
  const datagram = Buffer.from(vector.datagram, 'hex')
  assert.deepEqual(asVector(sixcast.decodeRepair(new Uint8Array(datagram))), asVector(sixcast.decodeRepair(datagram)))
})

test('datagrams of the other layer are malformed here', () => {
  const [message] = sixcast.packMessages('0000000000000001', 0, 1232, ['x'])
  assert.throws(() => sixcast.decodeRepair(message), { ...sixcastError('Malformed'), reason: 'unknown_type' })
})
