// Tests of the control-message codec (core/proto/src/wire/control/): every case of control.json.
import assert from 'node:assert/strict'
import { test } from 'node:test'

import * as sixcast from '../index.js'
import { canonicalIPv6, loadVectors, sixcastError } from './support.mjs'

const vectors = loadVectors('control')
const hex = (bytes) => Buffer.from(bytes).toString('hex')

const socketFields = ['observed', 'node', 'relay', 'old']
const bytesFields = ['cookie', 'mac', 'old_mac', 'datagram', 'voucher', 'signature']
/** The vectors' snake_case field names and the binding's camelCase ones. */
const fieldNames = {
  nonce: 'nonce',
  beacon_nonce: 'beaconNonce',
  heard_beacon: 'heardBeacon',
  limit: 'limit',
  repeater: 'repeater',
  observed: 'observed',
  node: 'node',
  relay: 'relay',
  old: 'old',
  old_nonce: 'oldNonce',
  old_mac: 'oldMac',
  cookie: 'cookie',
  mac: 'mac',
  load: 'load',
  refresh_secs: 'refreshSecs',
  gateway: 'gateway',
  hold_ms: 'holdMs',
  groups: 'groups',
  group: 'group',
  datagram: 'datagram',
  relay_key: 'relayKey',
  voucher: 'voucher',
  signature: 'signature',
}

/** The bytes a `decode` case receives: `datagram`, then the `datagram_repeat` bytes. */
function received(vector) {
  const head = Buffer.from(vector.datagram, 'hex')
  if (!vector.datagram_repeat) return head
  const { byte_hex: byteHex, count } = vector.datagram_repeat
  return Buffer.concat([head, Buffer.alloc(count, Buffer.from(byteHex, 'hex'))])
}

/** "[address]:port" as the vectors' {ip, port}, with the address in canonical form. */
function socketAddress(text) {
  const match = /^\[(.+)\]:(\d+)$/.exec(text)
  assert.ok(match, `${text} is not [address]:port`)
  return { ip: canonicalIPv6(match[1]), port: Number(match[2]) }
}

/** A decoded message in the vectors' form. */
function asVector(message) {
  const vector = { type: message.name }
  for (const [name, field] of Object.entries(fieldNames)) {
    const value = message[field]
    if (value === undefined || value === null) continue
    if (socketFields.includes(name)) vector[name] = socketAddress(value)
    else if (bytesFields.includes(name)) vector[name] = hex(value)
    else if (name === 'groups') vector[name] = value.map(canonicalIPv6)
    else if (name === 'group') vector[name] = canonicalIPv6(value)
    else vector[name] = value
  }
  return vector
}

/** The vectors' message with its addresses in canonical form. */
function canonical(message) {
  const vector = { ...message }
  for (const name of socketFields) {
    if (vector[name]) vector[name] = { ip: canonicalIPv6(vector[name].ip), port: vector[name].port }
  }
  if (vector.groups) vector.groups = vector.groups.map(canonicalIPv6)
  if (vector.group) vector.group = canonicalIPv6(vector.group)
  return vector
}

test('constants match the vectors', () => {
  assert.equal(sixcast.CONTROL_MAC_LEN, vectors.constants.mac_len)
  assert.equal(sixcast.CONTROL_SECRET_LEN, vectors.constants.secret_len)
})

for (const vector of vectors.encode) {
  test(`decode encoded ${vector.name}`, () => {
    const message = sixcast.decodeControl(Buffer.from(vector.datagram, 'hex'))
    assert.deepEqual(asVector(message), canonical(vector.message))
  })
}

for (const vector of vectors.decode) {
  test(`decode ${vector.name}: ${vector.why}`, () => {
    if (vector.error) {
      assert.throws(() => sixcast.decodeControl(received(vector)), {
        ...sixcastError(vector.error),
        reason: vector.reason,
      })
    } else {
      assert.deepEqual(asVector(sixcast.decodeControl(received(vector))), canonical(vector.decoded))
    }
  })
}

for (const vector of vectors.mac) {
  test(`controlMac ${vector.name}`, () => {
    const mac = sixcast.controlMac(Buffer.from(vector.secret, 'hex'), vector.ip, vector.port, vector.nonce)
    assert.equal(hex(mac), vector.mac)
  })
}

test('controlMac rejects bad arguments', () => {
  const secret = Buffer.alloc(32)
  assert.throws(() => sixcast.controlMac(Buffer.alloc(31), '2001:db8::7', 1, '0102030405060708'), {
    ...sixcastError('InvalidConfig'),
    message: /secret/,
  })
  assert.throws(
    () => sixcast.controlMac(secret, '2001:db8::zz', 1, '0102030405060708'),
    sixcastError('InvalidAddress'),
  )
  for (const nonce of ['0102', '+102030405060708', '010203040506070g', '01020304050607080']) {
    assert.throws(() => sixcast.controlMac(secret, '2001:db8::7', 1, nonce), {
      ...sixcastError('InvalidConfig'),
      message: /nonce/,
    })
  }
})
