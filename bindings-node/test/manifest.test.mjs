// Tests of the codec of MANIFEST datagrams (core/proto/src/wire/manifest.rs): every decode case of
// manifest.json, and its constants.
import assert from 'node:assert/strict'
import { test } from 'node:test'

import * as sixcast from '../index.js'
import { loadVectors, sixcastError } from './support.mjs'

const vectors = loadVectors('manifest')
const hex = (bytes) => Buffer.from(bytes).toString('hex')

/** A decoded manifest in the form of the vectors' valid cases: digests as hex. */
function asVector(decoded) {
  return { sender: decoded.sender, number: decoded.number, digests: decoded.digests.map(hex) }
}

test('the vectors have valid and invalid cases', () => {
  assert.ok(vectors.decode.some((vector) => vector.reason === undefined))
  assert.ok(vectors.decode.some((vector) => vector.reason !== undefined))
})

for (const vector of vectors.decode) {
  test(`decode ${vector.name}: ${vector.why}`, () => {
    const datagram = Buffer.from(vector.manifest, 'hex')
    if (vector.reason !== undefined) {
      assert.throws(() => sixcast.decodeManifest(datagram), {
        ...sixcastError('Malformed'),
        reason: vector.reason,
      })
    } else {
      const decoded = sixcast.decodeManifest(datagram)
      assert.deepEqual(asVector(decoded), { sender: vector.sender, number: vector.number, digests: vector.digests })
      for (const digest of decoded.digests) {
        assert.ok(Buffer.isBuffer(digest))
        assert.equal(digest.length, sixcast.DIGEST_LEN)
      }
    }
  })
}

test('decodeManifest takes any Uint8Array', () => {
  const vector = vectors.decode.find((candidate) => candidate.reason === undefined)
  const datagram = Buffer.from(vector.manifest, 'hex')
  assert.deepEqual(
    asVector(sixcast.decodeManifest(new Uint8Array(datagram))),
    asVector(sixcast.decodeManifest(datagram)),
  )
})

test('datagrams of the other layer are malformed here', () => {
  const [message] = sixcast.packMessages('0000000000000001', 0, 1232, ['x'])
  assert.throws(() => sixcast.decodeManifest(message), { ...sixcastError('Malformed'), reason: 'unknown_type' })
})

test('constants match the vectors', () => {
  const { constants } = vectors
  assert.equal(sixcast.FLAG_COVERED, constants.flag_covered)
  assert.equal(sixcast.TYPE_MANIFEST, constants.type_manifest)
  assert.equal(sixcast.DIGEST_LEN, constants.digest_len)
  assert.equal(sixcast.MAX_DIGESTS, constants.max_digests)
  assert.equal(sixcast.DIGEST_CONTEXT, constants.digest_context)
})
