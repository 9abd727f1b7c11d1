// Package mxcrypto is a Matrix user's own encryption device, the way a client such as
// Element has one: it uploads its keys, takes room keys from its /sync, decrypts Megolm
// events, encrypts what it sends into encrypted rooms and encrypts and decrypts attachments.
// The demo's and the benchmark's Matrix user run on it; the bridge's own device is e2ee.
//
// Like e2ee it links mautrix's crypto only with `-tags goolm`: without the tag mautrix's crypto
// package imports cgo libolm, which this project never links. Available says which build this
// is; in a build without the tag New fails with ErrNotBuilt.
package mxcrypto

import "errors"

// ErrNotBuilt is New's answer in a build without the goolm tag.
var ErrNotBuilt = errors.New("built without `-tags goolm`, so there is no Matrix encryption in this build")

// ErrNoSession is Decrypt's answer while the room key of an event has not arrived.
var ErrNoSession = errors.New("the room key of the event has not arrived")
