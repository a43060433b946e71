package main

import (
	"runtime"
	"runtime/debug"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestReportLimitFollowsLiveHeap: the report's soft memory limit is half a
// large live heap above it, not 32 MiB beneath it, where the collector ran
// without end (50,000 actors over a week of 4,000,000 events a day: 3.5
// times the CPU, and more RSS); with a small live heap it is the 32 MiB of
// before, and stop puts back the limit it found.
func TestReportLimitFollowsLiveHeap(t *testing.T) {
	before := debug.SetMemoryLimit(-1)
	live := make([]byte, 48<<20) // the counters of a large workspace
	for i := range live {
		live[i] = byte(i)
	}
	stop := followLiveHeap(reportMemoryLimit)
	runtime.GC()
	raiseToLiveHeap(reportMemoryLimit)
	require.GreaterOrEqual(t, debug.SetMemoryLimit(-1), int64(len(live)*3/2))
	runtime.KeepAlive(live)
	live = nil
	runtime.GC()
	raiseToLiveHeap(reportMemoryLimit)
	require.Equal(t, int64(reportMemoryLimit), debug.SetMemoryLimit(-1))
	stop()
	require.Equal(t, before, debug.SetMemoryLimit(-1))
}
