//go:build !goolm

package e2ee

// mautrix's crypto package registers cgo libolm unless built with the goolm tag, and the
// bridge must stay CGO_ENABLED=0 and never link libolm. This line fails the build with a
// name that says the fix: add `-tags goolm` to go build, go vet, go test and go run.
var _ = causeway_e2ee_needs_the_goolm_build_tag__build_with_go_build_tags_goolm
