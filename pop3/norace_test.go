//go:build !race

package pop3

const raceEnabled = false
