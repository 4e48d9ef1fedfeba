// npm's `install` hook. When no native binding loads (no prebuilt per-platform package for this
// machine and no .node file built earlier), builds one from the Rust sources of the repository
// this package sits in. That needs cargo; it takes a minute or two.
'use strict'

const { spawnSync } = require('node:child_process')
const fs = require('node:fs')
const path = require('node:path')

const packageDir = path.resolve(__dirname, '..')

function bindingLoads() {
  try {
    require(path.join(packageDir, 'index.js'))
    return true
  } catch {
    return false
  }
}

/** The platform part of the file name the loader in index.js looks for. */
function platformSuffix() {
  const { platform, arch } = process
  if (platform === 'linux') {
    const libc = process.report.getReport().header.glibcVersionRuntime ? 'gnu' : 'musl'
    return arch === 'arm' ? `linux-arm-${libc}eabihf` : `linux-${arch}-${libc}`
  }
  if (platform === 'win32') return `win32-${arch}-msvc`
  return `${platform}-${arch}`
}

function fail(message) {
  console.error(`sixcast: ${message}`)
  process.exit(1)
}

/** Builds the addon with cargo and returns the path of the shared library. */
function cargoBuild() {
  const cargo = process.env.CARGO || 'cargo'
  // Stripped: the workspace's release profile keeps debug info, which would make the addon 14 MB.
  const args = [
    'build',
    '--release',
    '--lib',
    '--config=profile.release.strip="debuginfo"',
    '--message-format=json-render-diagnostics',
  ]
  console.error(`sixcast: no prebuilt binary for ${platformSuffix()}; building it (${cargo} ${args.join(' ')})`)
  const build = spawnSync(cargo, args, {
    cwd: packageDir,
    encoding: 'utf8',
    maxBuffer: 256 << 20,
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  if (build.error) fail(`cannot run ${cargo} (${build.error.message}); install Rust from https://rustup.rs`)
  if (build.status !== 0) fail(`${cargo} build failed (exit ${build.status})`)
  const library = build.stdout
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line))
    .filter((event) => event.reason === 'compiler-artifact' && event.target.kind.includes('cdylib'))
    .flatMap((event) => event.filenames)
    .find((file) => /\.(so|dylib|dll)$/.test(file))
  if (!library) fail(`${cargo} reported no shared library for the addon`)
  return library
}

if (bindingLoads()) process.exit(0)
if (!fs.existsSync(path.join(packageDir, 'Cargo.toml'))) {
  fail(`no prebuilt binary for ${platformSuffix()} and no Rust sources to build one from`)
}
const target = path.join(packageDir, `sixcast.${platformSuffix()}.node`)
fs.copyFileSync(cargoBuild(), target)
if (!bindingLoads()) fail(`built ${target}, but it does not load`)
console.error(`sixcast: built ${path.basename(target)}`)
