// Package e2ee is the bridge bot's Matrix encryption device: its Olm account and Megolm
// sessions (mautrix's crypto with the goolm build tag, stored in the bridge's database),
// the login of the device, and encrypting and decrypting room events for the bridge.
//
// Dendrite 0.13.8 has no MSC2409/MSC3202, so nothing crypto needs arrives in appservice
// transactions: the bridge feeds this package the to-device events, device-list changes
// and one-time-key counts of the bot device's own /sync (bridge/matrixsync.go).
//
// Every build that links this package needs `-tags goolm` (see goolm_required.go).
package e2ee
