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
