// Package gcsettings holds paystream's garbage-collector defaults.
//
// The stream and the ingress allocate short-lived garbage per record, and at Go's default
// (GOGC=100) the collector took a tenth of the CPU of a busy process. paystream lets the
// heap grow to four times what is live between collections, and bounds it with a soft
// memory limit so that a large live heap makes the collector work harder rather than the
// process grow past what an operator planned for. GOGC and GOMEMLIMIT, when set, win.
package gcsettings

import (
	"os"
	"runtime/debug"
)

// Defaults used when the environment sets nothing.
const (
	Percent     = 300
	MemoryLimit = 768 << 20
)

// Apply sets the defaults where GOGC and GOMEMLIMIT are unset.
func Apply() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(Percent)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(MemoryLimit)
	}
}
