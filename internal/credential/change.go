package credential

import "strconv"

// MinCharactersChanged is how many characters a new password must change
// from the current one when a holder changes it: "at least eight of the
// total number of characters" (ASD STIG V-222541, SRG-APP-000170).
const MinCharactersChanged = 8

// ChangeRule is the sentence the change-password page shows for
// MinCharactersChanged, and the one a too-similar password is refused with.
var ChangeRule = "Change at least " + strconv.Itoa(MinCharactersChanged) + " characters of your current password."

// maxCompared bounds the work of CharactersChanged on hostile input: forms
// cap passwords at 256 bytes, so this is never reached by a real one.
const maxCompared = 256

// CharactersChanged returns how many characters differ between the current
// and the new password: the edit distance (insertions, deletions and
// substitutions of characters, case-sensitive), so "Summer.Breeze~2024" to
// "Summer.Breeze~2025" is 1 and moving a block of characters counts every
// character moved. Inputs longer than 256 characters are compared on their
// first 256, which only ever underestimates.
func CharactersChanged(current, next string) int {
	a, b := []rune(current), []rune(next)
	a, b = a[:min(len(a), maxCompared)], b[:min(len(b), maxCompared)]
	// Two rows of the classic dynamic programme: prev[j] is the distance
	// between a[:i-1] and b[:j].
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
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
