// Shared by the tests: the conformance vectors (tests/conformance/vectors, or CONFORMANCE_DIR)
// and the spelling rules they use.
import { readFileSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

export const repoRoot = fileURLToPath(new URL('../..', import.meta.url))
const vectorsDir = process.env.CONFORMANCE_DIR ?? path.join(repoRoot, 'tests/conformance/vectors')

export function loadVectors(name) {
  return JSON.parse(readFileSync(path.join(vectorsDir, `${name}.json`), 'utf8'))
}

const errorKinds = loadVectors('errors').kinds

/** The Node `code` errors.json gives the ErrorKind called `kind`. */
export function codeOf(kind) {
  const entry = errorKinds.find((candidate) => candidate.name === kind)
  if (!entry) throw new Error(`errors.json has no kind ${kind}`)
  return entry.node
}

/** What `assert.throws`/`rejects` should see for an error of ErrorKind `kind`. */
export function sixcastError(kind) {
  return { code: codeOf(kind), kind }
}

/** A case's channel name as bytes: `name_hex`, `name_utf8` or `name_repeat`. */
export function caseName(vector) {
  if (vector.name_repeat) {
    const { byte_hex: byteHex, count } = vector.name_repeat
    return Buffer.alloc(count, Buffer.from(byteHex, 'hex'))
  }
  if (vector.name_hex !== undefined) return Buffer.from(vector.name_hex, 'hex')
  return Buffer.from(vector.name_utf8, 'utf8')
}

/** A short label for a case in test names. */
export function caseLabel(vector) {
  if (vector.name_repeat) return `${vector.name_repeat.count} x 0x${vector.name_repeat.byte_hex}`
  return JSON.stringify(vector.name_utf8 ?? vector.name_hex)
}

/** IPv6 text in one canonical form, so addresses compare as the 16 bytes they stand for. */
export function canonicalIPv6(text) {
  // WHATWG URL parsing keeps the brackets around an IPv6 host.
  return new URL(`http://[${text}]/`).hostname.slice(1, -1)
}

/** snake_case configuration field names of the vectors, as the Node options spell them. */
export function camelCaseKeys(fields) {
  return Object.fromEntries(
    Object.entries(fields).map(([key, value]) => [
      key.replace(/_([a-z])/g, (_, letter) => letter.toUpperCase()),
      value,
    ]),
  )
}

/** The options (profile, rp, scope) of a vector, leaving out what it sets to null. */
export function addressOptions(vector) {
  const options = {}
  for (const key of ['profile', 'rp', 'scope']) {
    if (vector[key] !== null && vector[key] !== undefined) options[key] = vector[key]
  }
  return options
}
