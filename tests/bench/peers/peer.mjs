// One process of the performance suite, in Node: the sixcast binding ("node-sixcast") or
// zeromq.js ("zeromq.js") sending or receiving. Same protocol as the suite's own roles
// (tests/bench/src/roles.rs): the spec is argv[2] (JSON, with `binding`, the built binding's
// index.js); print "ready" once set up, wait for "go" on stdin, run, print one JSON object.
import { createRequire } from "node:module";
import { createInterface } from "node:readline";

const spec = JSON.parse(process.argv[2]);
const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();

const cpuSeconds = () => {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1e6;
};
const now = () => performance.now() / 1e3;

async function ready() {
  console.log("ready");
  const { value } = await lines.next();
  if (value?.trim() !== "go") throw new Error(`expected go, got ${value}`);
}

const senderReport = (sent, began, cpu) => ({
  sent,
  seconds: now() - began,
  cpu_seconds: cpuSeconds() - cpu,
});

class Tally {
  constructor() {
    this.began = now();
    this.cpu = cpuSeconds();
    this.received = 0;
    this.last = 0;
  }
  add(count) {
    if (count) {
      this.received += count;
      this.last = now() - this.began;
    }
  }
  report() {
    return { received: this.received, seconds_to_last: this.last, cpu_seconds: cpuSeconds() - this.cpu };
  }
}

function sixcastContext() {
  const { Context } = createRequire(import.meta.url)(spec.binding);
  return new Context({ maxDatagramSize: spec.datagram, hopLimit: spec.hops });
}

async function nodeSixcastSend() {
  const context = sixcastContext();
  const channel = context.channel(spec.channel);
  const payload = Buffer.alloc(spec.size, 0x5c);
  await ready();
  const began = now();
  const cpu = cpuSeconds();
  let sent = 0;
  while (now() - began < spec.seconds) {
    for (let i = 0; i < 64; i++) channel.send(payload);
    sent += 64;
  }
  channel.flush();
  const report = senderReport(sent, began, cpu);
  context.close();
  return report;
}

async function nodeSixcastRecv() {
  const context = sixcastContext();
  const channel = context.channel(spec.channel);
  channel.join();
  await ready();
  const tally = new Tally();
  const deadline = tally.began + spec.seconds + spec.drain;
  // Reads each payload, as the zeromq.js receiver does, so that both pay for their Buffers.
  const take = (message) => {
    if (message.payload.length !== spec.size) throw new Error(`got ${message.payload.length} bytes`);
    tally.add(1);
  };
  for (;;) {
    // Take what is queued synchronously; wait (a promise) only when the queue is empty.
    const queued = channel.tryRecv();
    if (queued !== null) {
      take(queued);
      continue;
    }
    const remaining = deadline - now();
    if (remaining <= 0) break;
    try {
      take(await channel.recv(Math.max(1, Math.round(remaining * 1e3))));
    } catch (err) {
      if (err.code === "ERR_SIXCAST_TIMEOUT") break;
      throw err;
    }
  }
  context.close();
  return tally.report();
}

async function zeromqSend() {
  const zmq = await import("zeromq");
  // Lossless: sends wait at the high-water mark instead of dropping.
  const socket = new zmq.XPublisher({ ipv6: true, noDrop: true, verbosity: "allSubs", receiveTimeout: 15000 });
  await socket.bind(`tcp://[::]:${spec.port}`);
  for (let i = 0; i < spec.subscribers; i++) await socket.receive();
  const payload = Buffer.alloc(spec.size, 0x5c);
  await ready();
  const began = now();
  const cpu = cpuSeconds();
  let sent = 0;
  // With noDrop, libzmq reports EAGAIN at the high-water mark although the socket polls
  // writable, and zeromq.js passes that on: wait a moment and send again.
  const send = async (message) => {
    for (;;) {
      try {
        return await socket.send(message);
      } catch (err) {
        if (err.code !== "EAGAIN") throw err;
        await new Promise((resolve) => setImmediate(resolve));
      }
    }
  };
  while (now() - began < spec.seconds) {
    for (let i = 0; i < 64; i++) await send(payload);
    sent += 64;
  }
  const report = senderReport(sent, began, cpu);
  await send(Buffer.alloc(0)); // the end mark
  socket.linger = -1;
  socket.close();
  return report;
}

async function zeromqRecv() {
  const zmq = await import("zeromq");
  const socket = new zmq.Subscriber({ ipv6: true, receiveTimeout: 100 });
  socket.connect(spec.connect);
  socket.subscribe();
  await ready();
  const tally = new Tally();
  while (now() - tally.began < spec.seconds + 20) {
    try {
      const [message] = await socket.receive();
      if (message.length === 0) break;
      tally.add(1);
    } catch (err) {
      if (err.code !== "EAGAIN") throw err;
    }
  }
  socket.close();
  return tally.report();
}

const roles = {
  "node-sixcast/send": nodeSixcastSend,
  "node-sixcast/recv": nodeSixcastRecv,
  "zeromq.js/send": zeromqSend,
  "zeromq.js/recv": zeromqRecv,
};
const role = roles[`${spec.system}/${spec.role}`];
if (!role) throw new Error(`no role ${spec.role} for ${spec.system}`);
console.log(JSON.stringify(await role()));
// Node exits once closed sockets have delivered what they queued (zeromq.js lingers).
lines.return();
process.stdin.destroy();
