// Tests of the binding's `addr` module (core/proto/src/addr.rs): every vector of addresses.json.
import assert from 'node:assert/strict'
import { test } from 'node:test'

import * as sixcast from '../index.js'
import {
  addressOptions,
  canonicalIPv6,
  caseLabel,
  caseName,
  loadVectors,
  sixcastError,
} from './support.mjs'

const vectors = loadVectors('addresses')

test('constants match the vectors', () => {
  const { constants } = vectors
  assert.equal(sixcast.DEFAULT_PORT, constants.default_port)
  assert.equal(sixcast.LIBRECAST_PORT, constants.librecast_port)
  assert.equal(sixcast.MAX_NAME_LEN, constants.max_name_len)
  assert.equal(sixcast.FLAG_RELAYED, constants.flag_relayed)
})

for (const vector of vectors.cases) {
  const options = addressOptions(vector)
  const label = `${vector.profile}${vector.rp ? ` ${vector.rp}` : ''} ${vector.scope} ${caseLabel(vector)}`

  test(`group and relayed address: ${label}`, () => {
    const group = sixcast.groupAddress(caseName(vector), options)
    assert.equal(canonicalIPv6(group), canonicalIPv6(vector.address))
    if (vector.name_utf8 !== null && vector.name_utf8 !== undefined) {
      assert.equal(sixcast.groupAddress(vector.name_utf8, options), group, 'string name')
    }
    const profileOnly = { profile: options.profile, rp: options.rp }
    if (vector.relayed_address === null) {
      assert.throws(() => sixcast.relayedAddress(group, profileOnly), sixcastError('Unsupported'))
    } else {
      const relayed = sixcast.relayedAddress(group, profileOnly)
      assert.equal(canonicalIPv6(relayed), canonicalIPv6(vector.relayed_address))
      assert.equal(sixcast.relayedAddress(relayed, profileOnly), relayed, 'relaying twice')
    }
    const profilePort = vector.profile === 'librecast' ? sixcast.LIBRECAST_PORT : sixcast.DEFAULT_PORT
    assert.equal(vector.port, profilePort)
  })
}

for (const vector of vectors.invalid) {
  test(`invalid: ${vector.why} (${vector.profile}, ${caseLabel(vector)})`, () => {
    assert.throws(
      () => sixcast.groupAddress(caseName(vector), addressOptions(vector)),
      sixcastError(vector.error),
    )
  })
}

test('defaults are the sixcast profile and global scope', () => {
  const explicit = sixcast.groupAddress('webservers', { profile: 'sixcast', scope: 'global' })
  assert.equal(sixcast.groupAddress('webservers'), explicit)
  assert.equal(sixcast.relayedAddress(explicit), sixcast.relayedAddress(explicit, { profile: 'sixcast' }))
})

test('relayedAddress rejects text that is not an address, and groups of another form', () => {
  assert.throws(() => sixcast.relayedAddress('not an address'), sixcastError('InvalidAddress'))
  const ssmGroup = sixcast.groupAddress('webservers', { profile: 'ssm' })
  assert.throws(() => sixcast.relayedAddress(ssmGroup), sixcastError('InvalidAddress'))
})

test('a name that is neither a string nor bytes is a type error', () => {
  assert.throws(() => sixcast.groupAddress(42), { code: 'InvalidArg' })
})
