//go:build !linux

package archive

// machineID is empty where there is no /proc to tell a dead holder from a live one: such a holder's
// lease is only taken once it lapses.
func machineID() string { return "" }

func processStart(pid int64) (start string, alive bool) { return "", true }
