// Tests of the binding's `error` module (core/proto/src/error.rs): the code of every kind, and every
// case of errors.json run through the JavaScript API.
import assert from 'node:assert/strict'
import { test } from 'node:test'

import * as sixcast from '../index.js'
import { camelCaseKeys, caseName, loadVectors, sixcastError } from './support.mjs'

const vectors = loadVectors('errors')

test('errorCodes() has exactly the kinds of errors.json, with their node codes', () => {
  const expected = Object.fromEntries(vectors.kinds.map(({ name, node }) => [name, node]))
  assert.deepEqual(sixcast.errorCodes(), expected)
})

test('codes are distinct and follow the ERR_SIXCAST_ convention', () => {
  const codes = Object.values(sixcast.errorCodes())
  assert.equal(new Set(codes).size, codes.length)
  for (const code of codes) assert.match(code, /^ERR_SIXCAST_[A-Z_]+$/)
})

/** Runs one errors.json case through the public API. */
const operations = {
  group_address: (vector) =>
    sixcast.groupAddress(caseName(vector), {
      profile: vector.profile,
      rp: vector.rp ?? undefined,
      scope: vector.scope,
    }),
  parse_profile: (vector) => sixcast.validateOptions({ profile: vector.profile, rp: vector.rp ?? undefined }),
  parse_scope: (vector) => sixcast.validateOptions({ scope: vector.scope }),
  config: (vector) => {
    const options = camelCaseKeys(vector.set)
    sixcast.validateOptions(options)
    // Opening a context validates first: an invalid configuration fails before any socket
    // exists, so this stays off the host's network. A valid one is not opened here.
    if (vector.error) new sixcast.Context(options)
  },
  open_context: (vector) => new sixcast.Context(camelCaseKeys(vector.set)),
  decode: (vector) => sixcast.decodeDatagram(Buffer.from(vector.hex, 'hex')),
  pack: (vector) =>
    sixcast.packMessages(
      '0000000000000001',
      0,
      vector.max_datagram,
      vector.messages_hex.map((message) => Buffer.from(message, 'hex')),
    ),
}

for (const [index, vector] of vectors.cases.entries()) {
  test(`case ${index}: ${vector.op} ${vector.error ?? 'succeeds'}`, () => {
    const run = operations[vector.op]
    assert.ok(run, `errors.json has an op this test does not know: ${vector.op}`)
    if (vector.error === null) {
      run(vector)
      return
    }
    assert.throws(
      () => run(vector),
      (err) => {
        assert.ok(err instanceof Error, 'a JavaScript Error')
        assert.deepEqual({ code: err.code, kind: err.kind }, sixcastError(vector.error))
        assert.ok(err.message.length > 0, 'a message')
        return true
      },
    )
  })
}

test('an error thrown by the addon is an Error with code, kind, message and a stack', () => {
  try {
    sixcast.groupAddress('x', { profile: 'bogus' })
    assert.fail('no error thrown')
  } catch (err) {
    assert.ok(err instanceof Error)
    assert.equal(err.code, 'ERR_SIXCAST_INVALID_CONFIG')
    assert.equal(err.kind, 'InvalidConfig')
    assert.match(err.message, /unknown profile "bogus"/)
    assert.match(err.stack, /error\.test\.mjs/)
  }
})
