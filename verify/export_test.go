package verify

// IDsHeld calls f, until the returned func is called, with the number of
// ids each day's results still hold once every root is checked.
func IDsHeld(f func(held int)) (restore func()) {
	onChecked = func(byDay map[string][]held) {
		n := 0
		for _, hs := range byDay {
			for _, h := range hs {
				n += h.res.ids.len()
			}
		}
		f(n)
	}
	return func() { onChecked = nil }
}

// APIReads calls f, until the returned func is called, with the number of
// days of each read of the API's ids.
func APIReads(f func(days int)) (restore func()) {
	onAPIRead = f
	return func() { onAPIRead = nil }
}

// Workers sets, until the returned func is called, how many days are
// checked at once.
func Workers(n int) (restore func()) {
	old := workers
	workers = func() int { return n }
	return func() { workers = old }
}

// DayChecks calls f, until the returned func is called, from each check
// of a day of a root, its ids read and held.
func DayChecks(f func()) (restore func()) {
	onDay = f
	return func() { onDay = nil }
}

// Listed calls f, until the returned func is called, from each check of a
// day of a root between the listing of its files and the read of its
// manifest.
func Listed(f func(root, dayDir string)) (restore func()) {
	onListed = f
	return func() { onListed = nil }
}
