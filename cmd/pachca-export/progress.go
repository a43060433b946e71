package main

import (
	"fmt"
	"io"
	"time"

	"github.com/pachca-export/pachca-export/pipeline"
)

// terminalProgress redraws one status line on a terminal.
type terminalProgress struct {
	w     io.Writer
	drawn bool
}

func (p *terminalProgress) Update(s pipeline.Snapshot) {
	eta := "-"
	if s.ETA > 0 {
		eta = s.ETA.Round(time.Second).String()
	}
	fmt.Fprintf(p.w, "\r\033[K%5.1f%%  days %d/%d  events %d  pages %d  %.1f req/s  retries %d  429s %d  ETA %s",
		100*s.Covered, s.DaysDone, s.Days, s.Events, s.Pages, s.RPS, s.Retries, s.Throttled, eta)
	p.drawn = true
}

func (p *terminalProgress) Done() {
	if p.drawn {
		fmt.Fprint(p.w, "\r\033[K")
	}
}
