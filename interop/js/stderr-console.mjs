// Imported before matrix-js-sdk: the SDK's logger (loglevel) binds console's methods when it is
// created, and console.log/info/debug write to stdout, which carries the protocol to the Go test
// and nothing else. Everything the SDK says goes to stderr.
for (const name of ["log", "info", "debug", "trace", "warn"]) {
    console[name] = (...args) => console.error(...args);
}
