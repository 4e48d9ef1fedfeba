// ES module entry: the same binding as index.js (CommonJS), with named exports.
export * from './index.js'
export { default } from './index.js'
