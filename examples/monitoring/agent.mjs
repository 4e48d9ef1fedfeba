#!/usr/bin/env node
// A passive-check agent, Nagios-style: every --interval seconds it runs its checks and sends each
// result on the "monitoring" channel, for every collector there to hear.
//
//   node agent.mjs --host web1 --interval 10 --check 'http=/usr/lib/nagios/plugins/check_http -H localhost'
//
// The built-in check "load" compares the 1-minute load average per CPU with fixed thresholds.
// Each --check SERVICE=COMMAND runs a Nagios plugin through /bin/sh: its exit code gives the
// state (0 OK, 1 WARNING, 2 CRITICAL, anything else UNKNOWN) and its first output line the text.
import { execFile } from 'node:child_process'
import os from 'node:os'
import { setTimeout as sleep } from 'node:timers/promises'
import { parseArgs } from 'node:util'

import { Context } from 'sixcast'

const STATES = ['OK', 'WARNING', 'CRITICAL', 'UNKNOWN']
const LOAD_PER_CPU_WARNING = 1.5
const LOAD_PER_CPU_CRITICAL = 3
const PLUGIN_TIMEOUT_MS = 10_000

const { values: options } = parseArgs({
  options: {
    host: { type: 'string', default: os.hostname() },
    interval: { type: 'string', default: '10' },
    channel: { type: 'string', default: 'monitoring' },
    check: { type: 'string', multiple: true, default: [] },
  },
})
const intervalMs = Number(options.interval) * 1000
if (!(intervalMs > 0)) {
  console.error(`agent: --interval must be a positive number of seconds, not ${options.interval}`)
  process.exit(2)
}
const plugins = options.check.map((spec) => {
  const separator = spec.indexOf('=')
  if (separator < 1) {
    console.error(`agent: --check takes SERVICE=COMMAND, not ${spec}`)
    process.exit(2)
  }
  return { service: spec.slice(0, separator), command: spec.slice(separator + 1) }
})

function checkLoad() {
  const perCpu = os.loadavg()[0] / os.availableParallelism()
  const state = perCpu >= LOAD_PER_CPU_CRITICAL ? 'CRITICAL' : perCpu >= LOAD_PER_CPU_WARNING ? 'WARNING' : 'OK'
  return { service: 'load', state, output: `load ${perCpu.toFixed(2)} per CPU` }
}

function runPlugin({ service, command }) {
  return new Promise((resolve) => {
    execFile('/bin/sh', ['-c', command], { timeout: PLUGIN_TIMEOUT_MS }, (error, stdout) => {
      // Without an error the plugin exited 0; a killed plugin has no exit code.
      const code = error ? error.code : 0
      const state = STATES[code] ?? 'UNKNOWN'
      const firstLine = stdout.split('\n')[0].trim()
      const output = firstLine || (error?.killed ? `no answer within ${PLUGIN_TIMEOUT_MS / 1000} s` : '(no output)')
      resolve({ service, state, output })
    })
  })
}

const context = new Context()
const channel = context.channel(options.channel)
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    context.close()
    process.exit(0)
  })
}
console.log(`agent ${options.host}: sending to ${options.channel} (${channel.group}) every ${options.interval} s`)
for (;;) {
  const results = [checkLoad(), ...(await Promise.all(plugins.map(runPlugin)))]
  const time = Math.floor(Date.now() / 1000)
  for (const result of results) channel.send(JSON.stringify({ host: options.host, ...result, time }))
  channel.flush()
  console.log(`agent ${options.host}: ${results.map(({ service, state }) => `${service} ${state}`).join(', ')}`)
  await sleep(intervalMs)
}
