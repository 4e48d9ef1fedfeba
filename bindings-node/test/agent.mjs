// The Node conformance agent of the cross-language matrix; tests/conformance/agents/README.md
// specifies the command line. Uses only the package's public API.
//   agent.mjs send <channel> <label>
//   agent.mjs recv <channel> <count> <timeout-seconds>
import { Context } from '../index.js'

const PATTERN_SIZE = 1 << 20
const TIMED_OUT = 3

/** The 1 MiB message every agent sends: byte i is i % 251. */
function pattern() {
  const bytes = Buffer.alloc(PATTERN_SIZE)
  for (let i = 0; i < PATTERN_SIZE; i += 1) bytes[i] = i % 251
  return bytes
}

function send(channelName, label) {
  const context = new Context()
  const channel = context.channel(channelName)
  channel.send(`hello from ${label}`)
  channel.send(Buffer.alloc(0))
  channel.send(pattern())
  channel.flush()
  context.close()
}

async function recv(channelName, count, timeoutSeconds) {
  const context = new Context()
  const channel = context.channel(channelName)
  channel.join()
  const expected = pattern()
  // Writes to a pipe or file are synchronous in Node, so every line is out before the next wait.
  process.stdout.write('READY\n')
  const deadline = Date.now() + timeoutSeconds * 1000
  try {
    for (let received = 0; received < count; received += 1) {
      const message = await channel.recv(Math.max(0, deadline - Date.now()))
      const { payload } = message
      const line = {
        size: payload.length,
        text: payload.length <= 64 ? payload.toString('utf8') : null,
        pattern_ok: payload.equals(expected),
        seq: message.seq,
        sender: message.sender,
      }
      process.stdout.write(`${JSON.stringify(line)}\n`)
    }
  } catch (err) {
    if (err.code !== 'ERR_SIXCAST_TIMEOUT') throw err
    process.exitCode = TIMED_OUT
  } finally {
    context.close()
  }
}

const [command, channelName, ...args] = process.argv.slice(2)
if (command === 'send' && channelName !== undefined && args.length === 1) {
  send(channelName, args[0])
} else if (command === 'recv' && channelName !== undefined && args.length === 2) {
  await recv(channelName, Number(args[0]), Number(args[1]))
} else {
  process.stderr.write('usage: agent.mjs send <channel> <label> | recv <channel> <count> <timeout-seconds>\n')
  process.exitCode = 64
}
