// Package harness holds no code: its subpackages are what runs Causeway for the tests, the demo
// and the benchmarks, and never for an operator. devserver builds Dendrite and starts
// PostgreSQL; demo drives the bridge against the WhatsApp simulator (wasim), which makes
// whatsmeow trust a fake network. None of that belongs in the binary people deploy, so
// cmd/causeway links nothing under internal/harness, nor wasim: its TestProductionBinaryDeps
// fails if it does.
//
// Everything else directly under internal/ is a library the daemon does link, named for what it
// is (chatexport, buildinfo, cliflags, gcdefault, importapi) or for the command it implements (archivecmd,
// importcmd).
package harness
