// Tests of the binding's `files` module (core/src/files): FileReceiver's arguments. Nothing
// here opens a context (that would bind a socket on the host); channel.sendFile() and receiving
// are tested in namespace hosts, by world.test.mjs.
import assert from 'node:assert/strict'
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { test } from 'node:test'

import * as sixcast from '../index.js'
import { sixcastError } from './support.mjs'

const invalidConfig = sixcastError('InvalidConfig')
const zeroStats = {
  frames: 0,
  otherMessages: 0,
  malformed: 0,
  refused: 0,
  unfollowed: 0,
  chunks: 0,
  duplicateChunks: 0,
}

/** Runs `body` with a fresh empty folder, removed afterwards. */
async function inFolder(body) {
  const folder = await mkdtemp(path.join(tmpdir(), 'sixcast-node-files-'))
  try {
    await body(folder)
  } finally {
    await rm(folder, { recursive: true, force: true })
  }
}

test('FileReceiver is exported by both entry points', async () => {
  const esm = await import('../index.mjs')
  assert.equal(typeof sixcast.FileReceiver, 'function')
  assert.equal(esm.FileReceiver, sixcast.FileReceiver)
})

test('a FileReceiver needs an existing folder', async () => {
  await inFolder(async (folder) => {
    const missing = path.join(folder, 'missing')
    assert.throws(() => new sixcast.FileReceiver(missing), (err) => {
      assert.deepEqual({ code: err.code, kind: err.kind }, invalidConfig)
      assert.ok(err.message.includes(missing), err.message)
      return true
    })
    const file = path.join(folder, 'a-file')
    await writeFile(file, 'not a folder')
    assert.throws(() => new sixcast.FileReceiver(file), invalidConfig)
  })
})

test('a new FileReceiver has zero counters and writes nothing', async () => {
  await inFolder(async (folder) => {
    const receiver = new sixcast.FileReceiver(folder, { maxSize: 1 << 20, maxTransfers: 2 })
    assert.deepEqual(receiver.stats(), zeroStats)
    assert.deepEqual(new sixcast.FileReceiver(folder).stats(), zeroStats)
    assert.deepEqual(await readdir(folder), [])
  })
})

test('FileReceiver options are checked like the context options', async () => {
  await inFolder(async (folder) => {
    const cases = [
      { maxTransfer: 2 },
      { maxTransfers: 1.5 },
      { maxTransfers: -1 },
      { maxSize: 'large' },
      { maxSize: Number.MAX_SAFE_INTEGER + 2 },
    ]
    for (const options of cases) {
      assert.throws(() => new sixcast.FileReceiver(folder, options), invalidConfig, JSON.stringify(options))
    }
    assert.throws(() => new sixcast.FileReceiver(folder, { maxTransfer: 2 }), /unknown option "maxTransfer"/)
  })
})
