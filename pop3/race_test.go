//go:build race

package pop3

// raceEnabled is set under the race detector, which makes byte-level
// work some twenty times slower: the big-message tests use less.
const raceEnabled = true
