package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/pachca-export/pachca-export/simulator"
)

// openPTY opens a pseudo-terminal: what the command writes to tty, a
// terminal to it, is read from the returned buffer once done is called.
func openPTY(t *testing.T) (tty *os.File, done func() string) {
	t.Helper()
	ptmx, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	require.NoError(t, err)
	t.Cleanup(func() { ptmx.Close() })
	require.NoError(t, unix.IoctlSetPointerInt(int(ptmx.Fd()), unix.TIOCSPTLCK, 0))
	n, err := unix.IoctlGetInt(int(ptmx.Fd()), unix.TIOCGPTN)
	require.NoError(t, err)
	tty, err = os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	require.NoError(t, err)
	t.Cleanup(func() { tty.Close() })
	var out bytes.Buffer
	read := make(chan struct{})
	go func() {
		defer close(read)
		io.Copy(&out, ptmx) // until the terminal's last holder closes it (EIO)
	}()
	return tty, func() string {
		tty.Close()
		<-read
		return out.String()
	}
}

// TestDumbTerminalNoStatusLine: on a terminal of TERM=dumb (an Emacs shell
// buffer, a CI runner's pseudo-terminal) run draws no status line, whose
// "\r\033[K" such a terminal shows as it is (was: a ^[[K before each of
// the four redraws a second).
func TestDumbTerminalNoStatusLine(t *testing.T) {
	// Each request takes 800 ms: the status line, redrawn every 250 ms,
	// is drawn at least twice where it is drawn at all.
	base := startSim(t, func(c *simulator.Config) { c.Latency = 800 * time.Millisecond })
	day := time.Now().UTC().Truncate(24*time.Hour).AddDate(0, 0, -3).Format(time.DateOnly)
	next := time.Now().UTC().Truncate(24*time.Hour).AddDate(0, 0, -2).Format(time.DateOnly)
	for _, tc := range []struct {
		term   string
		status bool
	}{
		{"xterm-256color", true}, // the status line is drawn where the terminal takes it
		{"dumb", false},
		{"", true}, // kubectl exec -t: the user's own terminal
	} {
		t.Run("TERM="+tc.term, func(t *testing.T) {
			t.Setenv("TERM", tc.term)
			path := writeConfig(t, base, secretToken, goodConfig)
			tty, done := openPTY(t)
			var stdout bytes.Buffer
			code := Main(t.Context(), []string{"run", "-c", path, "--from", day, "--to", next}, &stdout, tty)
			out := done()
			require.Equal(t, 0, code, out)
			require.Contains(t, out, "days delivered", "the summary")
			require.Equal(t, tc.status, bytes.Contains([]byte(out), []byte("\033[K")), "%q", out)
			require.Equal(t, tc.status, bytes.Contains([]byte(out), []byte("ETA ")), "%q", out)
		})
	}
}
