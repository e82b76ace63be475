//go:build !linux

package testredis

import "os/exec"

// setParentDeathSignal does nothing where the kernel offers no parent death
// signal; the server is still killed by the test's cleanup.
func setParentDeathSignal(*exec.Cmd) {}
