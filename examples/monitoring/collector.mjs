#!/usr/bin/env node
// A Nagios-style collector of passive check results: listens on the "monitoring" channel,
// prints a live table of hosts, services and states, and flags hosts it has not heard from for
// longer than --silent-after seconds.
//
//   node collector.mjs --silent-after 30 --refresh 2
//   node collector.mjs --silent-after 30 --once-after 60 [--json]   # one final report, then exit
//
// Ages are measured with this collector's clock, from when each result arrived, so the agents'
// clocks do not matter.
import { parseArgs } from 'node:util'

import { Context } from 'sixcast'

const STATES = ['OK', 'WARNING', 'CRITICAL', 'UNKNOWN']

const { values: options } = parseArgs({
  options: {
    channel: { type: 'string', default: 'monitoring' },
    'silent-after': { type: 'string', default: '30' },
    refresh: { type: 'string', default: '2' },
    'once-after': { type: 'string' },
    json: { type: 'boolean', default: false },
  },
})

function seconds(name) {
  const value = Number(options[name])
  if (!(value > 0)) {
    console.error(`collector: --${name} must be a positive number of seconds, not ${options[name]}`)
    process.exit(2)
  }
  return value
}
const silentAfter = seconds('silent-after')
const refresh = seconds('refresh')
const onceAfter = options['once-after'] === undefined ? undefined : seconds('once-after')
if (options.json && onceAfter === undefined) {
  console.error('collector: --json prints one final report, so it needs --once-after')
  process.exit(2)
}

/** host -> { lastHeard: ms, services: Map(service -> { state, output, heard: ms }) } */
const hosts = new Map()
let ignored = 0

/** The check result in a message, or undefined when the message is not one. */
function parseResult(payload) {
  try {
    const result = JSON.parse(payload.toString('utf8'))
    const valid =
      typeof result.host === 'string' &&
      result.host !== '' &&
      typeof result.service === 'string' &&
      result.service !== '' &&
      STATES.includes(result.state) &&
      typeof result.output === 'string'
    return valid ? result : undefined
  } catch {
    return undefined
  }
}

function record(message) {
  const result = parseResult(message.payload)
  if (result === undefined) {
    ignored += 1
    return
  }
  const now = Date.now()
  if (!hosts.has(result.host)) hosts.set(result.host, { lastHeard: now, services: new Map() })
  const host = hosts.get(result.host)
  host.lastHeard = now
  host.services.set(result.service, { state: result.state, output: result.output, heard: now })
}

/** The current view: every host with its services, sorted by name, ages in seconds. */
function snapshot() {
  const now = Date.now()
  const age = (since) => Math.round((now - since) / 100) / 10
  return [...hosts.entries()]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([name, host]) => ({
      host: name,
      silent: now - host.lastHeard > silentAfter * 1000,
      last_heard_s: age(host.lastHeard),
      services: [...host.services.entries()]
        .sort(([a], [b]) => a.localeCompare(b))
        .map(([service, { state, output, heard }]) => ({ service, state, output, age_s: age(heard) })),
    }))
}

function table(view) {
  const rows = [['HOST', 'SERVICE', 'STATE', 'AGE', 'OUTPUT']]
  for (const host of view) {
    for (const { service, state, output, age_s: age } of host.services) {
      rows.push([host.host, service, state, `${age.toFixed(0)}s`, output])
    }
    if (host.silent) {
      const silence = host.last_heard_s.toFixed(0)
      rows.push([host.host, '*', 'SILENT', `${silence}s`, `no results for ${silence} s (limit ${silentAfter} s)`])
    }
  }
  const widths = rows[0].map((_, column) => Math.max(...rows.map((row) => row[column].length)))
  const lines = rows.map((row) => row.map((cell, column) => cell.padEnd(widths[column])).join('  ').trimEnd())
  const silent = view.filter((host) => host.silent).length
  const header = `${options.channel}: ${view.length} hosts, ${silent} silent, ${ignored} messages ignored`
  return [header, ...lines].join('\n')
}

function show() {
  // On a terminal each table replaces the previous one.
  if (process.stdout.isTTY) process.stdout.write('\x1b[2J\x1b[H')
  console.log(`${table(snapshot())}\n`)
}

const context = new Context()
const channel = context.channel(options.channel)
channel.join()
const subscription = channel.subscribe(record)
console.error(`collector: listening on ${options.channel} (${channel.group})`)

function finish() {
  subscription.stop()
  context.close()
}

if (onceAfter === undefined) {
  setInterval(show, refresh * 1000)
} else {
  setTimeout(() => {
    finish()
    const view = snapshot()
    if (options.json) console.log(JSON.stringify({ silent_after_s: silentAfter, ignored, hosts: view }, null, 2))
    else console.log(table(view))
  }, onceAfter * 1000)
}
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    finish()
    process.exit(0)
  })
}
