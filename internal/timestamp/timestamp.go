// Package timestamp reads the created_at of an audit event. The extractor,
// which places an event in its time window and recognises it when a page
// repeats it, and the transform, which exports the time, must agree on
// which texts are times: both call Parse.
package timestamp

// Parse parses an ISO-8601 / RFC 3339 date-time,
//
//	YYYY-MM-DD('T'|'t'|' ')hh:mm:ss[('.'|',')digits][zone]
//	zone = 'Z' | 'z' | ±hh:mm | ±hhmm | ±hh
//
// and returns it as milliseconds since the Unix epoch, UTC, with digits
// beyond the millisecond truncated (toward the past, as time.Time.UnixMilli
// does). A time without a zone is read as UTC, the API's documented zone.
// It avoids time.Parse, which allocates a zone for every non-Z offset.
func Parse(s []byte) (int64, bool) {
	if len(s) < len("2006-01-02T15:04:05") ||
		s[4] != '-' || s[7] != '-' || s[13] != ':' || s[16] != ':' {
		return 0, false
	}
	if c := s[10]; c != 'T' && c != 't' && c != ' ' {
		return 0, false
	}
	year, ok1 := digits(s[0:4])
	month, ok2 := digits(s[5:7])
	day, ok3 := digits(s[8:10])
	hour, ok4 := digits(s[11:13])
	minute, ok5 := digits(s[14:16])
	sec, ok6 := digits(s[17:19])
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6) ||
		month < 1 || month > 12 || day < 1 || day > daysIn(year, month) ||
		hour > 23 || minute > 59 || sec > 59 {
		return 0, false
	}
	rest := s[19:]
	var ms int64
	if len(rest) > 0 && (rest[0] == '.' || rest[0] == ',') {
		n := 1
		for n < len(rest) && isDigit(rest[n]) {
			if n <= 3 {
				ms = ms*10 + int64(rest[n]-'0')
			}
			n++
		}
		if n == 1 {
			return 0, false
		}
		for k := n; k <= 3; k++ {
			ms *= 10
		}
		rest = rest[n:]
	}
	offset, ok := parseZone(rest)
	if !ok {
		return 0, false
	}
	secs := daysFromCivil(year, month, day)*86400 + int64(hour*3600+minute*60+sec) - offset
	return secs*1000 + ms, true
}

// parseZone returns the zone offset in seconds east of UTC.
func parseZone(z []byte) (int64, bool) {
	switch {
	case len(z) == 0:
		return 0, true
	case len(z) == 1 && (z[0] == 'Z' || z[0] == 'z'):
		return 0, true
	case z[0] != '+' && z[0] != '-':
		return 0, false
	}
	var hh, mm int
	var ok1, ok2 = false, true
	switch len(z) {
	case 3: // ±hh
		hh, ok1 = digits(z[1:3])
	case 5: // ±hhmm
		hh, ok1 = digits(z[1:3])
		mm, ok2 = digits(z[3:5])
	case 6: // ±hh:mm
		hh, ok1 = digits(z[1:3])
		mm, ok2 = digits(z[4:6])
		ok2 = ok2 && z[3] == ':'
	}
	if !ok1 || !ok2 || hh > 23 || mm > 59 {
		return 0, false
	}
	off := int64(hh*3600 + mm*60)
	if z[0] == '-' {
		off = -off
	}
	return off, true
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// digits parses a short run of ASCII digits.
func digits(b []byte) (int, bool) {
	n := 0
	for _, c := range b {
		if !isDigit(c) {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

func daysIn(year, month int) int {
	switch month {
	case 2:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// daysFromCivil returns the days from 1970-01-01 to the given proleptic
// Gregorian date (H. Hinnant's algorithm); year is 0..9999 here.
func daysFromCivil(year, month, day int) int64 {
	y := int64(year)
	if month <= 2 {
		y--
	}
	era := y / 400
	if y < 0 {
		era = (y - 399) / 400
	}
	yoe := y - era*400
	m := int64(month)
	if m > 2 {
		m -= 3
	} else {
		m += 9
	}
	doy := (153*m+2)/5 + int64(day) - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return era*146097 + doe - 719468
}
