// Package e2ee is the bridge bot's Matrix encryption device: its Olm account and Megolm
// sessions (mautrix's crypto with the goolm build tag, stored in the bridge's database),
// the login of the device, and encrypting and decrypting room events for the bridge.
//
// Dendrite 0.13.8 has no MSC2409/MSC3202, so nothing crypto needs arrives in appservice
// transactions: the bridge feeds this package the to-device events, device-list changes
// and one-time-key counts of the bot device's own /sync (bridge/matrixsync.go).
//
// With `-tags goolm` it links mautrix's crypto (goolm, never cgo libolm); without the tag it links no
// crypto at all and Open refuses, saying so (nocrypto.go): the rest of the bridge runs either way.
package e2ee
