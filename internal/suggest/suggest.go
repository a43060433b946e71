// Package suggest finds the word a user probably meant, for "did you mean"
// hints on misspelt commands, flags and configuration keys.
package suggest

// maxDistance is the largest edit distance still taken for a typo.
const maxDistance = 2

// Closest returns the candidate nearest to word: the one at the smallest
// edit distance (insertions, deletions, substitutions and transpositions of
// neighbours, each counting 1) when that is at most 2 and smaller than the
// candidate's length, or else the only candidate that word is a prefix of.
// It returns "" when nothing is close. Ties go to the earlier candidate.
func Closest(word string, candidates []string) string {
	best, bestD := "", maxDistance+1
	for _, c := range candidates {
		if d := distance(word, c); d < bestD && d < len(c) {
			best, bestD = c, d
		}
	}
	if best != "" || word == "" {
		return best
	}
	prefixed := ""
	for _, c := range candidates {
		if len(c) > len(word) && c[:len(word)] == word {
			if prefixed != "" {
				return "" // ambiguous
			}
			prefixed = c
		}
	}
	return prefixed
}

// distance is the optimal string alignment distance between a and b, in
// bytes: Levenshtein plus the transposition of two neighbours.
func distance(a, b string) int {
	prev2 := make([]int, len(b)+1)
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(b)]
}
