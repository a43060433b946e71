package main

import (
	"fmt"
	"io"
	"sync"

	"github.com/pachca-export/pachca-export/pipeline"
)

// terminalProgress keeps one status line at the bottom of a terminal. Log
// lines written through it clear the status line first and redraw it after,
// so the two never mix.
type terminalProgress struct {
	mu sync.Mutex
	w  io.Writer
	// width returns the terminal's columns, 0 if unknown. The status line
	// is cut to fit: one that wraps leaves its first rows behind at every
	// redraw ("\r\033[K" clears the last row only), scrolling the screen.
	width  func() int
	status string
}

func (p *terminalProgress) Update(s pipeline.Snapshot) {
	eta := s.ETAText("-")
	// The share and the ETA first: they stay when the line is cut.
	line := fmt.Sprintf("%5.1f%%  ETA %s  days %d/%d  events %d  pages %d  %.1f req/s  retries %d  429s %d",
		100*s.Covered, eta, s.DaysDone, s.Days, s.Events, s.Pages, s.RPS, s.Retries, s.Throttled)
	if p.width != nil {
		// Short of the last column, where a terminal may wrap already.
		if w := p.width() - 1; w > 0 && len(line) > w { // ASCII: bytes are columns
			line = line[:w]
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.status = line
	fmt.Fprint(p.w, "\r\033[K"+line)
}

func (p *terminalProgress) Done() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.status != "" {
		fmt.Fprint(p.w, "\r\033[K")
		p.status = ""
	}
}

// Write writes a log line above the status line.
func (p *terminalProgress) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.status != "" {
		fmt.Fprint(p.w, "\r\033[K")
	}
	n, err := p.w.Write(b)
	if p.status != "" {
		fmt.Fprint(p.w, p.status)
	}
	return n, err
}
